"""Score StickWorld generations against the exact answer: which pose, which actor.

The judges (:mod:`stickworld.networks.judges`) read an image back into 14 joints and actor probabilities. Poses
are compared after removing what an action does not fix: position and size in the frame (joints centred on their
mean and scaled to unit RMS radius). The reference is the action's canonical pose on the *requested* actor's body,
so a bear's short arms are not counted as a wrong pose.

- S_Action = exp(-d^2 / (2 kappa^2)), d the RMS joint distance between the normalised generated and true poses;
  ``pose_distance`` is d itself and ``error_arms`` / ``error_legs`` / ``error_torso`` the same RMS over one part's
  joints (shoulders, elbows, hands / knees, feet / head, neck, hips), so a table can say where a pose is wrong.
- S_Actor = the judge's probability of the requested actor; Leakage = its probability of the exemplars' actor(s)
  (summed when there are two).
- With the StickWorld CLIP (:mod:`stickworld.networks.clip_model`, unit-norm joint-space embeddings), the CLIP-style
  metrics of the SD setting: S_Action (CLIP) = cos(image, "a photo of someone <action phrase>"), S_Actor (CLIP) =
  cos(image, "a photo of <actor>"), Leakage (CLIP) = cos(image, "a photo of <exemplar actor>") (mean over the
  exemplars' actors). They see colour and clothing, so an actor that takes on the exemplar's cape raises Leakage
  (CLIP) before the judge's identity flips.
- Action / actor "correct": the nearest action (by d) is the prompted one; the most probable actor is the
  prompted one. For the base model's quality bar the candidates are the known actions; for a customization
  (`score_images`) they are every action, known and held-out, so a learned pose counts only when it is nearer its
  true pose than any pose the base model already knows.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from PIL import Image

from stickworld.networks import clip_model, judges
from stickworld.networks.judges import load as load_judges
from stickworld.world.actions import ACTIONS, HELDOUT_ACTIONS, get_action
from stickworld.world.actors import ACTORS, get_actor
from stickworld.world.exemplars import load_meta
from stickworld.world.skeleton import JOINTS, forward_kinematics, normalize
from twinact.errors import TwinActError
from twinact.eval.scorers import ScoredRun
from twinact.paths import package_path

KAPPA = 0.15  # in RMS-radius units; one limb off by 90 degrees moves d by about 0.15-0.25
ACTOR_INDEX = {name: i for i, name in enumerate(ACTORS)}
CLIP = "pkg://stickworld/clip"  # the shipped StickWorld CLIP
PART_JOINTS = {part: [JOINTS.index(j) for j in joints] for part, joints in (
    ("arms", [f"{s}_{j}" for s in ("left", "right") for j in ("shoulder", "elbow", "hand")]),
    ("legs", [f"{s}_{j}" for s in ("left", "right") for j in ("knee", "foot")]),
    ("torso", ["head", "neck", "left_hip", "right_hip"]))}


@functools.lru_cache(maxsize=None)
def canonical(actor: str, action: str) -> np.ndarray:
    """Normalised joints of ``action``'s un-jittered pose on ``actor``'s body, in image orientation (y down)."""
    joints = forward_kinematics(get_action(action).pose, get_actor(actor).build) * [1.0, -1.0]
    return normalize(joints)


def squared_errors(joints: np.ndarray, actor: str, action: str) -> np.ndarray:
    """[B, 14] squared distance of each normalised joint of ``joints`` [B, 14, 2] to the true pose."""
    return ((normalize(joints) - canonical(actor, action)) ** 2).sum(-1)


def pose_distance(joints: np.ndarray, actor: str, action: str) -> np.ndarray:
    """RMS joint distance of normalised ``joints`` [B, 14, 2] (image fractions) to the true pose: [B]."""
    return np.sqrt(squared_errors(joints, actor, action).mean(-1))


def part_errors(joints: np.ndarray, actor: str, action: str) -> dict[str, np.ndarray]:
    """RMS distance per body part (``arms``, ``legs``, ``torso``: head, neck and hips) of normalised ``joints``
    [B, 14, 2] to the true pose, in the units of :func:`pose_distance`: where a wrong pose is wrong."""
    return rms_by_part(squared_errors(joints, actor, action))


def rms_by_part(sq: np.ndarray) -> dict[str, np.ndarray]:
    """[B, 14] squared joint errors -> the RMS over each part's joints, [B] per part."""
    return {part: np.sqrt(sq[:, idx].mean(-1)) for part, idx in PART_JOINTS.items()}


def pose_similarity(joints: np.ndarray, actor: str, action: str, kappa: float = KAPPA) -> np.ndarray:
    """S_Action per image: exp(-d^2 / (2 kappa^2)), 1 for the exact pose."""
    return np.exp(-pose_distance(joints, actor, action) ** 2 / (2 * kappa**2))


def nearest_action(joints: np.ndarray, actor: str, candidates: list[str]) -> list[str]:
    """For each of ``joints`` [B, 14, 2], the candidate action whose true pose on ``actor`` is nearest."""
    d = np.stack([pose_distance(joints, actor, a) for a in candidates], axis=1)
    return [candidates[i] for i in d.argmin(1)]


