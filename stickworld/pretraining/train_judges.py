"""Train the StickWorld judges (:mod:`stickworld.networks.judges`) on freshly drawn samples.

``python -m stickworld.pretraining.train_judges --out stickworld/data/judges --steps 6000 --resume`` writes
``judges.safetensors`` and ``judges.json`` (command, data sizes, metrics). ``--resume`` continues from
``judges.ckpt.safetensors`` (weights, optimizer moments, step), written every ``--ckpt-every`` steps and deleted
once the final weights are saved.

The judges train on BOTH known and held-out actions, and with ``--free-frac`` on free poses of the pose grammar
(:mod:`stickworld.world.units`, picked as :mod:`stickworld.pretraining.mixture` picks them). That is deliberate: they
measure whether a generation shows the held-out pose, so they must recognise it, and a model pretrained on the mixture
renders free poses too; they are not the diffusion model, whose pretraining must never see held-out actions, and nothing
they learn flows into it. ``--free-frac`` defaults to 0, which gives exactly the batches of the runs recorded before
free poses existed. Metrics are reported over the whole evaluation set and per kind (``known``, ``heldout``, ``free``).
Every training batch is drawn fresh from a seed derived from (``--seed``, step), so there is no training set to
overfit and a resumed run sees exactly the batches an unbroken one would. Evaluation uses a fixed set drawn from
``--eval-seed``, a seed training never uses."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from stickworld.networks import judges
from stickworld.networks.judges import POSE_TOL, vae_round_trip
from stickworld.pretraining.checkpoints import load_optimizer, load_tensors, optimizer_tensors, save_tensors
from stickworld.world.actions import free_action
from stickworld.world.actors import ACTORS
from stickworld.world.drawing import ACTOR_IDS, draw, sample
from stickworld.world.units import random_units

KINDS = ("known", "heldout", "free")  # the kinds of pose, in the order of the ids draw_batch returns


def free_sample(rng: np.random.Generator) -> dict:
    """A free pose as the mixture picks one (:func:`stickworld.pretraining.mixture.sample`): a random actor in a
    random scene in a random composition of 2-5 units; ``image``, ``joints`` and ``actor_id`` as
    :func:`stickworld.world.drawing.sample` gives."""
    actor = list(ACTORS)[int(rng.integers(len(ACTORS)))]
    image, joints = draw(actor, free_action(*random_units(rng)), 64, rng)
    return dict(image=image, joints=joints, actor_id=ACTOR_IDS[actor])


def draw_batch(rng: np.random.Generator, n: int, heldout_frac: float,
               free_frac: float = 0.0) -> tuple[torch.Tensor, ...]:
    """``n`` fresh samples as (images [n,3,64,64], joints [n,14,2], actor ids [n], kinds [n]).

    Each sample is a held-out action with probability ``heldout_frac``, a free pose with ``free_frac`` and else a
    known action; kinds index :data:`KINDS`. Held-out actions are oversampled because there are few of them yet
    they are what the judges are for. With ``free_frac`` 0 the samples are those of the runs made before free poses.
    """
    if heldout_frac + free_frac > 1:
        raise ValueError(f"heldout_frac + free_frac must be <= 1, got {heldout_frac} + {free_frac}")
    samples, kinds = [], []
    for _ in range(n):
        r = rng.random()
        kind = 1 if r < heldout_frac else 2 if r < heldout_frac + free_frac else 0
        samples.append(free_sample(rng) if kind == 2 else sample(rng, KINDS[kind]))
        kinds.append(kind)
    return (judges.to_tensor([s["image"] for s in samples]),
            torch.from_numpy(np.stack([s["joints"] for s in samples])),
            torch.tensor([s["actor_id"] for s in samples]), torch.tensor(kinds))


def eval_set(seed: int, n: int) -> tuple[torch.Tensor, ...]:
    """The fixed evaluation set: ``n`` drawings from ``seed``, half known and half held-out actions (the set of the
    runs made before free poses), then ``n // 2`` free poses from the seed ``[seed, 2]``."""
    old = draw_batch(np.random.default_rng(seed), n, heldout_frac=0.5)
    free = draw_batch(np.random.default_rng([seed, 2]), n // 2, heldout_frac=0.0, free_frac=1.0)
    return tuple(torch.cat(pair) for pair in zip(old, free))


def _scores(err: torch.Tensor, correct: torch.Tensor) -> dict:
    # Rates in float64, so a count such as 475 / 500 is recorded as 0.95 exactly and not as float32's 0.94999999.
    return dict(actor_acc=float(correct.double().mean()), pose_acc=float((err < POSE_TOL).double().mean()),
                mean_joint_err=float(err.mean()), median_joint_err=float(err.median()), n=len(err))


@torch.no_grad()
def evaluate(model: judges.Judge, data: tuple[torch.Tensor, ...]) -> dict:
    """Actor accuracy, pose accuracy (mean joint error < :data:`POSE_TOL`), mean and median joint error and the
    count ``n`` on ``data`` (from :func:`eval_set`): over all of it, and per kind under the keys of :data:`KINDS`
    (kinds absent from ``data`` are left out)."""
    x, joints, actors, kinds = data
    was_training = model.training
    model.eval()
    pred_j, logits = zip(*(model(x[i:i + 256]) for i in range(0, len(x), 256)))
    model.train(was_training)
    err = (torch.cat(pred_j) - joints).norm(dim=-1).mean(dim=-1)  # per image: mean Euclidean joint error
    correct = torch.cat(logits).argmax(1) == actors
    out = _scores(err, correct)
    for i, kind in enumerate(KINDS):
        if (kinds == i).any():
            out[kind] = _scores(err[kinds == i], correct[kinds == i])
    return out


def summary(metrics: dict) -> str:
    """One line of :func:`evaluate`'s metrics: pose accuracy, actor accuracy and mean joint error per kind."""
    return " | ".join(f"{kind} pose {m['pose_acc']:.3f} actor {m['actor_acc']:.3f} err {m['mean_joint_err']:.4f}"
                      for kind, m in [("all", metrics)] + [(k, metrics[k]) for k in KINDS if k in metrics])


def main(argv: list[str] | None = None) -> dict | None:
    """Train, evaluate and save the judges; returns the final metrics (None when ``--stop-after`` stopped it)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="output stem: writes OUT.safetensors and OUT.json")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--width", type=int, default=16,
                   help="channels of the stem (the first conv); the blocks after it double them, up to 4x")
    p.add_argument("--heldout-frac", type=float, default=0.4, help="fraction of training samples from held-out")
    p.add_argument("--free-frac", type=float, default=0.0,
                   help="fraction of training samples that are free poses of the grammar (the rest: known)")
    p.add_argument("--seed", type=int, default=0, help="training drawing seed")
    p.add_argument("--eval-seed", type=int, default=1_000_003, help="evaluation drawing seed (not used in training)")
    p.add_argument("--eval-n", type=int, default=1000)
    p.add_argument("--ckpt-every", type=int, default=300)
    p.add_argument("--resume", action="store_true", help="continue from OUT.ckpt.safetensors if it exists")
    p.add_argument("--stop-after", type=float, default=None,
                   help="exit after the first checkpoint past this many minutes (rerun with --resume)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--init", type=Path, default=None, help="start from these judge weights (fine-tuning)")
    p.add_argument("--vae", type=str, default=None,
                   help="diffusers VAE folder: --vae-frac of each batch goes through it and back")
    p.add_argument("--vae-frac", type=float, default=0.5)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    weights, ckpt_path = args.out.with_suffix(".safetensors"), args.out.with_suffix(".ckpt.safetensors")
    model = judges.load(args.init).train() if args.init else judges.Judge(args.width)
    vae = None
    if args.vae:
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_pretrained(args.vae, torch_dtype=torch.float32).eval()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    # A short linear warm-up (BatchNorm statistics settle) then cosine decay to 0, which lets a short CPU run
    # converge to a sharp optimum; the 3 px pose tolerance is only met late, at low learning rate.
    warm = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, 0.5 * (1 + np.cos(
        np.pi * min(s, args.steps) / args.steps))))
    start, elapsed = 0, 0.0
    if args.resume and ckpt_path.exists():
        tensors, meta = load_tensors(ckpt_path)
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        load_optimizer(opt, {k[4:]: v for k, v in tensors.items() if k.startswith("opt.")})
        sched.load_state_dict(meta["sched"])
        for group, lr in zip(opt.param_groups, sched.get_last_lr()):  # the flattened moments carry no rates
            group["lr"] = lr
        start, elapsed = meta["step"], meta["elapsed"]
        print(f"resumed at step {start}", flush=True)
    ckpt_path.parent.mkdir(parents=True, exist_ok=True)
    data = eval_set(args.eval_seed, args.eval_n)
    data_vae = None if vae is None else (vae_round_trip(vae, data[0]), *data[1:])
    t0 = time.time() - elapsed
    deadline = None if args.stop_after is None else time.time() + 60 * args.stop_after
    model.train()
    for step in range(start, args.steps):
        x, joints, actors, _ = draw_batch(np.random.default_rng([args.seed, step]), args.batch,
                                          args.heldout_frac, args.free_frac)
        if vae is not None:
            k = round(args.vae_frac * len(x))
            x = torch.cat([vae_round_trip(vae, x[:k]), x[k:]])
        pred_j, logits = model(x)
        # L1 on joints: its gradient does not vanish near zero error, which is where the 3 px tolerance lives.
        # The x10 puts a ~0.01 joint error on the same footing as the actor cross-entropy.
        loss_j = F.l1_loss(pred_j, joints) * 10
        loss_a = F.cross_entropy(logits, actors)
        opt.zero_grad(set_to_none=True)
        (loss_j + loss_a).backward()
        opt.step()
        sched.step()
        done = step + 1
        if done % 100 == 0:
            print(f"step {done} joint_l1 {loss_j.item() / 10:.4f} actor_ce {loss_a.item():.3f} "
                  f"{time.time() - t0:.0f}s", flush=True)
        if done % args.ckpt_every == 0 or done == args.steps:
            print(f"eval @ {done}: {summary(evaluate(model, data))}", flush=True)
            if data_vae is not None:
                print(f"eval (through the VAE) @ {done}: {summary(evaluate(model, data_vae))}", flush=True)
            tensors = {**{f"model.{k}": v for k, v in model.state_dict().items()},
                       **{f"opt.{k}": v for k, v in optimizer_tensors(opt).items()}}
            save_tensors(tensors, ckpt_path, {"step": done, "elapsed": time.time() - t0, "sched": sched.state_dict()})
            if deadline is not None and time.time() > deadline and done < args.steps:
                print(f"stopped at step {done}; rerun with --resume to continue", flush=True)
                return None
    metrics = evaluate(model, data)
    meta = dict(command="python -m stickworld.pretraining.train_judges " + shlex.join(sys.argv[1:] if argv is None
                                                                                   else argv),
                steps=args.steps, batch=args.batch, train_samples=args.steps * args.batch,
                heldout_frac=args.heldout_frac, free_frac=args.free_frac, seed=args.seed, eval_seed=args.eval_seed,
                eval_n=args.eval_n,
                width=args.width, params=sum(p.numel() for p in model.parameters()), pose_tol=POSE_TOL,
                train_seconds=round(time.time() - t0, 1), threads=args.threads, metrics=metrics)
    if data_vae is not None:
        meta.update(vae=args.vae, vae_frac=args.vae_frac, metrics_through_vae=evaluate(model, data_vae))
    if args.init:  # how the starting weights were made, so the chain of commands stays on record
        meta["init"] = judges.load_meta(args.init)
    judges.save(model, weights, meta)
    ckpt_path.unlink(missing_ok=True)  # the final weights supersede it; keeps the data dir free of optimizer state
    print(json.dumps(meta, indent=2), flush=True)
    return metrics


if __name__ == "__main__":
    main()
