"""The actors of StickWorld: people, robots and animals that share one skeleton but look nothing alike.

An actor is what a caption's subject names ("a polar bear"): a species' proportions, a colour palette, a head and
torso shape, and a few species parts or accessories (ears, tail, beak, hat, scarf, backpack...), each drawn by
:mod:`stickworld.parts`. Pose never depends on the actor, so an action learnt on one transfers to all.
"""

from __future__ import annotations

import dataclasses

from stickworld.world.canvas import RGB
from stickworld.world.skeleton import Build


@dataclasses.dataclass(frozen=True)
class Palette:
    """Flat colours of the body's pieces; ``eye`` None draws no eyes (a visor or a helmet hides them)."""

    head: RGB
    torso: RGB
    upper_arm: RGB
    forearm: RGB
    hand: RGB
    thigh: RGB
    shin: RGB
    foot: RGB
    eye: RGB | None = (25, 25, 30)


def outfit(skin: RGB, top: RGB, bottom: RGB | None = None, feet: RGB | None = None, *, short_sleeves=False,
           shorts=False, eye: RGB | None = (25, 25, 30)) -> Palette:
    """A palette from what someone wears: ``top`` on torso and arms, ``bottom`` on legs, bare skin elsewhere."""
    bottom = bottom or top
    return Palette(head=skin, torso=top, upper_arm=top, forearm=skin if short_sleeves else top, hand=skin,
                   thigh=bottom, shin=skin if shorts else bottom, foot=feet or bottom, eye=eye)


def fur(coat: RGB, paws: RGB | None = None, eye: RGB | None = (25, 25, 30)) -> Palette:
    """An animal's palette: one coat colour with optionally different paws."""
    return Palette(coat, coat, coat, coat, paws or coat, coat, coat, paws or coat, eye)


@dataclasses.dataclass(frozen=True)
class Actor:
    """One named actor.

    Attributes:
        name: Identifier (``polar_bear``).
        caption: How a caption names it, article included ("a polar bear").
        species: Body family (person, child, robot, cat, bear, bird, ...), for grouping and judges.
        palette: Colours of the body.
        build: Proportions.
        parts: ``(part, colour)`` pairs drawn by :data:`stickworld.parts.PARTS`.
        head_shape: "round", "box", "wide" or "helmet".
        torso_shape: "box" (shoulders wider than hips) or "oval" (barrel-bodied animals).
        eye_size: Eye radius in head radii (cat's eyes and eye sockets are big).
    """

    name: str
    caption: str
    species: str
    palette: Palette
    build: Build = Build()
    parts: tuple[tuple[str, RGB], ...] = ()
    head_shape: str = "round"
    torso_shape: str = "box"
    eye_size: float = 0.15


CHILD = Build(torso=0.24, head=0.11, upper_arm=0.14, forearm=0.14, thigh=0.17, shin=0.17, shoulder_width=0.075,
              hip_width=0.05, chest=0.06, limb=0.048)
SLENDER = Build(head=0.095, limb=0.04, chest=0.055, shoulder_width=0.07, hip_width=0.045)
CHUNKY = Build(torso=0.29, head=0.1, upper_arm=0.15, forearm=0.14, thigh=0.16, shin=0.15, shoulder_width=0.11,
               hip_width=0.08, chest=0.11, limb=0.085)
SUITED = Build(head=0.1, limb=0.07, chest=0.085, shoulder_width=0.1, hip_width=0.065)
BIRD = Build(torso=0.27, head=0.09, upper_arm=0.16, forearm=0.17, thigh=0.15, shin=0.16, shoulder_width=0.08,
             hip_width=0.05, chest=0.09, limb=0.06, leg=0.4)
BONY = Build(head=0.095, limb=0.028, chest=0.055)

SKIN_LIGHT, SKIN_TAN, SKIN_DARK = (243, 203, 172), (214, 160, 118), (130, 82, 55)
WHITE, BLACK, PINK = (246, 246, 242), (30, 30, 36), (240, 150, 170)

