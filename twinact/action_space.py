"""The common action space: a PCA basis of real action phrases' input token embeddings.

Each phrase ("looking down", "arms crossed") is tokenized and the text encoder's *input* embedding rows of its word
pieces are gathered (before position embeddings and the transformer). `per_slot` mode builds one basis per
placeholder slot k from the phrases' k-th word piece (the released code's choice); `pooled` builds one basis from
all word pieces and gives it to every slot. Bases are cached on disk, keyed by everything they depend on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from sklearn.decomposition import PCA

from twinact.errors import TwinActError
from twinact.paths import package_path

GROUPS = ("head", "hand", "foot", "whole_body")


@dataclass
class ActionSpace:
    """Per-slot orthonormal bases.

    Attributes:
        basis: [slots, K, D] orthonormal rows per slot (pooled mode repeats one basis).
        mean: [slots, D] the PCA mean of each slot's embeddings.
        explained_variance_ratio: [slots, K].
        meta: the JSON sidecar (phrase hash, encoder identity, K, mode...).
    """

    basis: torch.Tensor
    mean: torch.Tensor
    explained_variance_ratio: torch.Tensor
    meta: dict

    @property
    def num_components(self) -> int:
        return self.basis.shape[1]

    def fingerprint(self) -> str:
        return self.meta["key"]


def load_phrases(path: str | None = None) -> list[tuple[str, str]]:
    """(group, phrase) pairs from a `group<TAB>phrase` file; the packaged list when `path` is None."""
    if path is None:
        text = resources.files("twinact").joinpath("data/action_phrases.tsv").read_text(encoding="utf-8")
    else:
        path = package_path(path)
        if not path.is_file():
            raise TwinActError(f"Phrase list {path} does not exist; set action_space.phrases to a "
                               "group<TAB>phrase file.")
        text = path.read_text(encoding="utf-8")
    pairs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        group, sep, phrase = line.partition("\t")
        if not sep or group not in GROUPS:
            raise TwinActError(f"Phrase list line {n} is not 'group<TAB>phrase' with group in {GROUPS}: {line!r}")
        pairs.append((group, phrase.strip()))
    return pairs


def slot_embeddings(phrases: list[str], tokenizer, table: torch.Tensor, slots: int, mode: str,
                    ) -> tuple[list[torch.Tensor], list[list[int]]]:
    """Gather embedding rows per slot; also which phrase each row came from (for the projection plot)."""
    ids = [tokenizer(p, add_special_tokens=False).input_ids for p in phrases]
    table = table.detach().float().cpu()
    if mode == "pooled":
        rows = [(i, t) for i, seq in enumerate(ids) for t in seq]
        owners = [i for i, _ in rows]
        return [table[[t for _, t in rows]].float()] * slots, [owners] * slots
    if mode != "per_slot":
        raise TwinActError(f"action_space.mode={mode!r} is not 'per_slot' or 'pooled'.")
    out, owners = [], []
    for k in range(slots):
        picked = [(i, seq[k]) for i, seq in enumerate(ids) if len(seq) > k]
        out.append(table[[t for _, t in picked]].float())
        owners.append([i for i, _ in picked])
    return out, owners


def fit_pca(rows: torch.Tensor, max_components: int, dedupe: bool, seed: int = 0) -> tuple[np.ndarray, ...]:
    """PCA of one slot's rows: (components [K, D], mean [D], explained-variance ratio [K])."""
    x = rows.double().numpy()
    if dedupe:  # the same word piece in many phrases would otherwise weigh by its frequency
        x = np.unique(x, axis=0)
    k = min(max_components, x.shape[0] - 1, x.shape[1])
    if k < 1:
        raise TwinActError("The action space needs at least two distinct phrase embeddings per slot.")
    pca = PCA(n_components=k, svd_solver="full", random_state=seed).fit(x)
    return pca.components_, pca.mean_, pca.explained_variance_ratio_


def space_key(phrases: list[tuple[str, str]], tokenizer, table: torch.Tensor, identity: str, cfg: dict) -> str:
    """Cache key over the phrase list as this tokenizer splits it, the exact embedding table and the settings."""
    h = hashlib.sha256()
    h.update("\n".join(f"{g}\t{p}" for g, p in phrases).encode())
    h.update(json.dumps([tokenizer(p, add_special_tokens=False).input_ids for _, p in phrases]).encode())
    h.update(table.detach().float().cpu().numpy().tobytes())
    h.update(json.dumps(cfg, sort_keys=True).encode())
    return f"{identity.replace('/', '_')[:40]}-{h.hexdigest()[:16]}"


