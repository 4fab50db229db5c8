"""Train the StickWorld CLIP (:mod:`stickworld.networks.clip_model`) contrastively on fresh drawings and their captions.

``python -m stickworld.pretraining.train_clip --work runs/stickworld_clip/work --out runs/stickworld_clip/model``
trains and exports a CLIP folder. A batch is pairs of drawings: each pair is one pose (one of ALL the actions, known and
held-out, or a free pose of the grammar) struck by two different actors in random scenes. The real CLIP knows what
a backflip is; only the diffusion base model must never see held-out names. Each drawing has its own caption
(:data:`CAPTION_MIX`): the actor and the pose (its action phrase or its units), the pose alone ("someone ..."), or
the actor alone; a share also names the scene.

Three losses. Two are contrastive, with every true pair of the batch as a positive, not only the image's own caption
("a photo of a fox" is true of every fox in the batch: with 18 actors and 57 actions such "false negatives" are
common here, where on the web they are rare, and the exact labels make them free to avoid):

- image-caption: CLIP's symmetric cross-entropy;
- image-image (``--pose-weight``): an image's positives are the other drawings of its pose, by other actors;
  matching a pose across actors can only be done by seeing the pose.

The third (``--joint-weight``) makes the ViT see poses at all: a linear head, not exported, reads from the last
patch tokens which patch holds each of the 14 joints that :func:`stickworld.world.drawing.draw` returns. With captions
alone, a 300-step check learnt the actors (colours, at once) and no pose: the action captions' embeddings collapsed
onto one another (cosine 0.998), so neither tower had anything to align poses with. A ViT (or a small CNN)
classifying the 57 actions directly stayed at chance for 400 steps on random takes too, yet learnt in 150 on
canonical takes (unjittered, centred): so training starts on canonical takes and moves to random ones over
``--ramp`` steps, keeping ``--floor`` of them (a canonical take is one of the random takes' possible outcomes).

Every batch is a function of (``--seed``, step), the learning rate of the step alone, and a checkpoint
(``<work>/checkpoint.safetensors``: weights, optimizer moments, step, seconds) is one atomically written file, so a
run resumed from ``--work`` ends bitwise equal to an unbroken one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from stickworld.gates import clip_quality
from stickworld.networks import clip_model
from stickworld.pretraining.checkpoints import load_optimizer, load_tensors, optimizer_tensors, save_tensors
from stickworld.pretraining.mixture import SCENE_SHARE, canonical_share
from stickworld.pretraining.pretrain import lr_at
from stickworld.world.actions import ACTIONS, Action, free_action
from stickworld.world.actors import ACTORS, get_actor
from stickworld.world.captions import ACTOR_TEMPLATES, SCENE_PHRASES
from stickworld.world.drawing import CAPTION_TEMPLATES, draw
from stickworld.world.scenes import SCENES
from stickworld.world.units import random_units

SETTINGS = ("seed", "steps", "batch", "batch_actors", "pose_weight", "joint_weight", "ramp", "floor", "lr", "warmup",
            "size", "fp32")  # what a resumed run must share with the run it continues
PROBE_ACTORS = ("robot", "fox", "red_haired_woman")  # a machine, an animal, a person
# Poses named by an action (known or held-out), else a free pose of the grammar described by its units.
NAMED_SHARE = 0.6
# Caption kinds: the actor and the pose, the pose alone, the actor alone. Poses are said in 85% of captions: an
# actor is a colour and a shape a ViT picks up at once, while 57 poses, some a forearm apart, need the signal.
CAPTION_MIX = {"actor_pose": 0.55, "pose": 0.3, "actor": 0.15}


@dataclasses.dataclass(frozen=True)
class Facts:
    """What an image shows, or what a caption says about one (``None``: not said)."""

    actor: str | None
    pose: tuple | None  # the canonical pose, as a tuple: equal poses are one pose whatever they are called
    scene: str | None


def positives(shown: list[Facts], said: list[Facts]) -> torch.Tensor:
    """[images, captions] bool: caption j describes image i truly (everything it says holds for the image)."""
    out = torch.ones(len(shown), len(said), dtype=torch.bool)
    for field in ("actor", "pose", "scene"):
        codes = {}
        image = torch.tensor([codes.setdefault(getattr(f, field), len(codes)) for f in shown])
        caption = torch.tensor([-1 if getattr(f, field) is None else codes.get(getattr(f, field), -2) for f in said])
        out &= (caption[None, :] == -1) | (caption[None, :] == image[:, None])
    return out


def pose_key(pose) -> tuple:
    return tuple(round(v, 4) if isinstance(v, float) else v for v in dataclasses.astuple(pose))


def random_pose(rng: np.random.Generator) -> Action:
    if rng.random() < NAMED_SHARE:
        return ACTIONS[list(ACTIONS)[int(rng.integers(len(ACTIONS)))]]
    return free_action(*random_units(rng))


def take(rng: np.random.Generator, actor: str, action: Action, canonical: bool = False) -> tuple:
    """One drawing of ``actor`` doing ``action`` in a random scene, captioned: (PIL image, joints, caption, facts of
    the image, facts the caption states). ``canonical`` draws the pose unjittered, centred, at the usual size."""
    kind = str(rng.choice(list(CAPTION_MIX), p=list(CAPTION_MIX.values())))
    subject = clip_model.SOMEONE if kind == "pose" else get_actor(actor).caption
    if kind == "actor":
        text = ACTOR_TEMPLATES[int(rng.integers(len(ACTOR_TEMPLATES)))].format(actor=subject)
    else:
        text = CAPTION_TEMPLATES[int(rng.integers(len(CAPTION_TEMPLATES)))].format(actor=subject, action=action.phrase)
    scene = SCENES[int(rng.integers(len(SCENES)))].name
    says_scene = rng.random() < SCENE_SHARE
    if says_scene:
        text = f"{text} {SCENE_PHRASES[scene]}"
    image, joints = draw(actor, action, clip_model.IMAGE_SIZE, None if canonical else rng, scene=scene)
    shown = Facts(actor, pose_key(action.pose), scene)
    said = Facts(None if kind == "pose" else actor, None if kind == "actor" else shown.pose,
                 scene if says_scene else None)
    return image, joints, text, shown, said


def batch(seed: int, step: int, size: int, actors: int = 0, canonical: float = 0.0) -> dict:
    """The ``step``-th batch of ``size`` (even) drawings, ``size / 2`` poses by two actors each.

    Args:
        actors: When > 0, the whole batch is taken from that many actors: many drawings of one actor doing other
            things are hard negatives, told apart from its own caption by the pose alone.
        canonical: Share of poses drawn as canonical takes (:func:`canonical_share`).

    Returns:
        ``pixels`` [B, 3, 64, 64], ``joints`` [B, 14, 2], ``captions``, ``pairs`` (caption positives, [B images, B
        captions] bool) and ``same_pose`` ([B, B] bool, an image with itself excluded).
    """
    if size % 2:
        raise ValueError(f"the batch is pairs of drawings; give an even size, not {size}")
    rng = np.random.default_rng([seed, step, 0])  # three words: never the two-word seeds clip_quality draws from
    cast = list(ACTORS)
    if actors:
        cast = [cast[i] for i in sorted(rng.choice(len(cast), size=actors, replace=False))]
    takes = []
    for _ in range(size // 2):
        action, pair = random_pose(rng), rng.choice(len(cast), size=2, replace=False)
        plain = bool(rng.random() < canonical)
        takes += [take(rng, cast[pair[0]], action, plain), take(rng, cast[pair[1]], action, plain)]
    images, joints, texts, shown, said = zip(*takes)
    same_pose = positives(shown, [Facts(None, f.pose, None) for f in shown]) & ~torch.eye(size, dtype=torch.bool)
    return dict(pixels=clip_model.pixels(images), joints=torch.from_numpy(np.stack(joints)), captions=list(texts),
                pairs=positives(shown, said), same_pose=same_pose)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each row against a target spread evenly over its true entries ([N, M] bool)."""
    target = target.float()
    return -(target / target.sum(1, keepdim=True) * F.log_softmax(logits, 1)).sum(1).mean()


