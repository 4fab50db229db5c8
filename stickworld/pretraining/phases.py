"""One pretraining phase's trainable state: its modules, their AdamW optimizer and EMA, saved and loaded as
safetensors (:mod:`stickworld.pretraining.checkpoints`), so a phase resumes at any checkpoint on any device."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from stickworld.pretraining.checkpoints import load_optimizer, optimizer_tensors, save_tensors


class Phase:
    """One phase's trainable modules, optimizer and EMA, with save/load of all three."""

    def __init__(self, name: str, modules: dict[str, torch.nn.Module], lr: float, ema: bool):
        self.name, self.modules = name, modules
        self.params = [p for m in modules.values() for p in m.parameters()]
        self.opt = torch.optim.AdamW(self.params, lr=lr, weight_decay=0.0)
        self.ema = {k: v.detach().clone() for k, v in self.weights().items()} if ema else None
        self.device = self.params[0].device

    def weights(self) -> dict[str, torch.Tensor]:
        return {f"{m}.{k}": v for m, mod in self.modules.items() for k, v in mod.state_dict().items()}

    def update_ema(self, step: int) -> None:
        if self.ema is None:
            return
        decay = min(0.999, (1 + step) / (10 + step))  # short memory early, when the weights move most
        with torch.no_grad():
            for k, v in self.weights().items():
                if v.dtype.is_floating_point:
                    self.ema[k].lerp_(v, 1 - decay)
                else:
                    self.ema[k].copy_(v)

    def save(self, work: Path) -> None:
        save_tensors(self.weights(), work / f"{self.name}.safetensors")
        save_tensors(optimizer_tensors(self.opt), work / f"{self.name}.optim.safetensors")
        if self.ema is not None:
            save_tensors(self.ema, work / f"{self.name}.ema.safetensors")

    def load(self, work: Path) -> None:
        self.load_weights(load_file(str(work / f"{self.name}.safetensors")))
        load_optimizer(self.opt, load_file(str(work / f"{self.name}.optim.safetensors")))
        if self.ema is not None:
            self.ema = load_file(str(work / f"{self.name}.ema.safetensors"), device=str(self.device))

    def load_weights(self, tensors: dict[str, torch.Tensor]) -> None:
        for m, mod in self.modules.items():
            prefix = f"{m}."
            mod.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