def build_action_space(phrases: list[tuple[str, str]], tokenizer, table: torch.Tensor, identity: str, *,
                       slots: int = 3, mode: str = "per_slot", max_components: int = 512, dedupe: bool = True,
                       cache_root: Path | None = None, plot: bool = True) -> ActionSpace:
    """Build (or load from `cache_root`) the action space for an embedding table.

    Args:
        phrases: (group, phrase) pairs.
        tokenizer: the model's tokenizer (word pieces without BOS/EOS).
        table: the text encoder's input embedding weight [vocab, D].
        identity: the model's name, stored in the sidecar for humans.
        slots: number of placeholder tokens.
        mode: `per_slot` or `pooled`.
        max_components: K; fewer are kept when a slot has lower rank.
        dedupe: drop repeated embedding rows before PCA.
        cache_root: where built spaces live; None disables caching.
        plot: write the explained-variance / projection PNG next to the cache entry.
    """
    settings = {"slots": slots, "mode": mode, "max_components": max_components, "dedupe": dedupe, "version": 1}
    key = space_key(phrases, tokenizer, table, identity, settings)
    entry = cache_root / key if cache_root is not None else None
    if entry is not None and (entry / "meta.json").is_file():
        return load_action_space(entry)
    texts = [p for _, p in phrases]
    per_slot, owners = slot_embeddings(texts, tokenizer, table, slots, mode)
    fits = [fit_pca(rows, max_components, dedupe) for rows in per_slot]
    k = min(f[0].shape[0] for f in fits)  # one K for all slots so the coefficient vectors stack
    basis = torch.tensor(np.stack([f[0][:k] for f in fits]), dtype=torch.float32)
    mean = torch.tensor(np.stack([f[1] for f in fits]), dtype=torch.float32)
    evr = torch.tensor(np.stack([f[2][:k] for f in fits]), dtype=torch.float32)
    meta = {
        "key": key, "identity": identity, "num_phrases": len(phrases), "num_components": k,
        "embedding_dim": table.shape[1], **settings,
        "phrase_sha256": hashlib.sha256("\n".join(texts).encode()).hexdigest(),
        "explained_variance": [float(v.sum()) for v in evr],
    }
    space = ActionSpace(basis, mean, evr, meta)
    if entry is not None:
        save_action_space(space, entry)
        if plot:
            from twinact.plots import plot_action_space

            groups = [g for g, _ in phrases]
            coords = [(rows - m) @ b[:2].T for rows, m, b in zip(per_slot, mean, basis)]
            plot_action_space(space, coords[0].numpy(), [groups[i] for i in owners[0]], entry / "action_space.png")
    return space


def save_action_space(space: ActionSpace, entry: Path) -> None:
    entry.mkdir(parents=True, exist_ok=True)
    tensors = {"basis": space.basis, "mean": space.mean, "explained_variance_ratio": space.explained_variance_ratio}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(entry / "basis.safetensors"))
    (entry / "meta.json").write_text(json.dumps(space.meta, indent=2))


def load_action_space(entry: Path) -> ActionSpace:
    tensors = load_file(str(entry / "basis.safetensors"))
    meta = json.loads((entry / "meta.json").read_text())
    return ActionSpace(tensors["basis"], tensors["mean"], tensors["explained_variance_ratio"], meta)


def random_like(space: ActionSpace, seed: int = 0) -> ActionSpace:
    """Ablation: a random orthonormal basis of the same shape (same K, same mean), nothing learned from phrases."""
    gen = torch.Generator().manual_seed(seed)
    slots, k, dim = space.basis.shape
    q, _ = torch.linalg.qr(torch.randn(slots, dim, k, generator=gen, dtype=torch.float64))
    basis = q.transpose(1, 2).float()
    meta = {**space.meta, "key": f"{space.meta['key']}-random{seed}", "basis": "random"}
    return ActionSpace(basis, space.mean.clone(), torch.full((slots, k), 1.0 / k), meta)
