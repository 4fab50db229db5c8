"""Web-UI files beside the diffusers export: a kohya-format LoRA and an A1111 / ComfyUI embedding.

AUTOMATIC1111, Forge and ComfyUI read LoRAs in kohya's key format (`lora_unet_*.lora_down / lora_up / alpha`) and an
embedding as one file whose name is what the prompt types: SD1.5 `emb_params` [vectors, 768], SDXL `clip_l` +
`clip_g` (one row per vector each). Both are named after the action, so "a polar bear three_point_landing" in a web
UI reads the same vectors as "a polar bear <a1> <a2> <a3>" in diffusers.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from diffusers.utils.state_dict_utils import convert_state_dict_to_kohya
from safetensors.torch import save_file

LORA_DIR = Path("webui") / "loras"
EMBEDDING_DIR = Path("webui") / "embeddings"
SDXL_KEYS = ("clip_l", "clip_g")  # first and second text encoder, as the web UIs name them


def webui_name(action: str) -> str:
    """The file stem a web-UI prompt types: the action name with anything but letters, digits, `_` and `-` as `_`."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", action).strip("_") or "action"


def kohya_lora(lora: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """peft-named UNet LoRA weights in kohya's format, by diffusers' own converter.

    The converter writes every `.alpha` as the rank (scale 1), which is only right when `lora_alpha == rank`; the
    adapter was trained with scale `alpha / rank`, so the alphas are set to the trained one.
    """
    kohya = convert_state_dict_to_kohya({f"unet.{k}": v for k, v in lora.items()})
    for key in kohya:
        if key.endswith(".alpha"):
            kohya[key] = torch.tensor(float(alpha))
    return kohya


def embedding_file(embeddings: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """All placeholder vectors in one multi-vector embedding ([slots, D] per text encoder)."""
    rows = [e.detach().float().cpu().contiguous() for e in embeddings]
    return dict(zip(SDXL_KEYS, rows)) if len(rows) > 1 else {"emb_params": rows[0]}


def write_webui_files(folder: Path, action: str, embeddings: list[torch.Tensor], lora: dict | None,
                      lora_config=None) -> list[Path]:
    """Write `webui/embeddings/<name>.safetensors` and, with a LoRA, `webui/loras/<name>.safetensors`."""
    name, is_xl = webui_name(action), len(embeddings) > 1
    (folder / EMBEDDING_DIR).mkdir(parents=True, exist_ok=True)
    paths = [folder / EMBEDDING_DIR / f"{name}.safetensors"]
    save_file(embedding_file(embeddings), str(paths[0]))
    if lora:
        (folder / LORA_DIR).mkdir(parents=True, exist_ok=True)
        paths.append(folder / LORA_DIR / f"{name}.safetensors")
        meta = {"ss_network_module": "networks.lora", "ss_network_dim": str(lora_config.r),
                "ss_network_alpha": str(lora_config.lora_alpha),
                "ss_base_model_version": "sdxl_base_v1-0" if is_xl else "sd_v1"}
        save_file(kohya_lora(lora, lora_config.lora_alpha), str(paths[1]), metadata=meta)
    return paths
