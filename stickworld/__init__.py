"""StickWorld: a procedural world of articulated actors doing named actions, with exact labels.

Every image is drawn from a 14-joint skeleton posed by an action and dressed as an actor, so a small diffusion model
can be pretrained on this CPU and a customization method judged on held-out actions against ground-truth joints.
The package is arranged by role, each subpackage importing only those listed before it:

- :mod:`stickworld.world`: the world and its drawing (skeleton, actors, actions, pose-grammar units, scenes,
  captions, the drawing function, exemplar sets);
- :mod:`stickworld.networks`: the base model's architecture, the judges, the StickWorld CLIP, the pose encoder;
- :mod:`stickworld.protocol`: scoring, the phrase list, the method comparison, the benchmark and their tables;
- :mod:`stickworld.gates`: what each shipped network must meet (base model quality, judges, CLIP) and diagnostics;
- :mod:`stickworld.pretraining`: how the shipped networks are trained.
"""

from stickworld.world.actions import ACTIONS, HELDOUT_ACTIONS, KNOWN_ACTIONS, Action, get_action
from stickworld.world.actors import ACTORS, Actor, get_actor
from stickworld.world.skeleton import JOINTS, Build, Pose, forward_kinematics

__all__ = [
    "ACTIONS", "ACTORS", "Action", "Actor", "Build", "HELDOUT_ACTIONS", "JOINTS", "KNOWN_ACTIONS", "Pose",
    "forward_kinematics", "get_action", "get_actor",
]
