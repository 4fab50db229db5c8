"""Evaluation metrics as torchmetrics `Metric`s over precomputed features (batched, device-agnostic).

The paper names S_Action and S_Actor but never defined them; twinact's definitions:

- `PoseActionScore` (S_Action, pose): for each generated image with a detected person, the mean over exemplars of
  exp(-d^2 / (2 kappa^2)), d the RMS distance between root-centred, torso-normalised, visibility-weighted keypoints
  (`twinact.space.pose.pose_feature`), kappa in torso lengths. 1 for identical poses; the detection rate is reported
  beside it, since undetected images cannot be scored.
- `EmbeddingSimilarity`: mean cosine between generated-image embeddings and a set of reference embeddings. With CLIP
  image embeddings of the exemplars it is S_Action (embedding); of a customized actor's photos, S_Actor (image).
- `TextImageSimilarity`: CLIP text-image cosine of each generation to a per-image phrase: the requested actor gives
  S_Actor (text); the exemplar actor's description gives Leakage (text), where lower is better.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics import Metric


class PoseActionScore(Metric):
    """Args:
    references: [E, 99] pose features of the exemplars.
    kappa: distance scale in torso lengths (0.5: half a torso off on average scores exp(-0.5) = 0.61).
    """

    higher_is_better = True
    full_state_update = False

    def __init__(self, references: torch.Tensor, kappa: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.register_buffer("references", references.float().view(len(references), -1, 3))
        self.kappa = kappa
        self.add_state("score_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("detected", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0), dist_reduce_fx="sum")

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        """[B] per-image scores; NaN where no person was detected (a NaN feature row)."""
        gen = features.float().view(len(features), -1, 3)[:, None, :, :2]  # [B, 1, J, 2]
        ref = self.references.to(features.device)[None, :, :, :2]  # [1, E, J, 2]
        d2 = ((gen - ref) ** 2).sum(-1).mean(-1)  # [B, E] mean squared joint distance
        return torch.exp(-d2 / (2 * self.kappa**2)).mean(-1)

    def update(self, features: torch.Tensor) -> None:
        s = self.scores(features)
        ok = ~torch.isnan(s)
        self.score_sum += s[ok].double().sum()
        self.detected += ok.sum()
        self.total += len(s)

    def compute(self) -> dict[str, torch.Tensor]:
        detected = self.detected.clamp(min=1)
        return {"s_action_pose": (self.score_sum / detected).float(),
                "detection_rate": self.detected.float() / self.total.clamp(min=1)}


class EmbeddingSimilarity(Metric):
    """Mean cosine of generated embeddings [B, d] to every reference embedding [R, d]."""

    higher_is_better = True
    full_state_update = False

    def __init__(self, references: torch.Tensor, **kwargs):
        super().__init__(**kwargs)
        self.register_buffer("references", F.normalize(references.float(), dim=-1))
        self.add_state("total_sim", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0), dist_reduce_fx="sum")

    def scores(self, embeddings: torch.Tensor) -> torch.Tensor:
        return (F.normalize(embeddings.float(), dim=-1) @ self.references.to(embeddings.device).T).mean(-1)

    def update(self, embeddings: torch.Tensor) -> None:
        self.total_sim += self.scores(embeddings).double().sum()
        self.count += len(embeddings)

    def compute(self) -> torch.Tensor:
        return (self.total_sim / self.count.clamp(min=1)).float()


class TextImageSimilarity(Metric):
    """Mean cosine between image embeddings [B, d] and their own text embeddings [B, d] (CLIP's joint space)."""

    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("total_sim", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0), dist_reduce_fx="sum")

    @staticmethod
    def scores(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
        return F.cosine_similarity(image_embeddings.float(), text_embeddings.float(), dim=-1)

    def update(self, image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> None:
        self.total_sim += self.scores(image_embeddings, text_embeddings).double().sum()
        self.count += len(image_embeddings)

    def compute(self) -> torch.Tensor:
        return (self.total_sim / self.count.clamp(min=1)).float()
