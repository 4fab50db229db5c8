"""Look inside a StickWorld result: what the judges read, whether learned tokens are in the vocabulary's range,
and whether training latents should be sampled.

``python -m stickworld.gates.diagnose joints --model stickworld/data/base --actor robot --out j.png``
renders the actor doing known actions and draws, over each image (4x), the joints the judges read (red dots) and
the prompted action's true pose fitted to them (green rings: same centre and radius, as scoring compares them),
with the action the judges' reading is nearest to. It separates "the model rendered the wrong pose" from "the judges
misread a right one".

``python -m stickworld.gates.diagnose tokens --run <run dir>`` compares the norms of a run's exported placeholder
vectors with the norms of the model's vocabulary rows: vectors far longer than any row are off the text encoder's
input distribution (``method.max_norm=vocab`` caps them).

``python -m stickworld.gates.diagnose readings --run <run dir>`` reads an evaluated run's images back into poses:
the median distance to the true pose, and which of the 56 actions each image is nearest to (what a method rendered
instead of the requested action).

``python -m stickworld.gates.diagnose latents --action three_point_landing`` encodes an action's exemplars with
the model's VAE and compares its posterior std with the spread of the posterior means, and the reconstruction error
of the mean with that of a posterior sample: whether training should sample latents or take the mean
(``model.latents``).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL
from omegaconf import OmegaConf
from PIL import Image, ImageDraw
from safetensors.torch import load_file

from stickworld.networks import judges
from stickworld.protocol.scoring import canonical, nearest_action, pose_distance
from stickworld.world.actions import ACTIONS, KNOWN_ACTIONS
from stickworld.world.drawing import caption
from twinact.config.schema import typed
from twinact.method.data import load_exemplars
from twinact.model.models import load_base_model, load_model
from twinact.release.sampling import make_pipeline
from twinact.space.action_encoder import pil_to_tensor
from twinact.space.placeholder import vocabulary_norm

DEFAULT_ACTIONS = ("standing", "raising_both_arms", "arms_out", "squatting", "running", "waving_right_hand",
                   "hands_on_hips", "jumping_jack")


def overlay(image: Image.Image, joints: np.ndarray, true_pose: np.ndarray, label: str, scale: int = 4) -> Image.Image:
    """``image`` upscaled, judged ``joints`` [14, 2] (image fractions) in red, ``true_pose`` (normalised) fitted to
    their centre and RMS radius in green, ``label`` on top."""
    size = image.width * scale
    big = image.convert("RGB").resize((size, size), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(big)
    centre = joints.mean(0)
    radius = np.sqrt(((joints - centre) ** 2).sum(-1).mean())
    for points, red in ((true_pose * radius + centre, False), (joints, True)):
        for x, y in points * size:
            box = [x - 3, y - 3, x + 3, y + 3]
            draw.ellipse(box, fill=(255, 0, 0)) if red else draw.ellipse(box, outline=(0, 200, 0), width=2)
    draw.text((2, 2), label, fill=(0, 0, 0))
    return big


@torch.no_grad()
def joints_sheet(model: str, actor: str, actions: list[str], seed: int = 0, steps: int = 25,
                 guidance_scale: float = 5.0) -> tuple[Image.Image, list[dict]]:
    """Render ``actor`` doing each of ``actions`` and overlay the judges' reading; returns (sheet, per-image rows)."""
    pipe = make_pipeline(load_base_model(model))
    pipe.set_progress_bar_config(disable=True)
    images = pipe([caption(actor, a) for a in actions], num_inference_steps=steps, guidance_scale=guidance_scale,
                  height=64, width=64,
                  generator=[torch.Generator().manual_seed(seed + i) for i in range(len(actions))]).images
    joints, _ = judges.predict(images)
    rows, tiles = [], []
    for image, j, action in zip(images, joints, actions):
        near = nearest_action(j[None], actor, list(KNOWN_ACTIONS))[0]
        d = float(pose_distance(j[None], actor, action)[0])
        rows.append({"action": action, "nearest": near, "distance": round(d, 3)})
        tiles.append(overlay(image, j, canonical(actor, action), f"{action}\n-> {near} d={d:.2f}"))
    cols = min(4, len(tiles))
    sheet = Image.new("RGB", (cols * tiles[0].width, -(-len(tiles) // cols) * tiles[0].height), "white")
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % cols) * tile.width, (i // cols) * tile.height))
    return sheet, rows


def token_norms(run: Path) -> dict:
    """Norms of ``run``'s exported placeholder vectors next to its model's vocabulary row norms (non-zero rows)."""
    cfg = OmegaConf.load(run / "config.yaml")
    state = load_file(str(run / "export" / "twinact_state.safetensors"))
    comps = load_model(typed("model", cfg.model))
    report = {"run": str(run), "encoders": []}
    for i, encoder in enumerate(comps.text_encoders):
        table = encoder.get_input_embeddings().weight
        rows = table.detach().float().norm(dim=-1)
        report["encoders"].append({
            "placeholders": [round(float(n), 4) for n in state[f"embeddings.{i}"].norm(dim=-1)],
            # the mean over non-zero rows: StickWorld's table is zero outside the caption words
            "vocab_mean": round(float(rows[rows > 0].mean()), 4), "vocab_max": round(vocabulary_norm(table), 4)})
    return report


def readings(run: Path) -> dict:
    """What an evaluated run's images show: median pose distance to the true pose and the nearest actions."""
    action = OmegaConf.load(run / "config.yaml").action.name
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    ids = {a["name"]: a["id"] for a in metrics["eval_suite"]["actors"]}
    shots = metrics["per_image"]
    joints, _ = judges.predict([Image.open(run / "eval" / "images" / s["file"]).convert("RGB") for s in shots])
    actors = [ids[s["actor"]] for s in shots]
    distance = np.array([pose_distance(joints[i:i + 1], a, action)[0] for i, a in enumerate(actors)])
    nearest = Counter(nearest_action(joints[i:i + 1], a, list(ACTIONS))[0] for i, a in enumerate(actors))
    return {"run": str(run), "action": action, "images": len(shots),
            "median_distance": round(float(np.median(distance)), 3), "nearest": dict(nearest.most_common())}


@torch.no_grad()
def latent_report(model: str, action: str, seed: int = 0) -> dict:
    """The VAE posterior on ``action``'s shipped exemplars: spread of the means vs posterior std, and the pixel
    error (mean absolute, [-1, 1] range) of decoding the mean vs decoding one posterior sample."""
    vae = AutoencoderKL.from_pretrained(model, subfolder="vae")
    exemplars = load_exemplars(f"pkg://stickworld/exemplars/{action}", 64)
    x = torch.stack([pil_to_tensor(e.image) for e in exemplars])
    post = vae.encode(x).latent_dist
    noise = torch.randn(post.mean.shape, generator=torch.Generator().manual_seed(seed))
    error = {name: float((vae.decode(z).sample - x).abs().mean())
             for name, z in (("mean", post.mean), ("sample", post.mean + post.std * noise))}
    return {"model": model, "action": action, "images": len(x), "mean_spread": round(float(post.mean.std()), 4),
            "posterior_std": round(float(post.std.mean()), 4),
            "recon_error": {k: round(v, 4) for k, v in error.items()}}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    j = sub.add_parser("joints", help="overlay the judges' reading on generations of known actions")
    j.add_argument("--model", default="stickworld/data/base")
    j.add_argument("--actor", default="robot")
    j.add_argument("--actions", nargs="+", default=list(DEFAULT_ACTIONS), choices=list(KNOWN_ACTIONS))
    j.add_argument("--seed", type=int, default=0)
    j.add_argument("--out", type=Path, required=True, help="PNG to write")
    t = sub.add_parser("tokens", help="placeholder vector norms of a run vs the vocabulary's")
    t.add_argument("--run", type=Path, required=True)
    r = sub.add_parser("readings", help="which actions an evaluated run's images show")
    r.add_argument("--run", type=Path, required=True)
    v = sub.add_parser("latents", help="VAE posterior std vs latent spread on an action's exemplars")
    v.add_argument("--model", default="stickworld/data/base")
    v.add_argument("--action", default="three_point_landing")
    args = p.parse_args(argv)
    if args.what == "joints":
        sheet, rows = joints_sheet(args.model, args.actor, args.actions, args.seed)
        sheet.save(args.out)
        print(json.dumps(rows, indent=1))
    elif args.what == "tokens":
        print(json.dumps(token_norms(args.run), indent=1))
    elif args.what == "readings":
        print(json.dumps(readings(args.run), indent=1))
    else:
        print(json.dumps(latent_report(args.model, args.action), indent=1))


if __name__ == "__main__":
    main()
