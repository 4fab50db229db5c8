"""Evaluation scorers: what turns an evaluation's generated images into per-image scores.

A scorer is any object with a `description` (for the report) and
`__call__(images, jobs, suite, run: ScoredRun, exemplars) -> (per-image scores, notes)`; the evaluation suite names one
by `_target_` (`eval_suite.scorer`), so a world or judge of one's own plugs in without twinact knowing it.
`ClipScorer` is the default: CLIP joint-space similarities and BlazePose keypoints, for photos and SD models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

from twinact.errors import TwinActError
from twinact.eval.metrics import EmbeddingSimilarity, PoseActionScore, TextImageSimilarity
from twinact.method.data import load_exemplars
from twinact.model.assets import clip_tokenizer_dir
from twinact.paths import package_path
from twinact.space.action_encoder import CLIP_MEAN, CLIP_STD, pil_to_tensor
from twinact.space.pose import FEATURE_DIM, pose_feature, shared_detector


@dataclass
class ScoredRun:
    """What a scorer knows of the run it scores, read from the run's recorded config."""

    action: str  # action.name
    image_dir: str  # action.image_dir: the exemplars
    clip_vision: str  # model.clip_vision: the base model's CLIP


def tiny_clip(seed: int = 0) -> CLIPModel:
    """A random CLIP (text + vision + projections) for tests and the CPU default: numbers are meaningless."""
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                     "vocab_size": 49408, "max_position_embeddings": 77, "eos_token_id": 49407},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                       "image_size": 32, "patch_size": 4},
        projection_dim=32,
    )
    return CLIPModel(config)


class ClipJudge:
    """CLIP image and text embeddings in the joint space.

    Args:
        pretrained: a CLIPModel id or folder (openai/clip-vit-large-patch14, `pkg://stickworld/clip`), or `tiny`.
        device: where to run.
    """

    def __init__(self, pretrained: str = "tiny", device: str | torch.device = "cpu"):
        if pretrained == "tiny":
            self.model, self.tokenizer = tiny_clip(), CLIPTokenizer.from_pretrained(str(clip_tokenizer_dir()))
        else:
            try:
                folder = str(package_path(pretrained))
                self.model = CLIPModel.from_pretrained(folder)
                self.tokenizer = CLIPTokenizer.from_pretrained(folder)
            except OSError as err:
                raise TwinActError(f"Could not load the CLIP judge {pretrained!r}: {err}".splitlines()[0]) from None
        self.name = pretrained
        self.device = torch.device(device)
        self.model.to(self.device).eval().requires_grad_(False)
        size = self.model.config.vision_config.image_size
        self.size = size
        self.mean = torch.tensor(CLIP_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(CLIP_STD, device=self.device).view(1, 3, 1, 1)

    @torch.no_grad()
    def image_embeddings(self, images: list[Image.Image]) -> torch.Tensor:
        x = (torch.stack([pil_to_tensor(im) for im in images]).to(self.device) + 1) / 2
        x = F.interpolate(x, size=(self.size, self.size), mode="bicubic", align_corners=False)
        out = self.model.get_image_features(pixel_values=(x - self.mean) / self.std)
        return getattr(out, "pooler_output", out).float().cpu()

    @torch.no_grad()
    def text_embeddings(self, texts: list[str]) -> torch.Tensor:
        ids = self.tokenizer(list(texts), padding="max_length", max_length=77, truncation=True, return_tensors="pt")
        out = self.model.get_text_features(input_ids=ids.input_ids.to(self.device))
        return getattr(out, "pooler_output", out).float().cpu()


class PoseJudge:
    """BlazePose features per image, NaN rows where no person is detected."""

    def __init__(self):
        self.detector, self.dim = shared_detector(), FEATURE_DIM

    def features(self, images: list[Image.Image]) -> torch.Tensor:
        rows = []
        for im in images:
            kp = self.detector.detect(im)
            rows.append(pose_feature(kp) if kp is not None else np.full(self.dim, np.nan, dtype=np.float32))
        return torch.from_numpy(np.stack(rows))


def pose_judge_or_none(enabled: bool) -> tuple[PoseJudge | None, str | None]:
    """The pose judge, or None and the reason (pose metrics are then left out of the report, not faked)."""
    if not enabled:
        return None, "disabled (eval_suite.scorer.pose=false)"
    try:
        return PoseJudge(), None
    except (ImportError, TwinActError) as err:
        return None, f"unavailable: {str(err).splitlines()[0]}"


class ClipScorer:
    """S_Action (CLIP image cosine to the exemplars; BlazePose keypoints when `pose`), S_Actor (CLIP cosine to the
    actor phrase, and to a customized actor's photos), Leakage (CLIP cosine to the exemplars' actor).

    Args:
        clip: a CLIPModel id or folder, `tiny`, or `auto` (the run's `model.clip_vision`).
        pose: add the BlazePose metrics (left out with a note when the pose assets are missing).
        device: where the judges run.
    """

    def __init__(self, clip: str = "auto", pose: bool = True, device: str = "cpu"):
        self.clip, self.pose, self.device = clip, pose, device
        self.description = "CLIP"

    def __call__(self, images: list[Image.Image], jobs: list[dict], suite, run: ScoredRun,
                 exemplars: list[Image.Image]) -> tuple[dict[str, list[float]], list[str]]:
        clip = run.clip_vision if self.clip == "auto" else self.clip
        self.description = f"CLIP `{clip}`"
        judge = ClipJudge(clip, self.device)
        pose, why_not = pose_judge_or_none(self.pose)
        notes = [f"pose metrics {why_not}"] if why_not else []
        if clip == "tiny":
            notes.append("CLIP judge is the tiny random model: the numbers test the pipeline, they mean nothing.")
        img_emb = judge.image_embeddings(images)
        per_image = {
            "s_action_embed": EmbeddingSimilarity(judge.image_embeddings(exemplars)).scores(img_emb),
            "s_actor_text": TextImageSimilarity.scores(img_emb, judge.text_embeddings(
                [suite.actor_text.format(actor=j["actor"]) for j in jobs])),
            "leakage_text": TextImageSimilarity.scores(
                img_emb, judge.text_embeddings([suite.exemplar_actor] * len(jobs))),
        }
        references = {a.name: EmbeddingSimilarity(judge.image_embeddings(
            [e.image for e in load_exemplars(a.images, images[0].width)])) for a in suite.actors if a.get("images")}
        if references:  # customized actors: image-image similarity to their reference photos
            per_image["s_actor_image"] = torch.tensor([
                float(references[j["actor"]].scores(img_emb[i:i + 1])) if j["actor"] in references else float("nan")
                for i, j in enumerate(jobs)])
        if pose is not None:
            metric = PoseActionScore(pose.features(exemplars))
            per_image["s_action_pose"] = metric.scores(pose.features(images))
            per_image["detection_rate"] = (~torch.isnan(per_image["s_action_pose"])).float()
        return {k: [float(x) for x in v] for k, v in per_image.items()}, notes
