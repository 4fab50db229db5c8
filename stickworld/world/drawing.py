"""Draw StickWorld samples: an actor doing an action on a backdrop, with its caption and exact joint labels.

``python -m stickworld.world.drawing --out DIR --n 16`` writes a contact sheet of random samples to look at.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from stickworld.world import body_parts, head_parts  # noqa: F401  (registers the parts)
from stickworld.world.actions import ACTIONS, HELDOUT_ACTIONS, KNOWN_ACTIONS, Action, get_action
from stickworld.world.actors import ACTORS, Actor, get_actor
from stickworld.world.canvas import Canvas, Extent, shade
from stickworld.world.figure import Figure, draw_figure
from stickworld.world.scenes import SCENE_INDEX, SCENES, backdrop
from stickworld.world.skeleton import forward_kinematics, jitter

CAPTION_TEMPLATES = (
    "{actor} {action}",
    "a photo of {actor} {action}",
    "{actor} is {action}",
    "a picture of {actor} {action}",
    "an illustration of {actor} {action}",
)
KINDS = {"known": KNOWN_ACTIONS, "heldout": HELDOUT_ACTIONS}  # kinds of named pose (a held-out split is dev / test)
ACTOR_IDS = {name: i for i, name in enumerate(ACTORS)}
ACTION_IDS = {name: i for i, name in enumerate(ACTIONS)}  # known actions first, so their ids never move
CANVAS = 128  # drawing resolution; the output is a box-filtered reduction of it (anti-aliasing for free)
MARGIN = 0.03  # fraction of the image kept clear around the figure


def caption(actor: str | Actor, action: str | Action, template: int = 0) -> str:
    """The caption of ``actor`` doing ``action``, in paraphrase ``template`` of :data:`CAPTION_TEMPLATES`."""
    return CAPTION_TEMPLATES[template].format(actor=get_actor(actor).caption, action=get_action(action).phrase)


@functools.lru_cache(maxsize=None)
def _standing_height(actor: Actor) -> float:
    pose = KNOWN_ACTIONS["standing"].pose
    extent = Extent()
    draw_figure(extent, Figure(forward_kinematics(pose, actor.build), pose, actor))
    return float(extent.hi[1] - extent.lo[1])


def draw(actor: str | Actor, action: str | Action, size: int = 64, rng: np.random.Generator | None = None,
         scene: str | None = None) -> tuple[Image.Image, np.ndarray]:
    """Draw ``actor`` doing ``action``.

    Args:
        actor: Actor name or object.
        action: Action name or object.
        size: Output width and height in pixels (64 and 32 are the supported resolutions; any size >= 16 works).
        rng: Randomness for the take: joint angles, scale, position and scene. ``None`` draws the canonical pose,
            centred, in the studio.
        scene: Force a backdrop by name instead of drawing one from ``rng``.

    Returns:
        The RGB image, and a (14, 2) float32 array of joint positions in
        :data:`stickworld.world.skeleton.JOINTS` order as (x, y) fractions of the width and height, y down.
    """
    actor, action = get_actor(actor), get_action(action)
    pose, fill, shift = action.pose, 0.8, np.zeros(2)
    scene_index = SCENE_INDEX[scene or "studio"]
    if rng is not None:
        pose = jitter(pose, rng)
        fill, shift = rng.uniform(0.6, 0.88), rng.uniform(-1.0, 1.0, size=2)
        scene_index = SCENE_INDEX[scene] if scene else int(rng.integers(len(SCENES)))
    fig = Figure(forward_kinematics(pose, actor.build), pose, actor)
    extent = Extent()
    draw_figure(extent, fig)
    lo, hi = extent.lo, extent.hi
    ground = lo[1] - pose.lift
    lo[1] = ground
    ss = max(1, round(CANVAS / size))
    big = size * ss
    usable = big * (1 - 2 * MARGIN)
    # Scale to the larger of this pose's box and the actor's standing height, so a squat is smaller than a stand.
    scale = fill * usable / max(float(max(hi - lo)), _standing_height(actor))
    slack = usable - (hi - lo) * scale
    corner = big * MARGIN + slack * (0.5 + 0.5 * shift)  # pixel position of the box's top-left
    origin = (corner[0] - lo[0] * scale, corner[1] + hi[1] * scale)
    horizon = origin[1] - ground * scale - 0.4 * ss  # feet overlap the ground edge by a hair
    img = backdrop(SCENES[scene_index], big, horizon)
    cv = Canvas(img, origin, scale)
    # A contact shadow under the body: grounds standing poses and shows how high a jump is.
    shadow = (fig.pelvis[0], ground)
    cv.ellipse(shadow, 0.16 + 0.1 * fig.side, 0.018, shade(SCENES[scene_index].ground, 0.8))
    draw_figure(cv, fig)
    joints = (np.array(origin) + fig.joints * [scale, -scale]) / big
    return (img.reduce(ss) if ss > 1 else img), joints.astype(np.float32)


def sample(rng: np.random.Generator, kind: str = "known", size: int = 64) -> dict:
    """One random training example: a random actor doing a random action of ``kind``, with labels.

    Args:
        rng: Source of every random choice; equal seeds give equal samples.
        kind: "known" (pretraining actions) or "heldout" (customization targets).
        size: Image width and height.

    Returns:
        ``image`` (PIL RGB), ``caption``, ``actor`` and ``action`` names, ``actor_id`` and ``action_id`` (stable
        integer ids), ``scene`` name and ``joints`` ((14, 2) float32, see :func:`draw`).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {tuple(KINDS)}, got {kind!r}")
    actions = list(KINDS[kind])
    actor = list(ACTORS)[rng.integers(len(ACTORS))]
    action = actions[rng.integers(len(actions))]
    text = caption(actor, action, int(rng.integers(len(CAPTION_TEMPLATES))))
    scene = SCENES[int(rng.integers(len(SCENES)))].name
    image, joints = draw(actor, action, size, rng, scene=scene)
    return dict(image=image, caption=text, actor=actor, action=action, actor_id=ACTOR_IDS[actor],
                action_id=ACTION_IDS[action], scene=scene, joints=joints)


