"""Operations in the common action space: compose trained actions and adjust one along a principal direction.

Every TwinAct run exports its coefficient vectors w (per placeholder slot, per text encoder) in a basis B it shares
with every run on the same model and space settings. Composition is a weighted sum of coefficient vectors; adjusting
moves w along basis direction k; the placeholder embedding is then offset + w @ B, exactly as in training.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file

from twinact.config.schema import typed
from twinact.errors import TwinActError
from twinact.method.assembly import build_space
from twinact.paths import action_space_cache
from twinact.runs.files import EXPORT_INFO, EXPORT_STATE, RunFiles
from twinact.space.placeholder import cap_norm, init_word_rows, offsets_for


def load_run_coefficients(run_dir: Path) -> tuple[dict, list[torch.Tensor]]:
    """(export metadata, [slots, K] coefficients per vector module) of a finished action-space run."""
    export = RunFiles(Path(run_dir)).export
    if not (export / EXPORT_INFO).is_file():
        raise TwinActError(f"{run_dir} is not a finished twinact run (no export/twinact.json).")
    meta = json.loads((export / EXPORT_INFO).read_text())
    state = load_file(str(export / EXPORT_STATE))
    coeffs = [state[k] for k in sorted(state) if k.startswith("coefficients.")]
    if not coeffs:
        raise TwinActError(f"{run_dir} was trained with method={meta['fingerprint'].get('method')}, which has no "
                           "action-space coefficients to compose or adjust.")
    return meta, coeffs


def compose(runs: list[Path], weights: list[float]) -> tuple[dict, list[torch.Tensor]]:
    """Weighted sum of the runs' coefficient vectors; the runs must share one basis (same model and space)."""
    if len(runs) != len(weights):
        raise TwinActError(f"compose has {len(runs)} runs but {len(weights)} weights; give one weight per run.")
    loaded = [load_run_coefficients(r) for r in runs]
    keys = {m["fingerprint"]["action_space"] for m, _ in loaded}
    if len(keys) > 1:
        raise TwinActError(f"Runs to compose were trained in different action spaces ({sorted(keys)}): their "
                           "coefficients are not comparable. Compose runs of the same model and action_space settings.")
    shapes = {tuple(c.shape for c in cs) for _, cs in loaded}
    if len(shapes) > 1:
        raise TwinActError("Runs to compose have different numbers of placeholder slots or vector modules.")
    mixed = [sum(w * cs[i] for w, (_, cs) in zip(weights, loaded)) for i in range(len(loaded[0][1]))]
    return loaded[0][0], mixed


def slot_components(meta: dict) -> list[int] | int | None:
    """K per slot of the space a run was trained in, from its export metadata (an int for spaces built before
    per-slot K; None when the metadata does not say)."""
    return meta.get("action_space", {}).get("num_components")


def adjust(coefficients: list[torch.Tensor], component: int, amount: float,
           slots: list[int] | None = None, num_components: list[int] | int | None = None) -> list[torch.Tensor]:
    """Move the coefficient vectors of `slots` (all by default) by `amount` along principal component `component`.

    `num_components`: K of each slot (:attr:`ActionSpace.slot_components`, or :func:`slot_components` of a run's
    export); a slot's components beyond its own K are zero padding, so moving along one is refused. None: only the
    coefficient width (K_max) bounds `component`.
    """
    out = []
    for c in coefficients:
        n_slots, width = c.shape
        chosen = list(range(n_slots)) if slots is None else [int(s) for s in slots]
        bad = [s for s in chosen if not 0 <= s < n_slots]
        if bad:
            raise TwinActError(f"adjust.slots={list(slots)} names slot(s) {bad} outside the run's {n_slots} slots.")
        if not 0 <= component < width:
            raise TwinActError(f"adjust.component={component} is outside the space's {width} components.")
        if num_components is not None:
            ks = ([int(num_components)] * n_slots if isinstance(num_components, int)
                  else [int(k) for k in num_components])
            short = [s for s in chosen if component >= ks[s]]
            if short:
                raise TwinActError(
                    f"adjust.component={component} is outside the components of slot(s) {short} (K per slot = "
                    f"{ks}; components are numbered from 0). Pick a smaller component or set adjust.slots to "
                    f"slots with more than {component} components.")
        c = c.clone()
        c[chosen, component] += amount
        out.append(c)
    return out


def embeddings(coefficients: list[torch.Tensor], basis: torch.Tensor, offsets: torch.Tensor,
               dims: list[int], max_norms: list[float | None] | None = None) -> list[torch.Tensor]:
    """[slots, D_i] per text encoder from coefficients: per-encoder modules read their slice of the joint basis;
    one joint module is sliced afterwards. `max_norms` (one per module) caps norms as in training."""
    bounds = [(sum(dims[:i]), sum(dims[: i + 1])) for i in range(len(dims))]
    caps = max_norms or [None] * len(coefficients)
    if len(coefficients) == len(dims):
        return [cap_norm(offsets[:, lo:hi] + torch.einsum("sk,skd->sd", c, basis[..., lo:hi]), cap)
                for c, (lo, hi), cap in zip(coefficients, bounds, caps)]
    joint = cap_norm(offsets + torch.einsum("sk,skd->sd", coefficients[0], basis), caps[0])
    return [joint[:, lo:hi] for lo, hi in bounds]


def run_space_embeddings(run_dir: Path, comps, coefficients: list[torch.Tensor]) -> list[torch.Tensor]:
    """Turn coefficients into placeholder embeddings in `run_dir`'s action space (rebuilt or read from the cache)."""
    files = RunFiles(Path(run_dir))
    cfg = OmegaConf.load(files.config)
    meta = json.loads(files.export_info.read_text())
    space = build_space(typed("action_space", cfg.action_space), comps, len(meta["tokens"]),
                        action_space_cache(cfg.cache_dir), cfg.seed)
    if space.fingerprint() != meta["fingerprint"]["action_space"]:
        raise TwinActError(f"The action space rebuilt for {run_dir} differs from the one it was trained in; "
                           "the model or phrase list changed since.")
    init = init_word_rows(comps, cfg.method.init_word)
    dims = [enc.get_input_embeddings().weight.shape[1] for enc in comps.text_encoders]
    return embeddings(coefficients, space.basis, offsets_for(cfg.action_space.offset, space, init), dims,
                      meta["fingerprint"].get("max_norm"))
