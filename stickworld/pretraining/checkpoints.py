"""Resume checkpoints as safetensors: weights and optimizer moments as tensors, small scalars as string metadata.

No pickle anywhere: a checkpoint folder can come from anyone and still be loaded safely.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file


def save_tensors(tensors: dict[str, torch.Tensor], path: Path, meta: dict | None = None) -> None:
    """Write ``tensors`` (and JSON-able ``meta``) to ``path`` atomically: an interrupted save keeps the old file."""
    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp),
              metadata=None if meta is None else {"json": json.dumps(meta)})
    os.replace(tmp, path)


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and the metadata :func:`save_tensors` wrote."""
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {}).get("json", "{}"))
    return load_file(str(path)), meta


def optimizer_tensors(opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """An optimizer's per-parameter state flattened to ``"<param index>.<key>"`` tensors."""
    out = {}
    for idx, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            out[f"{idx}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return out


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    """Inverse of :func:`optimizer_tensors` (the hyper-parameters are the optimizer's own)."""
    sd = opt.state_dict()
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    sd["state"] = state
    opt.load_state_dict(sd)