def joint_cells(joints: torch.Tensor, grid: int) -> torch.Tensor:
    """[B, 14, 2] joint fractions (x, y, y down) -> [B, 14] index of the patch holding each, row by row as the ViT
    orders its patch tokens."""
    cell = (joints.clamp(0, 1 - 1e-6) * grid).long()
    return cell[..., 1] * grid + cell[..., 0]


def losses(nets: torch.nn.ModuleDict, tok, b: dict, bf16: bool) -> dict[str, torch.Tensor]:
    """One batch's losses: image-caption and image-image (same pose, other actor) contrastive, and the joints."""
    model = nets["clip"]
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # the towers' matmuls; the losses stay fp32
        vision = model.vision_model(pixel_values=b["pixels"])
        words = model.text_model(**clip_model.text_inputs(tok, b["captions"])).pooler_output
    image = clip_model.normalize(model.visual_projection(vision.pooler_output.float()))
    caption = clip_model.normalize(model.text_projection(words.float()))
    scale = model.logit_scale.exp().clamp(max=100)
    logits = scale * image @ caption.T
    out = {"captions": (soft_cross_entropy(logits, b["pairs"]) + soft_cross_entropy(logits.T, b["pairs"].T)) / 2}
    # -1e4, not -inf, keeps an image out of its own softmax: 0 * -inf would be nan.
    self_mask = torch.eye(len(image), dtype=torch.bool)
    out["poses"] = soft_cross_entropy((scale * image @ image.T).masked_fill(self_mask, -1e4), b["same_pose"])
    # Which patch holds each joint, read from the last patch tokens by a linear head that is not exported.
    cells = nets["joints"](vision.last_hidden_state[:, 1:].float())  # [B, patches, 14]
    grid = model.config.vision_config.image_size // model.config.vision_config.patch_size
    target = joint_cells(b["joints"], grid)
    out["joints"] = F.cross_entropy(cells.transpose(1, 2).reshape(-1, grid * grid), target.reshape(-1))
    return out


