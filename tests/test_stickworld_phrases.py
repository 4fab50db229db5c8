"""The StickWorld phrase list (stickworld.protocol.phrases): its content, groups, CLI, and the renderable filter."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import one_thread

from stickworld.protocol import phrases as sw
from stickworld.world.actions import HELDOUT_ACTIONS, KNOWN_ACTIONS, Action
from stickworld.world.actors import ACTORS
from stickworld.world.units import UNITS, get_unit
from twinact.paths import package_path
from twinact.space.action_space import GROUPS, load_phrases

_one_thread = pytest.fixture(scope="module", autouse=True)(one_thread)


def test_phrase_list_is_every_known_action_and_unit_once():
    pairs = sw.phrase_list()
    texts = [p for _, p in pairs]
    assert len(texts) == len(set(texts))
    assert set(texts) == {a.phrase for a in KNOWN_ACTIONS.values()} | {u.phrase for u in UNITS}
    assert not set(texts) & {a.phrase for a in HELDOUT_ACTIONS.values()}
    assert {g for g, _ in pairs} == set(GROUPS)
    assert texts[: len(KNOWN_ACTIONS)] == [a.phrase for a in KNOWN_ACTIONS.values()]  # known actions first


def test_groups_follow_the_body_part():
    group = dict((p, g) for g, p in sw.phrase_list())
    known = {a.phrase for a in KNOWN_ACTIONS.values()}
    expected = {"head": "head", "left_arm": "hand", "right_arm": "hand", "left_leg": "foot", "right_leg": "foot",
                "torso": "whole_body", "height": "whole_body"}
    for u in UNITS:
        if u.phrase not in known:  # a phrase that is also a known action keeps the action's group
            assert group[u.phrase] == expected[u.part], u.name
    assert group["head bowed"] == "head" and group["left arm raised"] == "hand"
    assert group["right knee on the ground"] == "foot" and group["in the air"] == "whole_body"
    # known actions by the word rule moved here from stickworld.world.actions
    assert group["scratching the head"] == "head" and group["kicking with the left leg"] == "foot"
    assert group["flexing both biceps"] == "hand" and group["doing the splits"] == "whole_body"
    assert group["doing a handstand"] == "hand"  # the word rule as it was: "hand" in "handstand"
    assert group["leaning to the left"] == "whole_body"  # both a known action and a torso unit


def test_cli_writes_the_shipped_file(tmp_path):
    out = tmp_path / "phrases.tsv"
    pairs = sw.main(["--out", str(out)])
    assert load_phrases(str(out)) == pairs == sw.phrase_list()
    assert out.read_text(encoding="utf-8") == package_path("pkg://stickworld/action_phrases.tsv").read_text("utf-8")


def test_candidates_have_the_poses_the_phrase_names():
    both, side = get_unit("left_arm.raised"), get_unit("left_leg.forward")
    c = sw.candidate(both.phrase)
    assert [t.view for t in c.targets] == ["front", "side"]
    assert [t.left_shoulder for t in c.targets] == [165, 165]
    assert sw.candidate(side.phrase).prompts == (("side", "left leg kicked forward, seen from the side"),)
    assert sw.candidate("doing a lunge").targets == (KNOWN_ACTIONS["lunging"].pose,)
    with pytest.raises(ValueError, match="neither"):
        sw.candidate("doing a backflip")


class DrawPoses:
    """Stand-in for the diffusion pipeline: draws a clean StickWorld drawing of a chosen pose per prompt, its true
    joints kept in the image's `info` for an exact stand-in judge."""

    def __init__(self, pose_of):
        self.pose_of = pose_of

    def to(self, device):
        return self

    def set_progress_bar_config(self, **kw):
        pass

    def __call__(self, prompts, **kw):
        from stickworld.world.drawing import draw

        images = []
        for p in prompts:
            image, joints = draw("robot", Action("x", p, self.pose_of(p)))
            image.info["joints"] = joints
            images.append(image)
        return type("Out", (), {"images": images})()


def exact_judge(images, model=None):
    """Reads every image's true joints: the criterion is tested, not the CNN."""
    joints = np.stack([im.info["joints"] for im in images])
    return joints, np.full((len(images), len(ACTORS)), 1.0 / len(ACTORS))


def test_filter_keeps_drawn_phrases_and_drops_the_rest(monkeypatch):
    """The criterion on exactly read poses: a phrase drawn as its own pose is kept, one drawn at rest is dropped."""
    from stickworld.world.skeleton import Pose

    drawn = {"left arm raised": True, "right leg kicked forward": True, "left arm out to the side": False,
             "doing a lunge": True, "right hand on the hip": False, "head bowed": False}

    def pose_of(prompt):
        text = next(t for t in drawn if t in prompt)
        c = sw.candidate(text)
        view = "side" if "seen from the side" in prompt or c.targets[0].view == "side" else "front"
        if not drawn[text]:
            return Pose(view)
        return next(t for t in c.targets if t.view == view)

    monkeypatch.setattr(sw, "load_base_model", lambda *a, **k: None)
    monkeypatch.setattr(sw, "make_pipeline", lambda comps: DrawPoses(pose_of))
    monkeypatch.setattr(sw.judges, "predict", exact_judge)
    pairs = [(g, p) for g, p in sw.phrase_list() if p in drawn]
    kept, report = sw.filter_renderable(pairs, "unused", actors=("robot",), seeds=1, steps=1)
    # "head bowed" is 0.045 from rest, below what the judges resolve: drawn at rest, it is not refused
    undecidable = {"head bowed"}
    assert [p for _, p in kept] == [p for _, p in pairs if drawn[p] or p in undecidable]
    assert set(report) == set(drawn)
    for text, ok in drawn.items():
        assert report[text]["rest_test"] == (text not in undecidable)
        assert report[text]["hit_rate"] == (1.0 if ok or text in undecidable else 0.0), (text, report[text])
    assert report["left arm raised"]["images"] == 2  # drawn in both views


def test_filter_runs_with_the_shipped_model():
    """The real hook end to end on a few phrases and steps (the verdicts mean little at 2 steps)."""
    model = package_path("pkg://stickworld/base")
    if not (model / "model_index.json").is_file():
        pytest.skip("the StickWorld base model is not built")
    phrases = ["doing a lunge", "left arm raised", "head bowed"]
    kept, report = sw.filter_renderable(phrases, str(model), actors=("robot",), seeds=1, steps=2, device="cpu")
    assert set(kept) <= set(phrases) and set(report) == set(phrases)
    assert [report[p]["images"] for p in phrases] == [1, 2, 2]
    assert all(0.0 <= r["hit_rate"] <= 1.0 and r["own"] >= 0 for r in report.values())
