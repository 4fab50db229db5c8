"""Export a trained action as files plain diffusers loads: a LoRA and textual-inversion embeddings.

Once trained, the coefficients are fixed, so each placeholder collapses to one embedding vector:
`export/textual_inversion/<token>.safetensors` (diffusers' one-key format), `export/pytorch_lora_weights.safetensors`
(diffusers LoRA format with its adapter metadata), and `export/twinact_state.safetensors` + `twinact.json` (the MLPs,
action feature, coefficients and a reference to the basis) for space operations and resuming analysis.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors.torch import save_file

from twinact.lora import lora_state_dict


def token_filename(token: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", token).strip("_") or "token"


@torch.no_grad()
def export_action(out_dir: Path, *, tokens: list[str], vectors, unet, lora_config, meta: dict) -> Path:
    """Write the export folder; returns it."""
    out_dir.mkdir(parents=True, exist_ok=False)
    embeds = vectors().detach().float().cpu()
    ti_dir = out_dir / "textual_inversion"
    ti_dir.mkdir()
    for token, vec in zip(tokens, embeds):
        save_file({token: vec.contiguous()}, str(ti_dir / f"{token_filename(token)}.safetensors"))
    if lora_config is not None:
        from diffusers import StableDiffusionPipeline

        StableDiffusionPipeline.save_lora_weights(
            out_dir, unet_lora_layers=lora_state_dict(unet), safe_serialization=True,
            unet_lora_adapter_metadata=lora_config.to_dict(),
        )
    state = {f"vectors.{k}": v.detach().cpu().contiguous() for k, v in vectors.state_dict().items()}
    state["coefficients"] = vectors.coefficients().detach().float().cpu().contiguous()
    state["embeddings"] = embeds.contiguous()
    save_file(state, str(out_dir / "twinact_state.safetensors"))
    (out_dir / "twinact.json").write_text(json.dumps({"tokens": tokens, **meta}, indent=2, default=str))
    return out_dir


def load_into_pipeline(pipe, export_dir: Path) -> list[str]:
    """Load an export into any SD pipeline with plain diffusers calls; returns the placeholder tokens."""
    export_dir = Path(export_dir)
    tokens = json.loads((export_dir / "twinact.json").read_text())["tokens"]
    for token in tokens:
        pipe.load_textual_inversion(str(export_dir / "textual_inversion" / f"{token_filename(token)}.safetensors"))
    if (export_dir / "pytorch_lora_weights.safetensors").is_file():
        pipe.load_lora_weights(str(export_dir))
    return tokens
