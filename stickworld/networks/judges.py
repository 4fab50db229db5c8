"""StickWorld judges: a small CNN that reads a 64 px StickWorld image back into its pose and its actor.

An evaluation scores generations against StickWorld's exact labels, but a generation has no labels of its own, so
one network estimates them: a joint-regression head gives the 14 joints (for S_Action, pose similarity to the true
held-out pose) and an actor-classification head gives actor probabilities (for S_Actor, the requested actor, and
Leakage, the exemplar's actor). Train it with :mod:`stickworld.pretraining.train_judges`.

Weights are a safetensors file plus a JSON sidecar (``<stem>.json``) recording how they were made and how well they
did, so a test can hold a later checkout to the recorded numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from stickworld.world.actors import ACTORS
from stickworld.world.skeleton import JOINTS
from twinact.paths import package_path

SIZE = 64  # the judges read 64 px images; other sizes are resized (bilinear) before reading
N_JOINTS = len(JOINTS)
N_ACTORS = len(ACTORS)
DEFAULT_WEIGHTS = package_path("pkg://stickworld/judges.safetensors")

POSE_TOL = 0.05  # a pose is read right when its mean joint error is under 5% of the image (~3 px at 64 px)


def _block(cin: int, cout: int) -> nn.Sequential:
    """Conv, BatchNorm, ReLU, then a stride-2 conv: two 3x3 views per scale before halving it."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class Judge(nn.Module):
    """Conv encoder (64 -> 4 px) with a small decoder back to 16 px for joint heatmaps, and an actor head.

    Joints come from heatmaps by soft-argmax (integral regression) rather than from a fully connected layer: the
    output is then tied to where features sit in the image, which learns far faster and localises far better
    than regressing coordinates from a flattened code (an FC head plateaued near 0.08 mean error here). The
    decoder adds the deep 4 px features (which joint is which: left vs right, front vs side) to the 8 and 16 px
    skips (where edges are). The actor head pools the deepest features, since identity does not depend on where.

    Args:
        width: Channels of the stem (the first conv); the blocks after it double them, up to 4x.
    """

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        # The first conv is strided straight away: 64 px at full width would cost most of the compute for little
        # gain, since a limb is several pixels wide.
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w),
                                  nn.ReLU(inplace=True))  # 32 px
        self.down16, self.down8, self.down4 = _block(w, 2 * w), _block(2 * w, 4 * w), _block(4 * w, 4 * w)
        self.skip8, self.skip16 = nn.Conv2d(4 * w, 4 * w, 1), nn.Conv2d(2 * w, 4 * w, 1)
        self.up8 = nn.Sequential(nn.Conv2d(4 * w, 4 * w, 3, padding=1, bias=False), nn.BatchNorm2d(4 * w),
                                 nn.ReLU(inplace=True))
        self.up16 = nn.Sequential(nn.Conv2d(4 * w, 2 * w, 3, padding=1, bias=False), nn.BatchNorm2d(2 * w),
                                  nn.ReLU(inplace=True), nn.Conv2d(2 * w, N_JOINTS, 1))
        self.actor_head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * w, N_ACTORS))
        # Cell centres of the 16 px heatmap in image fractions; a buffer so it follows .to(device).
        self.register_buffer("grid", (torch.arange(16, dtype=torch.float32) + 0.5) / 16, persistent=False)
        self.width = width

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map images ``x`` ([B, 3, 64, 64], values in [0, 1]) to joints [B, 14, 2] and actor logits [B, A]."""
        f16 = self.down16(self.stem(x * 2 - 1))  # centre the inputs so BatchNorm starts near its working point
        f8 = self.down8(f16)
        f4 = self.down4(f8)
        h = self.up8(F.interpolate(f4, scale_factor=2.0) + self.skip8(f8))
        maps = self.up16(F.interpolate(h, scale_factor=2.0) + self.skip16(f16))  # [B, 14, 16, 16]
        prob = maps.flatten(2).softmax(-1).view_as(maps)
        # Expected position under each joint's heatmap: x from the column marginal, y from the row marginal.
        joints = torch.stack([(prob.sum(2) * self.grid).sum(-1), (prob.sum(3) * self.grid).sum(-1)], dim=-1)
        return joints, self.actor_head(f4)


def to_tensor(images: list[Image.Image]) -> torch.Tensor:
    """Stack PIL images into a float [B, 3, 64, 64] tensor in [0, 1], resizing any that are not 64 px."""
    arrays = []
    for img in images:
        img = img.convert("RGB")
        if img.size != (SIZE, SIZE):
            img = img.resize((SIZE, SIZE), Image.Resampling.BILINEAR)
        arrays.append(np.asarray(img, dtype=np.uint8))
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255.0)


def save(model: Judge, path: str | Path, meta: dict | None = None) -> None:
    """Write ``model``'s weights to ``path`` (safetensors) and ``meta`` to the JSON sidecar beside it.

    The width goes into the safetensors metadata too, so :func:`load` can rebuild the model from the file alone.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata={"width": str(model.width)})
    if meta is not None:
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def load(path: str | Path = DEFAULT_WEIGHTS) -> Judge:
    """Rebuild a :class:`Judge` from a file written by :func:`save`, in eval mode.

    Raises:
        FileNotFoundError: If ``path`` does not exist (train with ``python -m stickworld.pretraining.train_judges``).
    """
    path = Path(path)
    if path.is_dir():  # a folder train_judges wrote into
        path = path / "judges.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"no judge weights at {path}; train them with "
                                "python -m stickworld.pretraining.train_judges")
    with safe_open(str(path), "pt") as f:
        width = int((f.metadata() or {}).get("width", 16))
    model = Judge(width)
    model.load_state_dict(load_file(str(path)))
    return model.eval()


