"""How StickWorld captions say things: the actor alone, a composed pose by its units, the scene.

Pretraining (:mod:`stickworld.pretraining.mixture`), the base model's vocabulary, the StickWorld CLIP and the gates
all caption with these, so a phrase the base model is asked for is one it was shown.
"""

from __future__ import annotations

from stickworld.world.actors import get_actor
from stickworld.world.drawing import CAPTION_TEMPLATES
from stickworld.world.units import describe

SCENE_PHRASES = {"meadow": "in a meadow", "beach": "on a beach", "snow": "in the snow", "night": "at night",
                 "sunset": "at sunset", "studio": "in a studio", "room": "in a room", "desert": "in the desert"}
ACTOR_TEMPLATES = ("{actor}", "a photo of {actor}", "a picture of {actor}")


def unit_prompt(actor: str, view: str, units, template: int = 0) -> str:
    """The caption of ``actor`` in the composed pose: a caption template with the units' phrases as the action."""
    return CAPTION_TEMPLATES[template].format(actor=get_actor(actor).caption, action=describe(view, units))
