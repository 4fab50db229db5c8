"""StickWorld scoring, phrase list, exemplar sets and pose encoder, on clean drawings (exact answers known)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import one_thread
from PIL import Image

from stickworld import HELDOUT_ACTIONS, KNOWN_ACTIONS
from stickworld.protocol.scoring import canonical, clip_scores, nearest_action, pose_similarity, score_images
from stickworld.world.drawing import draw, sample
from stickworld.world.skeleton import normalize
from twinact.paths import package_path

_one_thread = pytest.fixture(scope="module", autouse=True)(one_thread)

def test_normalize_ignores_position_and_size():
    joints = np.random.default_rng(0).uniform(size=(3, 14, 2))
    moved = joints * 2.5 + np.array([0.3, -0.1])
    np.testing.assert_allclose(normalize(moved), normalize(joints), atol=1e-9)
    np.testing.assert_allclose(np.sqrt((normalize(joints) ** 2).sum(-1).mean(-1)), 1.0)


def test_true_pose_scores_high_and_nearest_action_is_right():
    rng = np.random.default_rng(11)
    shots = [sample(rng, "known") for _ in range(60)]
    labels = np.stack([s["joints"] for s in shots])
    # Exact labels: the jittered take is far nearer its own action than any other.
    assert all(nearest_action(labels[i:i + 1], s["actor"], list(KNOWN_ACTIONS))[0] == s["action"]
               for i, s in enumerate(shots))
    own = np.array([pose_similarity(labels[i:i + 1], s["actor"], s["action"])[0] for i, s in enumerate(shots)])
    other = np.array([pose_similarity(labels[i:i + 1], s["actor"], "three_point_landing")[0]
                      for i, s in enumerate(shots)])
    assert np.median(own) > 0.7 and np.median(other) < 0.05


def test_canonical_pose_depends_on_the_body():
    # Short-armed actors reach less far: comparing them to a person's pose would count that as a wrong pose.
    assert not np.allclose(canonical("penguin", "raising_both_arms"), canonical("robot", "raising_both_arms"))


def test_score_images_reads_pose_actor_and_leakage():
    rng = np.random.default_rng(3)
    images = [draw("robot", "three_point_landing", 64, rng)[0] for _ in range(6)]
    scores = score_images(images, ["robot"] * 6, "three_point_landing", exemplar_actors=["superhero"])
    assert scores["s_actor"].mean() > 0.9 and scores["actor_correct"].mean() == 1.0
    assert scores["leakage"].mean() < 0.05
    assert scores["s_action"].mean() > 0.4 and scores["action_correct"].mean() == 1.0
    wrong = score_images(images, ["robot"] * 6, "backflip")
    assert wrong["s_action"].mean() < 0.1 and wrong["action_correct"].mean() == 0.0
    # A known pose asked for as a held-out action: nearer its own (known) action, so not counted as learned.
    kneeling = [draw("robot", "kneeling", 64, rng)[0] for _ in range(3)]
    assert score_images(kneeling, ["robot"] * 3, "three_point_landing")["action_correct"].mean() == 0.0


def test_part_errors_say_which_part_is_wrong():
    from stickworld.protocol.scoring import part_errors, pose_distance

    rng = np.random.default_rng(4)
    arms_up = np.stack([draw("robot", "raising_both_arms", 64, rng)[1] for _ in range(3)])
    err = part_errors(arms_up, "robot", "standing")  # the same legs, other arms
    assert (err["arms"] > 2 * err["legs"]).all() and (err["arms"] > 0.2).all()
    d = pose_distance(arms_up, "robot", "standing")
    # d is the RMS over all 14 joints; the parts cover 14 joints (arms 6, legs 4, torso 4) exactly once
    assert np.allclose(d ** 2, (6 * err["arms"] ** 2 + 4 * err["legs"] ** 2 + 4 * err["torso"] ** 2) / 14)


def test_clip_scores_see_the_action_the_actor_and_the_exemplar_actor():
    rng = np.random.default_rng(5)
    shots = {(actor, action): [draw(actor, action, 64, rng)[0] for _ in range(4)]
             for actor in ("robot", "superhero") for action in ("three_point_landing", "backflip")}
    robot = clip_scores(shots["robot", "three_point_landing"], ["robot"] * 4, "three_point_landing", ["superhero"])
    hero = clip_scores(shots["superhero", "three_point_landing"], ["robot"] * 4, "three_point_landing",
                       ["superhero"])
    flip = clip_scores(shots["robot", "backflip"], ["robot"] * 4, "three_point_landing", ["superhero"])
    # Every comparison per image, so one odd drawing cannot pass the test on average.
    assert (robot["s_action_clip"] > flip["s_action_clip"] + 0.1).all()
    assert (robot["s_actor_clip"] > hero["s_actor_clip"] + 0.05).all()
    assert (hero["leakage_clip"] > robot["leakage_clip"] + 0.05).all()
    assert "leakage_clip" not in clip_scores(shots["robot", "backflip"], ["robot"] * 4, "backflip")


def test_shipped_phrase_list_is_the_known_actions():
    from stickworld.protocol.phrases import phrase_list
    from stickworld.world.units import UNITS
    from twinact.space.action_space import load_phrases

    shipped = load_phrases("pkg://stickworld/action_phrases.tsv")
    assert shipped == phrase_list()
    phrases = {p for _, p in shipped}
    assert phrases == {a.phrase for a in KNOWN_ACTIONS.values()} | {u.phrase for u in UNITS}
    assert not phrases & {a.phrase for a in HELDOUT_ACTIONS.values()}


@pytest.mark.parametrize("action", ["three_point_landing", "backflip"])
def test_shipped_exemplars_are_reproducible(action):
    from stickworld.world.exemplars import draw_set, exemplar_actors

    folder = package_path(f"pkg://stickworld/exemplars/{action}")
    shipped = sorted(folder.glob("*.png"))
    fresh = draw_set(action)
    assert len(shipped) == len(fresh) >= 4
    for path, im in zip(shipped, fresh):
        np.testing.assert_array_equal(np.asarray(Image.open(path).convert("RGB")), np.asarray(im))
    assert json.loads((folder / "exemplars.json").read_text())["actors"] == list(exemplar_actors(action))


def test_every_heldout_action_has_an_exemplar_set():
    for action in HELDOUT_ACTIONS:
        assert (package_path(f"pkg://stickworld/exemplars/{action}") / "exemplars.json").is_file(), action


def test_pose_encoder_separates_actions_not_actors():
    from stickworld.networks.encoder import StickWorldPoseEncoder

    enc = StickWorldPoseEncoder()
    feats = enc.encode([draw("superhero", "three_point_landing")[0], draw("polar_bear", "three_point_landing")[0],
                        draw("superhero", "backflip")[0]])
    assert feats.shape == (3, enc.dim)
    same_action = (feats[0] - feats[1]).norm()
    same_actor = (feats[0] - feats[2]).norm()
    assert same_action < 0.5 * same_actor


def test_scorer_reads_with_the_judges_it_is_given(tmp_path):
    from types import SimpleNamespace

    from stickworld.networks import judges
    from stickworld.protocol.scoring import StickWorldScorer
    from twinact.eval.scorers import ScoredRun

    rng = np.random.default_rng(5)
    shots = [sample(rng, "heldout") for _ in range(4)]
    action = shots[0]["action"]
    images, jobs = [s["image"] for s in shots], [{"actor": "a robot"}] * len(shots)
    suite = SimpleNamespace(actors=[SimpleNamespace(name="a robot", id="robot")])
    run_cfg = ScoredRun(action, f"pkg://stickworld/exemplars/{action}", "pkg://stickworld/clip")
    shipped = StickWorldScorer(clip=None)(images, jobs, suite, run_cfg, [])[0]
    given = StickWorldScorer(clip=None, judges=str(judges.DEFAULT_WEIGHTS))(images, jobs, suite, run_cfg, [])[0]
    assert given == shipped
    other = judges.load()
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(0.5)
    judges.save(other, tmp_path / "judges.safetensors")
    halved = StickWorldScorer(clip=None, judges=str(tmp_path))(images, jobs, suite, run_cfg, [])[0]
    assert halved["pose_distance"] != shipped["pose_distance"]