def load_meta(path: str | Path = DEFAULT_WEIGHTS) -> dict:
    """The JSON sidecar of weights ``path`` (training command, data sizes, metrics)."""
    return json.loads(Path(path).with_suffix(".json").read_text())


@torch.no_grad()
def predict(images: list[Image.Image], model: Judge | None = None,
            batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Judge ``images``.

    Args:
        images: PIL images (any size; resized to 64 px).
        model: A loaded judge; ``None`` loads :data:`DEFAULT_WEIGHTS`.
        batch_size: Images per forward pass (bounds memory, not results: the model is in eval mode).

    Returns:
        ``joints`` float32 [B, 14, 2] as (x, y) image fractions, y down, in JOINTS order, and ``actor_probs``
        float32 [B, A], rows summing to 1, columns in :data:`stickworld.world.actors.ACTORS` order.
    """
    model = model if model is not None else load()
    was_training = model.training
    model.eval()  # BatchNorm must use its running statistics, else a prediction depends on its batch-mates
    joints, probs = [], []
    for i in range(0, len(images), batch_size):
        j, logits = model(to_tensor(images[i:i + batch_size]))
        joints.append(j.numpy())
        probs.append(torch.softmax(logits.double(), dim=1).float().numpy())
    model.train(was_training)
    if not joints:
        return np.zeros((0, N_JOINTS, 2), np.float32), np.zeros((0, N_ACTORS), np.float32)
    return np.concatenate(joints).astype(np.float32), np.concatenate(probs).astype(np.float32)


@torch.no_grad()
def vae_round_trip(vae, x: torch.Tensor) -> torch.Tensor:
    """Images [B,3,64,64] in [0,1] through ``vae`` and back, quantised to 8 bits like a saved generation: the
    blur and colour shifts of the base model's decoder, which a generation always carries."""
    latents = vae.encode(x * 2 - 1).latent_dist.mean
    out = (vae.decode(latents).sample.clamp(-1, 1) + 1) / 2
    return (out * 255).round() / 255
