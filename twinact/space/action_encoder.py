"""Action features: what the coefficient MLP reads, and the image embedding of the action-similarity loss.

An action encoder turns exemplar images into one feature vector per image (`encode`); `ActionFeature` averages
them over the exemplars once and holds the result as a frozen buffer. The `learned` encoder has no image model: its
feature is a trainable vector. A pose encoder only needs `dim`, `name` and `encode(images)` to plug in.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel
from transformers.utils import logging as hf_logging

from twinact.errors import TwinActError
from twinact.paths import package_path
from twinact.space.placeholder import hold
from twinact.space.pose import FEATURE_DIM, pose_feature, shared_detector

# The CLIP image normalization (the released code skipped it; the encoder expects it).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ActionEncoder(Protocol):
    """A frozen image encoder producing one feature per exemplar image."""

    name: str
    dim: int

    def encode(self, images: list[Image.Image]) -> torch.Tensor:
        """[N, dim] features of N images."""


def tiny_clip_vision(seed: int = 0) -> CLIPVisionModel:
    """A random CLIP vision tower for tests and the CPU default (32 px, 32-d)."""
    torch.manual_seed(seed)
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                              image_size=32, patch_size=4, projection_dim=32)
    return CLIPVisionModel(config)


class ClipImageEncoder(nn.Module):
    """CLIP vision tower's pooled output, differentiable w.r.t. pixels in [-1, 1].

    Args:
        pretrained: any CLIPVisionModel id or folder (`pkg://stickworld/clip`: one shipped in a package), or `tiny`
            for the random test model.
    """

    def __init__(self, pretrained: str = "tiny", dtype: torch.dtype = torch.float32):
        super().__init__()
        self.name = f"clip_vision:{pretrained}"
        if pretrained == "tiny":
            model = tiny_clip_vision()
        else:
            model = load_vision_tower(pretrained, dtype)
        self.model = model.to(dtype).eval().requires_grad_(False)
        self.dim = model.config.hidden_size
        self.image_size = model.config.image_size
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    def embed_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """[B, dim] pooled features of images in [-1, 1] (any size: resized to the encoder's input)."""
        x = (pixels.float().clamp(-1, 1) + 1) / 2
        x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bicubic", align_corners=False)
        x = ((x - self.mean) / self.std).to(self.model.dtype)
        return self.model(pixel_values=x).pooler_output.float()

    @torch.no_grad()
    def encode(self, images: list[Image.Image]) -> torch.Tensor:
        return self.embed_pixels(torch.stack([pil_to_tensor(im) for im in images]).to(self.mean.device))


def load_vision_tower(pretrained: str, dtype: torch.dtype) -> CLIPVisionModel:
    """The vision tower of a CLIP id or folder. A full CLIP folder also holds the text tower, which transformers
    reports key by key as "unexpected" on every load (a 30-line table per run); that report is silenced and the
    check that matters, no vision weight missing, is made here instead."""
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model, info = CLIPVisionModel.from_pretrained(str(package_path(pretrained)), dtype=dtype,
                                                      output_loading_info=True, ignore_mismatched_sizes=True)
    except OSError as err:
        message = f"Could not load the CLIP vision model {pretrained!r}: {err}"
        raise TwinActError(message.splitlines()[0]) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    if info["missing_keys"] or info["mismatched_keys"]:
        bad = sorted(info["missing_keys"]) + [k[0] if isinstance(k, tuple) else k for k in info["mismatched_keys"]]
        raise TwinActError(f"{pretrained!r} is not a CLIP vision model: {len(bad)} of its vision weights are missing "
                           f"or of another shape (first: {bad[0]}). Set model.clip_vision to a CLIP id or folder.")
    return model


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> [3, H, W] float tensor in [-1, 1]."""
    arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


class ActionFeature(nn.Module):
    """The coefficient MLP's input: a cached mean exemplar feature (frozen) or a trainable vector (`learned`)."""

    def __init__(self, feature: torch.Tensor, trainable: bool, source: str):
        super().__init__()
        self.source = source
        hold(self, "value", feature, trainable)

    @property
    def dim(self) -> int:
        return self.value.shape[-1]

    def forward(self) -> torch.Tensor:
        return self.value


def build_action_feature(encoder: ActionEncoder | None, images: list[Image.Image], *, dim: int = 320,
                         seed: int = 0) -> ActionFeature:
    """Make the coefficient MLP's input.

    Args:
        encoder: any `ActionEncoder` (its mean feature over the exemplars, frozen), or None for a trainable vector
            (the `learned` encoder: no image feature at all).
        images: the exemplar images.
        dim: feature size of the learned vector (320: the released code's ControlNet-stem feature size).
        seed: initialization of the learned vector.
    """
    if encoder is None:
        gen = torch.Generator().manual_seed(seed)
        return ActionFeature(torch.randn(dim, generator=gen), trainable=True, source="learned")
    return ActionFeature(encoder.encode(images).mean(0), trainable=False, source=encoder.name)


class NoPersonError(TwinActError):
    """An action encoder found no person in the exemplars numbered `indices` (all of them, not only the first)."""

    def __init__(self, indices: list[int]):
        super().__init__(f"no person found in exemplars {indices}")
        self.indices = indices


class PoseActionEncoder:
    """BlazePose keypoints -> a root-centred, torso-normalised feature with visibilities (99-d): actor-independent
    by construction, the closest offline stand-in for the released code's OpenPose + ControlNet-stem feature.

    Args:
        min_confidence: person detector threshold.
    """

    name = "pose:blazepose_full"
    dim = 99

    def __init__(self, min_confidence: float = 0.5):
        self.detector = shared_detector(min_confidence)
        self.dim = FEATURE_DIM

    # BlazePose finds far fewer people in a 64-512 px training crop than in the photo (12 of 20 COCO photos missed at
    # 64 px, 5 of 20 at full size); the feature is root-centred and torso-normalised, so keypoints of the original
    # give the crop's feature without the limbs the crop cuts off.
    reads_originals = True

    def encode(self, images: list[Image.Image]) -> torch.Tensor:
        keypoints = [self.detector.detect(im) for im in images]
        missing = [i for i, kp in enumerate(keypoints) if kp is None]
        if missing:
            raise NoPersonError(missing)
        return torch.stack([torch.from_numpy(pose_feature(kp)).float() for kp in keypoints])
