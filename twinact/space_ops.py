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

from twinact.assembly import build_space
from twinact.errors import TwinActError
from twinact.placeholder import cap_norm, init_word_rows, offsets_for


def load_run_coefficients(run_dir: Path) -> tuple[dict, list[torch.Tensor]]:
    """(export metadata, [slots, K] coefficients per vector module) of a finished action-space run."""
    export = Path(run_dir) / "export"
    if not (export / "twinact.json").is_file():
        raise TwinActError(f"{run_dir} is not a finished twinact run (no export/twinact.json).")
    meta = json.loads((export / "twinact.json").read_text())
    state = load_file(str(export / "twinact_state.safetensors"))
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


def adjust(coefficients: list[torch.Tensor], component: int, amount: float,
           slots: list[int] | None = None) -> list[torch.Tensor]:
    """Move the coefficient vectors of `slots` (all by default) by `amount` along principal component `component`."""
    out = []
    for c in coefficients:
        if not 0 <= component < c.shape[1]:
            raise TwinActError(f"adjust.component={component} is outside the space's {c.shape[1]} components.")
        c = c.clone()
        c[slots if slots is not None else slice(None), component] += amount
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
    cfg = OmegaConf.load(Path(run_dir) / "config.yaml")
    meta = json.loads((Path(run_dir) / "export" / "twinact.json").read_text())
    space = build_space(cfg, comps, len(meta["tokens"]))
    if space.fingerprint() != meta["fingerprint"]["action_space"]:
        raise TwinActError(f"The action space rebuilt for {run_dir} differs from the one it was trained in; "
                           "the model or phrase list changed since.")
    init = init_word_rows(comps, cfg.method.init_word)
    dims = [enc.get_input_embeddings().weight.shape[1] for enc in comps.text_encoders]
    return embeddings(coefficients, space.basis, offsets_for(cfg.action_space.offset, space, init), dims,
                      meta["fingerprint"].get("max_norm"))
