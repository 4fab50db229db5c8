"""How each model family turns captions into UNet conditioning: the one place SD1.5 and SDXL differ in training.

SD1.5: the text encoder's last hidden state. SDXL (as its pipeline does): the penultimate hidden states of both
encoders concatenated, plus the second encoder's pooled, projected output and the micro-conditioning time ids
(original size, crop top-left, target size) as `added_cond_kwargs`.
"""

from __future__ import annotations

import torch


def tokenize(tokenizer, captions: list[str], device) -> torch.Tensor:
    return tokenizer(list(captions), padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids.to(device)


def encode_captions(comps, captions: list[str], device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(hidden states [B, 77, D], pooled text embedding [B, P] or None for SD1.5)."""
    if not comps.is_xl:
        return comps.text_encoder(tokenize(comps.tokenizer, captions, device))[0], None
    hidden, pooled = [], None
    for tokenizer, encoder in zip(comps.tokenizers, comps.text_encoders):
        out = encoder(tokenize(tokenizer, captions, device), output_hidden_states=True)
        hidden.append(out.hidden_states[-2])
        if out[0].ndim == 2:  # the projected pooled output (text_embeds) of the encoder with projection
            pooled = out[0]
    return torch.cat(hidden, dim=-1), pooled


def time_ids(original_size: tuple[int, int], crop_top_left: tuple[int, int], target_size: tuple[int, int]
             ) -> torch.Tensor:
    """SDXL micro-conditioning vector [6]: (orig h, orig w, crop top, crop left, target h, target w)."""
    return torch.tensor([*original_size, *crop_top_left, *target_size], dtype=torch.float32)


def added_conditioning(pooled: torch.Tensor | None, ids: torch.Tensor | None, dtype) -> dict | None:
    """UNet `added_cond_kwargs` for SDXL, None for SD1.5."""
    if pooled is None:
        return None
    return {"text_embeds": pooled.to(dtype), "time_ids": ids.to(pooled.device, dtype)}