def _log(work: Path, record: dict) -> None:
    with open(work / "log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)


def _checkpoint(work: Path, nets, opt, step: int, seconds: float, settings: dict) -> None:
    tensors = {f"model.{k}": v for k, v in nets.state_dict().items()}
    tensors.update({f"optim.{k}": v for k, v in optimizer_tensors(opt).items()})
    save_tensors(tensors, work / "checkpoint.safetensors", {"step": step, "seconds": seconds, "settings": settings})


def _resume(work: Path, nets, opt, settings: dict) -> tuple[int, float]:
    """Load ``work``'s checkpoint into ``nets`` and ``opt``; (step, seconds) it was taken at, (0, 0) if none."""
    path = work / "checkpoint.safetensors"
    if not path.is_file():
        return 0, 0.0
    tensors, meta = load_tensors(path)
    if meta["settings"] != settings:
        raise SystemExit(f"{work} was started with other settings ({meta['settings']}); resume with those or give "
                         "a new --work folder.")
    nets.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    load_optimizer(opt, {k[6:]: v for k, v in tensors.items() if k.startswith("optim.")})
    return meta["step"], meta["seconds"]


def _refuse_existing(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise SystemExit(f"{out} already exists and is not empty; give another --out or --overwrite to replace it.")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, required=True, help="checkpoint folder (resumed when it holds one)")
    p.add_argument("--out", type=Path, required=True, help="CLIP folder to export when training ends (new or empty)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.add_argument("--seed", type=int, default=0, help="weights and drawing stream")
    p.add_argument("--steps", type=int, default=4000, help="the shipped run's 4,000 took 87 min on one core")
    p.add_argument("--batch", type=int, default=128, help="drawings per step (even: pairs of one pose)")
    p.add_argument("--batch-actors", type=int, default=6, help="actors per batch (0: any); see batch()")
    p.add_argument("--pose-weight", type=float, default=1.0, help="weight of the image-image pose loss")
    p.add_argument("--joint-weight", type=float, default=1.0, help="weight of the joint-patch loss")
    p.add_argument("--ramp", type=int, default=800, help="steps over which canonical takes go from all to --floor")
    p.add_argument("--floor", type=float, default=0.1, help="share of canonical takes after --ramp")
    p.add_argument("--lr", type=float, default=1e-3, help="peak AdamW rate (cosine decay to 10%%)")
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--size", choices=tuple(clip_model.SIZES), default="small")
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast in the towers (it cuts a CPU step by ~30%%)")
    p.add_argument("--ckpt-every", type=int, default=100)
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--probe-every", type=int, default=100,
                   help="log clip_quality's readings on a small held-out subset (3 actors x 57 actions, so "
                        "actor_top1 is among 3); 0: never")
    p.add_argument("--stop-after", type=float, default=None, help="exit (resumably) after this many minutes")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    """Train (or resume) and export; returns ``--out`` (a run stopped by ``--stop-after`` exports nothing)."""
    args = parse(argv)
    _refuse_existing(args.out, args.overwrite)
    torch.set_num_threads(args.threads)
    settings = {k: getattr(args, k) for k in SETTINGS}
    model, tok = clip_model.build(args.size, args.seed)
    nets = torch.nn.ModuleDict({"clip": model, "joints": torch.nn.Linear(model.config.vision_config.hidden_size, 14)})
    nets.train()
    opt = torch.optim.AdamW(nets.parameters(), lr=args.lr, weight_decay=0.0)
    args.work.mkdir(parents=True, exist_ok=True)
    start, seconds = _resume(args.work, nets, opt, settings)
    began, deadline = time.time(), None if args.stop_after is None else time.time() + 60 * args.stop_after
    probe = clip_quality.eval_set(actors=PROBE_ACTORS) if args.probe_every else None
    weights = {"captions": 1.0, "poses": args.pose_weight, "joints": args.joint_weight}
    window, t0 = [], time.time()
    for step in range(start, args.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        b = batch(args.seed, step, args.batch, args.batch_actors, canonical_share(step, args.ramp, args.floor))
        parts = losses(nets, tok, b, not args.fp32)
        opt.zero_grad(set_to_none=True)
        sum(weights[k] * v for k, v in parts.items()).backward()
        torch.nn.utils.clip_grad_norm_(nets.parameters(), 1.0)
        opt.step()
        window.append([float(v.detach()) for v in parts.values()])
        done = step + 1
        if done % args.log_every == 0 or done == args.steps:
            mean = np.mean(window, axis=0)
            _log(args.work, {"step": done, **{f"loss_{k}": round(float(m), 4) for k, m in zip(parts, mean)},
                             "lr": opt.param_groups[0]["lr"],
                             "logit_scale": round(float(model.logit_scale.detach().exp()), 2),
                             "s_per_step": round((time.time() - t0) / len(window), 3)})
            window, t0 = [], time.time()
        if probe and done % args.probe_every == 0:  # no dropout or batch norm: measuring changes nothing
            reading = clip_quality.measure(model, tok, probe)
            _log(args.work, {"step": done, "probe": {**reading["retrieval"], "margin": reading["margin"]}})
            t0 = time.time()
        if done % args.ckpt_every == 0 or done == args.steps:
            _checkpoint(args.work, nets, opt, done, seconds + time.time() - began, settings)
            if deadline and time.time() > deadline and done < args.steps:
                print(f"stopped after {args.stop_after} min at step {done}; rerun the same command to resume",
                      flush=True)
                return args.out
    _, meta = load_tensors(args.work / "checkpoint.safetensors")
    _refuse_existing(args.out, args.overwrite)  # it may have appeared while training ran
    model.eval()
    clip_model.save(model, args.out)
    record = {"command": "python -m stickworld.pretraining.train_clip "
                         + shlex.join(sys.argv[1:] if argv is None else argv),
              "settings": settings, "steps": args.steps, "train_seconds": round(meta["seconds"], 1),
              "s_per_step": round(meta["seconds"] / args.steps, 3), "machine": clip_model.machine(),
              "parameters": sum(p.numel() for p in model.parameters()),
              "not_exported": "the joint-patch head (a Linear on the last patch tokens), a training aid only",
              "named_share": NAMED_SHARE, "caption_mix": CAPTION_MIX, "scene_share": SCENE_SHARE}
    (args.out / "train.json").write_text(json.dumps(record, indent=2) + "\n")
    print(args.out)
    return args.out


if __name__ == "__main__":
    main()