def contact_sheet(images: list[Image.Image], labels: list[str], cols: int = 4, tile: int = 160) -> Image.Image:
    """Tile ``images`` (upscaled to ``tile`` pixels, nearest so pixels stay honest) with a label under each."""
    rows = -(-len(images) // cols)
    sheet = Image.new("RGB", (cols * tile, rows * (tile + 14)), (255, 255, 255))
    pen = ImageDraw.Draw(sheet)
    for i, (img, label) in enumerate(zip(images, labels)):
        x, y = (i % cols) * tile, (i // cols) * (tile + 14)
        sheet.paste(img.resize((tile, tile), Image.Resampling.NEAREST), (x, y))
        pen.text((x + 2, y + tile + 1), label[: tile // 6], fill=(0, 0, 0))
    return sheet


def main(argv: list[str] | None = None) -> Path:
    """Write a contact sheet of ``--n`` samples (or every actor / every action) and print its path."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, required=True, help="directory for the PNG (created)")
    p.add_argument("--n", type=int, default=16, help="number of random samples")
    p.add_argument("--size", type=int, default=64, help="image size, 64 or 32")
    p.add_argument("--kind", choices=tuple(KINDS), default="known", help="known or held-out actions")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grid", choices=("random", "actors", "actions"), default="random",
                   help="random samples, every actor doing --action, or --actor doing every action of --kind")
    p.add_argument("--actor", default="robot")
    p.add_argument("--action", default="three_point_landing")
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    if args.grid == "actors":
        shots = [(a, args.action, draw(a, args.action, args.size, rng)[0]) for a in ACTORS]
    elif args.grid == "actions":
        shots = [(args.actor, a, draw(args.actor, a, args.size, rng)[0]) for a in KINDS[args.kind]]
    else:
        shots = [(s["actor"], s["action"], s["image"]) for s in (sample(rng, args.kind, args.size)
                                                                  for _ in range(args.n))]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"stickworld_{args.grid}_{args.kind}_{args.size}px.png"
    cols = 6 if len(shots) > 16 else 4
    contact_sheet([img for *_, img in shots], [f"{a}: {b}" for a, b, _ in shots], cols).save(path)
    print(path)
    return path


if __name__ == "__main__":
    main()
