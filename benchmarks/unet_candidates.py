"""Training-step time of candidate StickWorld UNets on 16x16 latents: `python -m benchmarks.unet_candidates [names]`.

One thread, batch 32, AdamW included, the best of the last 3 of 5 steps; run it with nothing else on the machine.
"""

from __future__ import annotations

import sys
import time

import torch
from diffusers import UNet2DConditionModel

# name -> (channels per level, cross-attention per level, latent channels)
CANDIDATES = {
    "v7_c8": ((32, 64, 128, 128), (0, 0, 1, 1), 8),
    "v7_c16": ((32, 64, 128, 128), (0, 0, 1, 1), 16),
    "attn842_c8": ((32, 64, 128, 128), (0, 1, 1, 1), 8),
    "w48_attn842_c8": ((48, 96, 128, 128), (0, 1, 1, 1), 8),
    "3lvl_32_64_128_attn84": ((32, 64, 128), (0, 1, 1), 8),
    "3lvl_64_128_128_attn84": ((64, 128, 128), (0, 1, 1), 8),
}


def unet(blocks, attn, channels: int) -> UNet2DConditionModel:
    down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attn)
    up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn))
    return UNet2DConditionModel(sample_size=16, in_channels=channels, out_channels=channels, block_out_channels=blocks,
                                layers_per_block=1, down_block_types=down, up_block_types=up, cross_attention_dim=64,
                                attention_head_dim=32, norm_num_groups=16)


def step_seconds(model: UNet2DConditionModel, channels: int, batch: int = 32, steps: int = 5) -> float:
    opt = torch.optim.AdamW(model.parameters(), 1e-4)
    x, h, t = torch.randn(batch, channels, 16, 16), torch.randn(batch, 77, 64), torch.randint(0, 1000, (batch,))
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = (model(x, t, h).sample - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return min(times[2:])


if __name__ == "__main__":
    torch.set_num_threads(1)
    torch.manual_seed(0)
    for name in sys.argv[1:] or CANDIDATES:
        blocks, attn, channels = CANDIDATES[name]
        model = unet(blocks, attn, channels)
        print(f"{name}: {step_seconds(model, channels):.3f} s, {sum(p.numel() for p in model.parameters())} params")