def score_images(images: list[Image.Image], actors: list[str], action: str,
                 exemplar_actors: list[str] = (), model: judges.Judge | None = None) -> dict[str, np.ndarray]:
    """Per-image S_Action (vs ``action`` on each image's requested actor), action and actor correct, S_Actor and
    Leakage.

    Args:
        images: Generations, any size (the judges resize to 64 px).
        actors: The actor each image asked for (StickWorld actor names).
        action: The action they should show (held-out or known).
        exemplar_actors: Actors of the exemplars; Leakage is their summed probability (omitted when empty).
    """
    joints, probs = judges.predict(images, model)
    # one reference pose per image (its requested actor's body), so the errors are taken image by image
    sq = np.concatenate([squared_errors(joints[i:i + 1], a, action) for i, a in enumerate(actors)])
    d = np.sqrt(sq.mean(-1))
    out = {"s_action": np.exp(-d**2 / (2 * KAPPA**2)), "pose_distance": d, "joints": joints,
           "s_actor": probs[np.arange(len(actors)), [ACTOR_INDEX[a] for a in actors]],
           **{f"error_{part}": err for part, err in rms_by_part(sq).items()}}
    if exemplar_actors:
        out["leakage"] = probs[:, [ACTOR_INDEX[a] for a in exemplar_actors]].sum(1)
    read_as = [nearest_action(joints[i:i + 1], a, list(ACTIONS))[0] for i, a in enumerate(actors)]
    out["action_correct"] = np.array([r == action for r in read_as], dtype=np.float32)
    out["actor_correct"] = (probs.argmax(1) == np.array([ACTOR_INDEX[a] for a in actors])).astype(np.float32)
    return out


@functools.lru_cache(maxsize=2)
def _clip(folder: str):
    return clip_model.load(package_path(folder))


def clip_scores(images: list[Image.Image], actors: list[str], action: str, exemplar_actors: list[str] = (),
                clip: str = CLIP) -> dict[str, np.ndarray]:
    """Per-image S_Action (CLIP), S_Actor (CLIP) and, with ``exemplar_actors``, Leakage (CLIP): cosines in the
    StickWorld CLIP's joint space between each image and the caption of its action, its requested actor and the
    exemplars' actors (``clip``: a StickWorld CLIP folder or ``pkg://`` path)."""
    model, tok = _clip(clip)
    img, _ = clip_model.embed_images(model, [im.convert("RGB").resize((clip_model.IMAGE_SIZE,) * 2, Image.BICUBIC)
                                             for im in images])
    names = sorted(set(actors) | set(exemplar_actors))
    text = dict(zip(names, clip_model.embed_texts(model, tok, [
        clip_model.ACTOR_PROMPT.format(actor=get_actor(a).caption) for a in names])))
    action_text = clip_model.embed_texts(model, tok, [clip_model.ACTION_PROMPT.format(
        action=get_action(action).phrase)])[0]
    out = {"s_action_clip": (img @ action_text).numpy(),
           "s_actor_clip": (img * torch.stack([text[a] for a in actors])).sum(1).numpy()}
    if exemplar_actors:
        out["leakage_clip"] = (img @ torch.stack([text[a] for a in exemplar_actors]).T).mean(1).numpy()
    return out


class StickWorldScorer:
    """The evaluation scorer for StickWorld runs (`eval_suite=stickworld`): `score_images` against the true pose of
    the run's action, each suite actor given by its StickWorld `id`.

    Args:
        device: unused (the judges are small enough for the CPU); kept so every scorer takes the same arguments.
        clip: the StickWorld CLIP of the `*_clip` metrics (:func:`clip_scores`); null leaves them out.
        judges: the judges' weights (a file, or a folder holding `judges.safetensors`); null: the shipped ones. A base
            model with another VAE is read by judges trained through that VAE.
    """

    def __init__(self, device: str = "cpu", clip: str | None = CLIP, judges: str | None = None):
        self.device, self.clip = device, clip
        self.judges = None if judges is None else load_judges(package_path(judges))
        self.description = f"StickWorld judges ({judges or 'stickworld/data/judges.safetensors'})" + (
            f" and CLIP `{clip}`" if clip else "")

    def __call__(self, images: list[Image.Image], jobs: list[dict], suite, run: ScoredRun,
                 exemplars: list[Image.Image]) -> tuple[dict[str, list[float]], list[str]]:
        action = run.action
        if action not in ACTIONS:
            raise TwinActError(f"eval_suite=stickworld scores StickWorld actions; {action!r} is not one "
                               f"(use action=stickworld action.name=<one of {', '.join(HELDOUT_ACTIONS)}>).")
        ids = {a.name: a.id for a in suite.actors}
        exemplar_actors = load_meta(run.image_dir).get("actors", [])
        actors = [ids[j["actor"]] for j in jobs]
        scores = score_images(images, actors, action, exemplar_actors, self.judges)
        keys = ("s_action", "action_correct", "pose_distance", "error_arms", "error_legs", "error_torso", "s_actor",
                "leakage", "actor_correct")
        if self.clip:
            scores.update(clip_scores(images, actors, action, exemplar_actors, self.clip))
            keys += ("s_action_clip", "s_actor_clip", "leakage_clip")
        return {k: [float(x) for x in scores[k]] for k in keys if k in scores}, []
