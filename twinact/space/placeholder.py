"""Placeholder tokens whose embeddings live in the common action space.

`PlaceholderEmbedding` wraps the text encoder's input embedding module: ids of the added placeholder tokens are
replaced by vectors from a `vectors` module (`SpaceVectors`: offset + MLP(action feature) @ basis), every other id
goes through the frozen table untouched. The table itself is never resized or written, so every non-placeholder row
stays bit-identical and the checkpoint needs none of it.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from twinact.errors import TwinActError


def cap_norm(vectors: torch.Tensor, max_norm: float | None) -> torch.Tensor:
    """Scale down the rows of ``vectors`` whose L2 norm exceeds ``max_norm`` (None: unchanged).

    A text encoder has only ever seen its vocabulary's rows; a learned vector several times longer than any of them
    is off its input distribution (StickWorld: textual-inversion vectors reached 2.7x the mean row norm; capped,
    they kept the requested actor better). The cap is differentiable, so a capped vector still learns direction.
    """
    if max_norm is None:
        return vectors
    norms = vectors.norm(dim=-1, keepdim=True)
    return vectors * (max_norm / norms.clamp_min(1e-12)).clamp(max=1.0)


def vocabulary_norm(table: torch.Tensor) -> float:
    """The largest L2 norm among the embedding table's rows (what ``method.max_norm: vocab`` caps at)."""
    return float(table.detach().float().norm(dim=-1).max())


class CoefficientMLP(nn.Module):
    """Action feature -> K basis coefficients: Linear(d, 2d) -> GELU -> L2-normalize -> Linear(2d, K).

    Xavier weights and zero biases as in the released code; the normalization keeps the coefficient scale
    independent of the feature's scale.

    Args:
        init_scale: factor on the output layer's Xavier weights. 1 (released code) starts the coefficient vector at
            norm ~sqrt(2K / (2d + K)), i.e. about 0.94 for SD (K=512, d=320): far longer than any vocabulary row, so
            the first prompts are off-distribution; a small value starts the placeholder at its offset instead,
            as textual inversion starts at its init word.
    """

    def __init__(self, feature_dim: int, num_components: int, init_scale: float = 1.0):
        super().__init__()
        self.fc1 = nn.Linear(feature_dim, 2 * feature_dim)
        self.fc2 = nn.Linear(2 * feature_dim, num_components)
        for layer in (self.fc1, self.fc2):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        with torch.no_grad():
            self.fc2.weight.mul_(init_scale)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.normalize(F.gelu(self.fc1(feature)), dim=-1))


class SpaceVectors(nn.Module):
    """Per-slot placeholder vectors `offset_k + w_k @ B_k`, with w_k = MLP_k(f) (TwinAct) or free (`direct`).

    Args:
        feature: module returning the action feature [d] (frozen cached buffer or a learned vector).
        basis: [slots, K, D] orthonormal rows.
        offsets: [slots, D].
        shared_mlp: one MLP for all slots instead of one per slot (paper code: one per slot).
        direct: ablation: train the coefficients themselves (zero-initialized), no MLP and no feature.
        init_scale: see :class:`CoefficientMLP`.
        max_norm: cap on each placeholder vector's L2 norm (:func:`cap_norm`); None: no cap (released code).
    """

    def __init__(self, feature: nn.Module, basis: torch.Tensor, offsets: torch.Tensor, shared_mlp: bool = False,
                 direct: bool = False, init_scale: float = 1.0, max_norm: float | None = None):
        super().__init__()
        self.feature = feature
        self.max_norm = max_norm
        slots, k, _ = basis.shape
        n_mlps = 1 if shared_mlp else slots
        self.direct = nn.Parameter(torch.zeros(slots, k)) if direct else None
        self.mlps = nn.ModuleList([] if direct else [CoefficientMLP(feature.dim, k, init_scale)
                                                     for _ in range(n_mlps)])
        # Not persistent: checkpoints hold trainable state only; the basis is rebuilt from its cache and checked
        # against the fingerprint stored beside the weights.
        self.register_buffer("basis", basis.float().clone(), persistent=False)
        self.register_buffer("offsets", offsets.float().clone(), persistent=False)

    @property
    def num_slots(self) -> int:
        return self.basis.shape[0]

    def coefficients(self) -> torch.Tensor:
        """[slots, K] coefficients for the current action feature."""
        if self.direct is not None:
            return self.direct
        f = self.feature()
        return torch.stack([self.mlps[k % len(self.mlps)](f) for k in range(self.num_slots)])

    def forward(self) -> torch.Tensor:
        """[slots, D] placeholder embeddings."""
        return cap_norm(self.offsets + torch.einsum("sk,skd->sd", self.coefficients(), self.basis), self.max_norm)


def hold(module: nn.Module, name: str, value: torch.Tensor, trainable: bool) -> None:
    """A float copy of `value` on `module` as a parameter (trained) or a buffer (saved and moved, not trained)."""
    if trainable:
        setattr(module, name, nn.Parameter(value.float().clone()))
    else:
        module.register_buffer(name, value.float().clone())


class FreeVectors(nn.Module):
    """Baselines' placeholder vectors: free per-slot embeddings (textual inversion, pivotal tuning), or frozen ones
    (`trainable=False`: DreamBooth-LoRA's fixed rare-token embedding); `max_norm` as in :class:`SpaceVectors`."""

    def __init__(self, init: torch.Tensor, trainable: bool = True, max_norm: float | None = None):
        super().__init__()
        self.max_norm = max_norm
        hold(self, "vectors", init, trainable)

    def forward(self) -> torch.Tensor:
        return cap_norm(self.vectors, self.max_norm)


