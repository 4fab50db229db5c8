"""StickWorld: a procedural world of articulated actors doing named actions, with exact labels.

Every image is drawn from a 14-joint skeleton (:mod:`.skeleton`) posed by an action (:mod:`.actions`) and dressed
as an actor (:mod:`.actors`), so a small diffusion model can be pretrained on captions like "a robot squatting"
and a customization method judged on held-out actions against ground-truth joints.

Images come from :mod:`stickworld.render` (``render``, ``sample``, ``caption``); it is not imported here so
that ``python -m stickworld.render`` runs it exactly once. The rest, one command each:

- :mod:`.judges` / :mod:`.train_judges`: the pose + actor CNN that reads generations back;
- :mod:`.base_model` / :mod:`.pretrain`: the text-to-image model pretrained on known actions (``make stickworld``),
  checked by :mod:`.quality`;
- :mod:`.scoring`: S_Action, S_Actor, Leakage against the exact answer; :mod:`.encoder`: the judge as action encoder;
- :mod:`.exemplars`: the shipped exemplar sets of the held-out actions; :mod:`.compare_methods`: the method comparison.
"""

from stickworld.actions import ACTIONS, HELDOUT_ACTIONS, KNOWN_ACTIONS, Action, get_action
from stickworld.actors import ACTORS, Actor, get_actor
from stickworld.skeleton import JOINTS, Build, Pose, forward_kinematics

__all__ = [
    "ACTIONS", "ACTORS", "Action", "Actor", "Build", "HELDOUT_ACTIONS", "JOINTS", "KNOWN_ACTIONS", "Pose",
    "forward_kinematics", "get_action", "get_actor",
]
