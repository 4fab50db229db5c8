"""The pose grammar, the held-out actions file and the pretraining mixture of StickWorld 2."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import numpy as np
import pytest

from stickworld import mixture, quality, units
from stickworld.actions import (
    DEV_ACTIONS,
    HELDOUT_ACTIONS,
    HELDOUT_FILE,
    KNOWN_ACTIONS,
    TEST_ACTIONS,
    load_heldout,
)
from stickworld.skeleton import Pose


def test_a_unit_sets_only_its_parts_angles():
    pose = units.compose("side", ["left_arm.raised", "torso.lean_forward"])
    rest = dataclasses.asdict(Pose("side"))
    changed = {k for k, v in dataclasses.asdict(pose).items() if v != rest[k]}
    assert changed == {"left_shoulder", "lean"}
    assert pose.left_shoulder == 165 and pose.lean == 30


def test_compose_refuses_two_units_on_one_part_and_a_unit_outside_its_view():
    with pytest.raises(ValueError, match="one unit per body part"):
        units.compose("front", ["left_arm.raised", "left_arm.out"])
    with pytest.raises(ValueError, match="not drawn in the front view"):
        units.compose("front", ["left_arm.forward"])
    with pytest.raises(KeyError, match="unknown unit"):
        units.get_unit("left_arm.waggling")


def test_description_lists_units_in_body_order_and_names_the_side_view():
    text = units.describe("side", ["right_leg.kneel", "torso.lean_far_forward"])
    assert text == "leaning far forward, right knee on the ground, seen from the side"
    assert units.describe("front", ["head.bowed"]) == "head bowed"


def test_random_free_poses_cover_every_unit_and_two_to_five_parts():
    rng = np.random.default_rng(0)
    seen, counts = set(), Counter()
    for _ in range(3000):
        view, chosen = units.random_units(rng)
        units.compose(view, chosen)  # always a valid pose
        seen |= {u.name for u in chosen}
        counts[len(chosen)] += 1
    assert seen == set(units.UNIT_INDEX)
    assert set(counts) == {2, 3, 4, 5}


def test_heldout_actions_are_exact_unit_combinations_split_into_dev_and_test():
    assert len(DEV_ACTIONS) >= 4 and len(TEST_ACTIONS) >= 5 and not set(DEV_ACTIONS) & set(TEST_ACTIONS)
    for name, action in HELDOUT_ACTIONS.items():
        assert name not in KNOWN_ACTIONS
        assert 2 <= len(action.units) <= 5, name  # inside the grammar's free poses
        assert action.pose == units.compose(action.pose.view, list(action.units)), name


def test_a_heldout_action_is_a_file_entry(tmp_path):
    entries = json.loads(HELDOUT_FILE.read_text())
    entries.append({"name": "my_move", "phrase": "doing my move", "split": "dev",
                    "pose": {"view": "front", "left_shoulder": 120}})
    path = tmp_path / "heldout.json"
    path.write_text(json.dumps(entries))
    loaded = load_heldout(path)
    assert loaded["my_move"].pose.left_shoulder == 120 and loaded["my_move"].split == "dev"
    path.write_text(json.dumps(entries + [{"name": "x", "phrase": "x", "split": "train", "pose": {}}]))
    with pytest.raises(ValueError, match="split"):
        load_heldout(path)
    path.write_text(json.dumps(entries + [{"name": "standing", "phrase": "x", "split": "dev", "pose": {}}]))
    with pytest.raises(ValueError, match="already taken"):
        load_heldout(path)


def test_mixture_never_names_a_heldout_action_and_mixes_its_caption_kinds():
    rng = np.random.default_rng(1)
    samples = [mixture.sample(rng) for _ in range(1500)]
    captions = [s["caption"] for s in samples]
    for action in HELDOUT_ACTIONS.values():
        assert not any(action.phrase in c for c in captions), action.name
    kinds = Counter(s["kind"] for s in samples)
    for kind, share in mixture.MIX.items():
        assert abs(kinds[kind] / len(samples) - share) < 0.05, kind
    with_scene = np.mean([any(p in c for p in mixture.SCENE_PHRASES.values()) for c in captions])
    assert abs(with_scene - mixture.SCENE_SHARE) < 0.05
    free = [s for s in samples if s["kind"] == "units"]
    assert all(units.VIEW_PHRASE["side"] in s["caption"] for s in free if s["pose"].view == "side")


def test_mixture_is_a_function_of_the_seed():
    a = mixture.sample(np.random.default_rng([3, 4]))
    b = mixture.sample(np.random.default_rng([3, 4]))
    assert a["caption"] == b["caption"] and np.array_equal(np.asarray(a["image"]), np.asarray(b["image"]))


def test_quality_prompt_sets_and_gates():
    by_units = quality.prompts("heldout_by_units")
    assert len(by_units) == 18 * len(HELDOUT_ACTIONS)
    assert all(HELDOUT_ACTIONS[j["action"]].phrase not in j["prompt"] for j in by_units)
    by_name = quality.prompts("heldout_by_name")
    assert all(HELDOUT_ACTIONS[j["action"]].phrase in j["prompt"] for j in by_name)
    assert len(quality.prompts("known_by_name", limit=10)) == 10
    summary = {"known_by_name": {"action_acc": 0.8, "actor_acc": 0.96}, "heldout_by_units": {"action_acc": 0.4},
               "heldout_by_name": {"action_acc": 0.0}}
    assert quality.check_gates(summary) == {"known_by_name.action_acc": True, "known_by_name.actor_acc": True,
                                            "heldout_by_units.action_acc": False, "heldout_by_name.action_acc": True}