class PlaceholderEmbedding(nn.Module):
    """Drop-in replacement for the text encoder's `token_embedding` that injects placeholder vectors.

    Args:
        base: the frozen embedding table module.
        token_ids: the placeholder ids, in slot order.
        vectors: module returning [slots, D'] vectors.
        span: (start, end) columns of `vectors()` this encoder reads (SDXL: one MLP set over the joint
            768 + 1280 space feeds both encoders); None reads all.
    """

    def __init__(self, base: nn.Embedding, token_ids: list[int], vectors: nn.Module,
                 span: tuple[int, int] | None = None):
        super().__init__()
        self.base = base
        self.vectors = vectors
        self.span = span
        self.register_buffer("token_ids", torch.tensor(token_ids, dtype=torch.long), persistent=False)

    def placeholder_vectors(self) -> torch.Tensor:
        """[slots, D] the embeddings this encoder sees for its placeholders."""
        v = self.vectors()
        return v if self.span is None else v[:, self.span[0] : self.span[1]]

    @property
    def weight(self) -> torch.Tensor:  # some HF utilities read `.weight` of the input embeddings
        return self.base.weight

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        # slot[i] = k where input_ids[i] is the k-th placeholder, else -1
        match = input_ids.unsqueeze(-1) == self.token_ids
        is_placeholder = match.any(-1)
        safe_ids = input_ids.masked_fill(is_placeholder | (input_ids >= self.base.num_embeddings), 0)
        out = self.base(safe_ids)
        if not is_placeholder.any():
            return out
        vectors = self.placeholder_vectors().to(out.dtype)
        injected = vectors[match.float().argmax(-1)]
        return torch.where(is_placeholder.unsqueeze(-1), injected, out)


def token_filename(token: str) -> str:
    """The file name (without suffix) a token's embedding is exported under: `<a1>` -> `a1`."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", token).strip("_") or "token"


def add_placeholder_tokens(tokenizer, tokens: list[str]) -> list[int]:
    """Add the placeholder tokens to the tokenizer; a clear error on a clash with existing vocabulary."""
    vocab = tokenizer.get_vocab()
    clash = [t for t in tokens if t in vocab or t.lower() in vocab]
    if clash:
        raise TwinActError(
            f"Placeholder token(s) {clash} already exist in the tokenizer vocabulary, so they would not be new "
            "tokens. Choose unused strings, e.g. action.placeholder_tokens='[<a1>,<a2>,<a3>]'."
        )
    if len(set(tokens)) != len(tokens):
        raise TwinActError(f"Placeholder tokens must be distinct, got {tokens}.")
    files = [token_filename(t) for t in tokens]
    if len(set(files)) != len(files):
        raise TwinActError(f"Placeholder tokens {tokens} would export to the same file names {files}: make them "
                           "differ in letters or digits, e.g. action.placeholder_tokens='[<a1>,<a2>,<a3>]'.")
    tokenizer.add_tokens(tokens)
    ids = tokenizer.convert_tokens_to_ids(tokens)
    for tok in tokens:  # a token the tokenizer splits would never reach the embedding as one id
        if tokenizer(tok, add_special_tokens=False).input_ids != [tokenizer.convert_tokens_to_ids(tok)]:
            raise TwinActError(f"Placeholder {tok!r} is not tokenized as one token; use a simple form like <a1>.")
    return ids


def init_word_embedding(tokenizer, table: torch.Tensor, word: str) -> torch.Tensor:
    """The input embedding of `word` (its first word piece: the released code initializes from 'action')."""
    ids = tokenizer(word, add_special_tokens=False).input_ids
    if not ids:
        raise TwinActError(f"method.init_word={word!r} tokenizes to nothing; pick a plain English word "
                           "(action.init_word=<word>).")
    return table[ids[0]].detach().float().clone()


def init_word_rows(comps, word: str) -> torch.Tensor:
    """`word`'s input embedding in every text encoder, side by side (SDXL: 768 + 1280 columns)."""
    return torch.cat([init_word_embedding(tok, enc.get_input_embeddings().weight, word)
                      for tok, enc in zip(comps.tokenizers, comps.text_encoders)])


def offsets_for(kind: str, space, init_vector: torch.Tensor) -> torch.Tensor:
    """[slots, D] offsets: `init_word` (released code), PCA `mean`, or `zero` (`action_space.offset`, checked with
    the config)."""
    slots, _, dim = space.basis.shape
    if kind == "init_word":
        return init_vector.expand(slots, dim).clone()
    if kind == "mean":
        return space.mean.clone()
    return torch.zeros(slots, dim)


def install(text_encoder, token_ids: list[int], vectors: nn.Module, span: tuple[int, int] | None = None
            ) -> PlaceholderEmbedding:
    """Wrap the text encoder's input embedding so `token_ids` read from `vectors`.

    The encoder's pooling is left as loaded: SDXL's second encoder (legacy `eos_token_id=2`) pools at
    argmax(input_ids), i.e. at the last placeholder of a prompt, and training must condition on exactly what a plain
    diffusers pipeline will compute from the export.
    """
    wrapper = PlaceholderEmbedding(text_encoder.get_input_embeddings(), token_ids, vectors, span)
    text_encoder.set_input_embeddings(wrapper)
    return wrapper
