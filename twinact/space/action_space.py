"""The common action space: a PCA basis of real action phrases' input token embeddings.

Each phrase ("looking down", "arms crossed") is tokenized and the text encoder's *input* embedding rows of its word
pieces are gathered (before position embeddings and the transformer). `per_slot` mode builds one basis per
placeholder slot k from the phrases' k-th word piece (the released code's choice); `pooled` builds one basis from
all word pieces and gives it to every slot. Bases are cached on disk, keyed by everything they depend on.

Each slot keeps its own number of components K_s (its rank, capped by `max_components`: one int for all slots or
one per slot); never is a slot cut to another's rank. `basis` stays one dense [slots, K_max, D] tensor: a slot with
K_s < K_max has zero rows beyond K_s, which add nothing to `coeffs @ basis`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
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
SPACE_VERSION = 2  # 2: per-slot K, zero-padded, null directions dropped (1 cut every slot to the smallest K)
ENTRY_META = "meta.json"  # a cache entry's record of its phrases, settings and fit (not a run's meta.json)
RANK_RTOL = 1e-6  # a PCA direction counts when its singular value exceeds this times the largest
log = logging.getLogger(__name__)


@dataclass
class ActionSpace:
    """Per-slot orthonormal bases.

    Attributes:
        basis: [slots, K_max, D]; slot s has `slot_components[s]` orthonormal rows, then zero rows (pooled mode
            repeats one basis).
        mean: [slots, D] the PCA mean of each slot's embeddings.
        explained_variance_ratio: [slots, K_max], zero beyond each slot's K.
        meta: the JSON sidecar (phrase hash, encoder identity, K per slot in `num_components`, mode...).
    """

    basis: torch.Tensor
    mean: torch.Tensor
    explained_variance_ratio: torch.Tensor
    meta: dict

    @property
    def num_components(self) -> int:
        """K_max: the width of the coefficient vectors (the MLP output)."""
        return self.basis.shape[1]

    @property
    def slot_components(self) -> list[int]:
        """K of each slot (its non-zero basis rows)."""
        k = self.meta.get("num_components", self.num_components)
        return [int(v) for v in k] if isinstance(k, list) else [int(k)] * self.basis.shape[0]

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
    out, owners = [], []
    for k in range(slots):
        picked = [(i, seq[k]) for i, seq in enumerate(ids) if len(seq) > k]
        out.append(table[[t for _, t in picked]].float())
        owners.append([i for i, _ in picked])
    return out, owners


def slot_caps(max_components, slots: int) -> list[int]:
    """`action_space.max_components` as one cap per slot: an int (every slot) or a list of `slots` ints."""
    key = "action_space.max_components"
    if isinstance(max_components, Sequence) and not isinstance(max_components, str):
        caps = list(max_components)
        if len(caps) != slots:
            raise TwinActError(f"{key}={caps} gives {len(caps)} values for {slots} placeholder slots; give one int "
                               f"for all slots or exactly {slots} ints.")
    else:
        caps = [max_components] * slots
    for c in caps:
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1:
            raise TwinActError(f"{key}={max_components!r} must be a positive int or a list of {slots} positive ints.")
    return [int(c) for c in caps]


def fit_pca(rows: torch.Tensor, max_components: int, dedupe: bool, seed: int = 0) -> tuple[np.ndarray, ...]:
    """PCA of one slot's rows: (components [K, D], mean [D], explained-variance ratio [K]).

    K is at most `max_components` and the rows' numerical rank around their mean: directions with no variance
    (singular value below RANK_RTOL times the largest) are arbitrary completions, not learned from phrases, so they
    are dropped.
    """
    x = rows.double().numpy()
    if dedupe:  # the same word piece in many phrases would otherwise weigh by its frequency
        x = np.unique(x, axis=0)
    k = min(max_components, x.shape[0] - 1, x.shape[1])
    if k < 1:
        raise TwinActError("The action space needs at least two distinct phrase embeddings per slot.")
    pca = PCA(n_components=k, svd_solver="full", random_state=seed).fit(x)
    sv = pca.singular_values_
    k = max(1, int((sv > RANK_RTOL * sv[0]).sum())) if sv[0] > 0 else 1
    return pca.components_[:k], pca.mean_, pca.explained_variance_ratio_[:k]


def space_key(phrases: list[tuple[str, str]], tokenizer, table: torch.Tensor, identity: str, settings: dict) -> str:
    """Cache key over the phrase list as this tokenizer splits it, the exact embedding table and the settings."""
    h = hashlib.sha256()
    h.update("\n".join(f"{g}\t{p}" for g, p in phrases).encode())
    h.update(json.dumps([tokenizer(p, add_special_tokens=False).input_ids for _, p in phrases]).encode())
    h.update(table.detach().float().cpu().numpy().tobytes())
    h.update(json.dumps(settings, sort_keys=True).encode())
    return f"{identity.replace('/', '_')[:40]}-{h.hexdigest()[:16]}"


def build_action_space(phrases: list[tuple[str, str]], tokenizer, table: torch.Tensor, identity: str, *,
                       slots: int = 3, mode: str = "per_slot", max_components: int | Sequence[int] = 512,
                       dedupe: bool = True, cache_root: Path | None = None, plot: bool = True,
                       appearance_words: Sequence[str] | None = None, warn_overlap: bool = True) -> ActionSpace:
    """Build (or load from `cache_root`) the action space for an embedding table.

    Args:
        phrases: (group, phrase) pairs.
        tokenizer: the model's tokenizer (word pieces without BOS/EOS).
        table: the text encoder's input embedding weight [vocab, D].
        identity: the model's name, stored in the sidecar for humans.
        slots: number of placeholder tokens.
        mode: `per_slot` or `pooled`.
        max_components: the cap on K, one int for every slot or a list with one per slot; a slot of lower rank
            keeps its own smaller K (logged), the others are not cut to it.
        dedupe: drop repeated embedding rows before PCA.
        cache_root: where built spaces live; None disables caching.
        plot: write the explained-variance / projection PNG next to the cache entry.
        appearance_words: optional actor words ("a polar bear"); adds `meta["design_check"]` (see
            :func:`design_check`). Not part of the cache key: computed on every call.
        warn_overlap: warn when the actor words lie more inside the span than random directions, when the space is
            fitted (a run reading it from the cache logs the same at INFO, so it is said once, not on every run);
            false when the caller uses another basis derived from this one.
    """
    caps = slot_caps(max_components, slots)
    cap_setting = caps if isinstance(max_components, Sequence) else caps[0]  # an int keys as before
    settings = {"slots": slots, "mode": mode, "max_components": cap_setting, "dedupe": dedupe,
                "version": SPACE_VERSION}
    key = space_key(phrases, tokenizer, table, identity, settings)
    entry = cache_root / key if cache_root is not None else None
    fitted = entry is None or not (entry / ENTRY_META).is_file()
    if fitted:
        space = _fit_space(phrases, tokenizer, table, identity, settings, caps, key, entry, plot)
    else:
        space = load_action_space(entry)
    log.info("action space: K per slot = %s (cap %s, mode %s, %d phrases)", space.slot_components, cap_setting,
             mode, len(phrases))
    if appearance_words:
        space.meta["design_check"] = design_check(space, tokenizer, table, appearance_words,
                                                  phrases=[p for _, p in phrases])
        space.meta["design_check_words"] = list(appearance_words)
        log.info("action space design check, fraction in span per slot (actor words, random directions, other "
                 "vocabulary): %s", [tuple(None if v is None else round(v, 3) for v in
                                          (d["actor_in_span"], d["random_in_span"], d["vocab_in_span"]))
                                    for d in space.meta["design_check"]])
        overlap = appearance_overlap(space.meta["design_check"])
        if overlap and warn_overlap:
            log.log(logging.WARNING if fitted else logging.INFO, "%s", overlap)
    return space


def appearance_overlap(check: list[dict]) -> str | None:
    """What a design check says when the actor words lie more inside some slot's span than random directions do
    (learned coefficients can then carry the exemplars' appearance), with the option that removes them; else None."""
    over = [(s, d) for s, d in enumerate(check) if d["actor_in_span"] >= d["random_in_span"]]
    if not over:
        return None
    slots = ", ".join(f"{s}: {d['actor_in_span']:.2f} / {d['random_in_span']:.2f}" for s, d in over)
    return ("action space design check: the actor words lie more inside the span than random directions do "
            f"(slot: actor / random {slots}), so learned coefficients can carry the exemplars' appearance; "
            "action_space.remove_appearance=true projects those directions out (not in the paper).")


def _fit_space(phrases, tokenizer, table, identity, settings, caps, key, entry, plot) -> ActionSpace:
    texts = [p for _, p in phrases]
    per_slot, owners = slot_embeddings(texts, tokenizer, table, settings["slots"], settings["mode"])
    fits = [fit_pca(rows, cap, settings["dedupe"]) for rows, cap in zip(per_slot, caps)]
    ks = [f[0].shape[0] for f in fits]
    k_max, dim = max(ks), table.shape[1]
    basis = torch.zeros(len(fits), k_max, dim)
    evr = torch.zeros(len(fits), k_max)
    for s, (components, _, ratio) in enumerate(fits):  # zero rows beyond a slot's own K
        basis[s, : ks[s]] = torch.tensor(components, dtype=torch.float32)
        evr[s, : ks[s]] = torch.tensor(ratio, dtype=torch.float32)
    mean = torch.tensor(np.stack([f[1] for f in fits]), dtype=torch.float32)
    for s, (k, cap) in enumerate(zip(ks, caps)):
        if k < cap:
            log.info("action space: slot %d keeps K=%d < cap %d (%d rows, %d distinct, dimension %d)", s, k, cap,
                     per_slot[s].shape[0], torch.unique(per_slot[s], dim=0).shape[0], dim)
    meta = {
        "key": key, "identity": identity, "num_phrases": len(phrases), "num_components": ks,
        "embedding_dim": dim, **settings,
        "phrase_sha256": hashlib.sha256("\n".join(texts).encode()).hexdigest(),
        "explained_variance": [float(v.sum()) for v in evr],
    }
    space = ActionSpace(basis, mean, evr, meta)
    if entry is not None:
        save_action_space(space, entry)
        if plot:
            from twinact.plots import plot_action_space  # matplotlib takes ~1 s to import; only plotting pays it

            groups = [g for g, _ in phrases]
            coords = (per_slot[0] - mean[0]) @ basis[0, :2].T
            plot_action_space(space, coords.numpy(), [groups[i] for i in owners[0]], entry / "action_space.png")
    return space


def span_fraction(space: ActionSpace, rows: torch.Tensor, centre: bool = True) -> torch.Tensor:
    """[slots] mean over `rows` [N, D] of |P_s(r - mean_s)| / |r - mean_s|, P_s the projection onto slot s's span.

    1: the rows lie in the span (the coefficients can express them); about sqrt(K_s / D) for random directions.
    `centre=False` takes `rows` as directions (no mean subtracted). Zero (padding) rows of the basis add nothing.
    """
    rows = rows.detach().double().cpu()
    basis = space.basis.double()
    out = []
    for s in range(basis.shape[0]):
        x = rows - space.mean[s].double() if centre else rows
        inside = (x @ basis[s].T).norm(dim=-1)  # orthonormal rows: |B x| = |P x|
        out.append((inside / x.norm(dim=-1).clamp_min(1e-12)).mean())
    return torch.stack(out).float()


def word_rows(words: Sequence[str], tokenizer, table: torch.Tensor,
              exclude: Sequence[str] = ()) -> tuple[torch.Tensor, list[int]]:
    """Distinct input-embedding rows of the word pieces of `words`, leaving out pieces that occur in `exclude`."""
    skip = {t for text in exclude for t in tokenizer(text, add_special_tokens=False).input_ids}
    ids = list(dict.fromkeys(t for w in words for t in tokenizer(w, add_special_tokens=False).input_ids
                             if t not in skip))
    return table.detach().float().cpu()[ids], ids


def design_check(space: ActionSpace, tokenizer, table: torch.Tensor, words: Sequence[str], *,
                 phrases: Sequence[str] = (), directions: int = 256, seed: int = 0) -> list[dict]:
    """Per slot: how much of the actor words' embeddings the space can express, against chance.

    - `actor_in_span`: :func:`span_fraction` of the distinct word pieces of `words` ("a polar bear") that occur in
      none of `phrases` (a piece shared with the phrases, like "a", is part of what the space is fitted on);
    - `random_in_span`: the same fraction for `directions` seeded Gaussian directions (about sqrt(K_s / D));
    - `vocab_in_span`: the same for up to `directions` seeded random vocabulary rows that are neither phrase nor
      actor pieces nor all-zero (never-trained rows of a small model's table): embedding tables are not isotropic,
      so any trained token's row may sit nearer the phrases' span than a Gaussian direction does. None when no
      such row exists.

    A space meant to carry action but not appearance should keep `actor_in_span` at or below the chance levels:
    above them, the span favours actor directions, and learned coefficients can encode the exemplars' actor.
    """
    rows, ids = word_rows(words, tokenizer, table, exclude=phrases)
    if not ids:
        raise TwinActError(f"design check: the words {list(words)} have no word piece outside the phrase list.")
    gen = torch.Generator().manual_seed(seed)
    random_dirs = torch.randn(directions, table.shape[1], generator=gen, dtype=torch.float64)
    full = table.detach().float().cpu()
    skip = {t for text in [*phrases, *words] for t in tokenizer(text, add_special_tokens=False).input_ids}
    pool = [i for i in torch.nonzero(full.abs().sum(1) > 0).flatten().tolist() if i not in skip]
    picked = [pool[i] for i in torch.randperm(len(pool), generator=gen)[:directions].tolist()]
    actor = span_fraction(space, rows).tolist()
    rand = span_fraction(space, random_dirs, centre=False).tolist()
    voc = span_fraction(space, full[picked]).tolist() if picked else [None] * len(actor)
    return [{"actor_in_span": a, "random_in_span": r, "vocab_in_span": v, "actor_rows": len(ids),
             "vocab_rows": len(picked)} for a, r, v in zip(actor, rand, voc)]


def save_action_space(space: ActionSpace, entry: Path) -> None:
    entry.mkdir(parents=True, exist_ok=True)
    tensors = {"basis": space.basis, "mean": space.mean, "explained_variance_ratio": space.explained_variance_ratio}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(entry / "basis.safetensors"))
    (entry / ENTRY_META).write_text(json.dumps(space.meta, indent=2))


def load_action_space(entry: Path) -> ActionSpace:
    tensors = load_file(str(entry / "basis.safetensors"))
    meta = json.loads((entry / ENTRY_META).read_text())
    return ActionSpace(tensors["basis"], tensors["mean"], tensors["explained_variance_ratio"], meta)


def random_like(space: ActionSpace, seed: int = 0) -> ActionSpace:
    """Ablation: a random orthonormal basis of the same shape (same K per slot, same mean, same zero padding),
    nothing learned from phrases."""
    gen = torch.Generator().manual_seed(seed)
    slots, k, dim = space.basis.shape
    q, _ = torch.linalg.qr(torch.randn(slots, dim, k, generator=gen, dtype=torch.float64))
    basis = q.transpose(1, 2).float()
    evr = torch.zeros(slots, k)
    for s, ks in enumerate(space.slot_components):
        basis[s, ks:] = 0
        evr[s, :ks] = 1.0 / ks
    meta = {**space.meta, "key": f"{space.meta['key']}-random{seed}", "basis": "random"}
    return ActionSpace(basis, space.mean.clone(), evr, meta)