ACTORS: dict[str, Actor] = {a.name: a for a in (
    Actor("red_haired_woman", "a red-haired woman", "person",
          outfit(SKIN_LIGHT, (40, 140, 90), SKIN_LIGHT, (150, 30, 40), short_sleeves=True),
          parts=(("long_hair", (200, 70, 20)), ("skirt", (40, 140, 90)))),
    Actor("boy_in_cap", "a boy in a baseball cap", "child",
          outfit(SKIN_DARK, (250, 200, 30), (40, 70, 170), WHITE, short_sleeves=True, shorts=True), CHILD,
          parts=(("cap", (215, 35, 35)),)),
    Actor("old_man", "an old man with a white beard", "person",
          outfit(SKIN_TAN, (125, 105, 90), (60, 62, 75), BLACK),
          parts=(("bald_fringe", (225, 225, 225)), ("beard", (240, 240, 240)))),
    Actor("hiker", "a hiker with a backpack", "person",
          outfit(SKIN_LIGHT, (235, 120, 25), (150, 135, 90), (90, 55, 30)),
          parts=(("backpack", (35, 95, 60)), ("straps", (25, 70, 45)), ("bucket_hat", (170, 160, 110)))),
    Actor("robot", "a robot", "robot",
          Palette((180, 186, 196), (160, 166, 178), (105, 110, 122), (105, 110, 122), (70, 75, 85),
                  (105, 110, 122), (105, 110, 122), (70, 75, 85), eye=(0, 230, 255)),
          Build(limb=0.06, chest=0.08, shoulder_width=0.1, hip_width=0.06),
          parts=(("antenna", (230, 40, 40)), ("panel", (60, 200, 230))), head_shape="box", eye_size=0.2),
    Actor("black_cat", "a black cat", "cat", fur(BLACK, eye=(240, 210, 40)), SLENDER,
          parts=(("cat_ears", PINK), ("cat_tail", BLACK), ("whiskers", (200, 200, 200))), eye_size=0.2),
    Actor("fox", "a fox", "fox", fur((225, 110, 30), (60, 35, 25)), SLENDER,
          parts=(("fox_ears", (60, 35, 25)), ("fox_tail", (225, 110, 30)), ("muzzle", WHITE))),
    Actor("polar_bear", "a polar bear", "bear", fur((240, 238, 226)), CHUNKY,
          parts=(("bear_ears", (240, 238, 226)), ("muzzle", (250, 250, 245)), ("nose", BLACK)),
          torso_shape="oval"),
    Actor("brown_bear", "a brown bear in a red scarf", "bear", fur((125, 78, 42)), CHUNKY,
          parts=(("bear_ears", (125, 78, 42)), ("muzzle", (200, 160, 110)), ("nose", BLACK),
                 ("scarf", (215, 30, 45))), torso_shape="oval"),
    Actor("parrot", "a green parrot", "bird",
          Palette((40, 175, 70), (40, 175, 70), (40, 175, 70), (40, 95, 210), (40, 95, 210), (120, 120, 120),
                  (120, 120, 120), (90, 90, 90)), BIRD,
          parts=(("tail_feathers", (40, 95, 210)), ("crest", (225, 30, 40)), ("beak", (250, 200, 40))),
          torso_shape="oval"),
    Actor("penguin", "a penguin", "bird", Palette(BLACK, BLACK, BLACK, BLACK, BLACK, BLACK, BLACK, (245, 140, 30),
                                                  eye=WHITE),
          Build(torso=0.3, head=0.095, upper_arm=0.13, forearm=0.12, thigh=0.09, shin=0.08, shoulder_width=0.085,
                hip_width=0.06, chest=0.1, limb=0.06),
          parts=(("belly", WHITE), ("cheeks", WHITE), ("beak", (245, 140, 30))), torso_shape="oval"),
    Actor("astronaut", "an astronaut", "person",
          outfit(WHITE, (236, 236, 232), (236, 236, 232), (120, 120, 130), eye=None), SUITED,
          parts=(("backpack", (200, 200, 205)), ("visor", (50, 60, 100)), ("flag_patch", (200, 40, 40))),
          head_shape="helmet"),
    Actor("knight", "a knight in armour", "person",
          Palette((160, 168, 182), (150, 158, 172), (150, 158, 172), (120, 128, 142), (90, 95, 105),
                  (150, 158, 172), (120, 128, 142), (90, 95, 105), eye=None), SUITED,
          parts=(("plume", (210, 30, 40)), ("visor_slit", (20, 20, 25)), ("tabard", (30, 60, 160)))),
    Actor("wizard", "a wizard", "person",
          outfit(SKIN_LIGHT, (95, 45, 160), (95, 45, 160), (60, 40, 30)),
          parts=(("robe", (95, 45, 160)), ("beard", (240, 240, 240)), ("wizard_hat", (70, 30, 130)))),
    Actor("superhero", "a superhero with a red cape", "person",
          Palette(SKIN_TAN, (30, 80, 205), (30, 80, 205), (30, 80, 205), (215, 30, 40), (30, 80, 205),
                  (215, 30, 40), (215, 30, 40)),
          parts=(("cape", (215, 30, 40)), ("mask", (30, 80, 205)), ("belt", (250, 210, 40)))),
    Actor("frog", "a frog", "frog", fur((90, 175, 50), eye=None), SLENDER,
          parts=(("belly", (225, 235, 150)), ("frog_eyes", WHITE), ("smile", (40, 80, 20))), head_shape="wide"),
    Actor("rabbit", "a white rabbit", "rabbit", fur(WHITE, eye=(200, 40, 60)), SLENDER,
          parts=(("rabbit_ears", PINK), ("bunny_tail", WHITE), ("nose", PINK))),
    Actor("skeleton", "a skeleton", "skeleton", fur((235, 230, 212), eye=BLACK), BONY,
          parts=(("ribs", (60, 55, 50)), ("teeth", (60, 55, 50))), eye_size=0.28),
)}


def get_actor(actor: str | Actor) -> Actor:
    """The actor called ``actor`` (or ``actor`` itself)."""
    if isinstance(actor, Actor):
        return actor
    try:
        return ACTORS[actor]
    except KeyError:
        raise KeyError(f"unknown actor {actor!r}; known: {', '.join(ACTORS)}") from None
