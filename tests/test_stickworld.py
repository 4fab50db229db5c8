"""Tests for StickWorld, the procedural actors-and-actions world (stickworld)."""

import itertools
import time

import numpy as np
import pytest
from PIL import Image

from stickworld import ACTORS, HELDOUT_ACTIONS, JOINTS, KNOWN_ACTIONS
from stickworld.world.drawing import CAPTION_TEMPLATES, draw, main, sample


def test_enough_actors_and_actions_with_no_overlap():
    assert len(ACTORS) >= 12
    assert len({a.caption for a in ACTORS.values()}) == len(ACTORS)
    assert len(KNOWN_ACTIONS) >= 40 and len(HELDOUT_ACTIONS) >= 8
    assert "three_point_landing" in HELDOUT_ACTIONS and "three_point_landing" not in KNOWN_ACTIONS
    assert not set(KNOWN_ACTIONS) & set(HELDOUT_ACTIONS)
    known = [a.phrase for a in KNOWN_ACTIONS.values()]
    heldout = [a.phrase for a in HELDOUT_ACTIONS.values()]
    assert len(set(known + heldout)) == len(known) + len(heldout)
    # A held-out phrase must not hide inside a pretraining caption either.
    assert not [(k, h) for k, h in itertools.product(known, heldout) if k in h or h in k]


@pytest.mark.parametrize("size", [64, 32])
def test_sample_sizes_modes_and_labels(size):
    s = sample(np.random.default_rng(0), size=size)
    assert s["image"].size == (size, size) and s["image"].mode == "RGB"
    assert s["joints"].shape == (len(JOINTS), 2) == (14, 2) and s["joints"].dtype == np.float32
    assert s["actor"] in ACTORS and s["action"] in KNOWN_ACTIONS


def test_drawing_is_deterministic_for_a_seed():
    a, b, c = (sample(np.random.default_rng(seed)) for seed in (5, 5, 6))
    assert np.array_equal(np.asarray(a["image"]), np.asarray(b["image"]))
    assert np.array_equal(a["joints"], b["joints"]) and a["caption"] == b["caption"]
    assert not np.array_equal(np.asarray(a["image"]), np.asarray(c["image"]))


def test_jitter_changes_the_take_not_the_action():
    rng = np.random.default_rng(1)
    (_, j1), (_, j2) = draw("robot", "squatting", rng=rng), draw("robot", "squatting", rng=rng)
    assert not np.allclose(j1, j2)


def test_joints_inside_image_for_every_kind_and_size():
    rng = np.random.default_rng(2)
    for kind, size in itertools.product(("known", "heldout"), (64, 32)):
        for _ in range(60):
            j = sample(rng, kind, size)["joints"]
            assert (j >= 0).all() and (j <= 1).all(), (kind, size)


def test_joint_labels_sit_on_the_drawn_body():
    # The head joint is the head's centre, so the pixel there has the head's colour, not the backdrop's.
    for name in ("red_haired_woman", "boy_in_cap", "brown_bear"):
        img, joints = draw(name, "standing", size=64, scene="night")
        x, y = (joints[JOINTS.index("head")] * 64).astype(int)
        pixel = np.asarray(img, dtype=int)[y, x]
        assert np.abs(pixel - ACTORS[name].palette.head).max() < 40, name


def test_different_actions_give_different_joints():
    for actor in ("red_haired_woman", "polar_bear", "penguin"):
        joints = {a: draw(actor, a)[1] for a in {**KNOWN_ACTIONS, **HELDOUT_ACTIONS}}
        for a, b in itertools.combinations(joints, 2):
            # Some joint moves by more than 2.5 pixels at 64x64 between any two canonical poses.
            assert np.linalg.norm(joints[a] - joints[b], axis=1).max() > 0.04, (actor, a, b)


def test_actors_look_different():
    images = {a: np.asarray(draw(a, "standing", scene="night")[0], dtype=int) for a in ACTORS}
    for a, b in itertools.combinations(images, 2):
        changed = (np.abs(images[a] - images[b]).max(-1) > 40).mean()
        assert changed > 0.03, (a, b)


def test_three_point_landing_touches_the_ground_three_times():
    _, j = draw("red_haired_woman", "three_point_landing")
    ground = j[:, 1].max()  # image y grows downward
    near = lambda name: ground - j[JOINTS.index(name), 1] < 0.05  # noqa: E731
    assert near("right_hand") and near("right_knee") and near("left_foot")
    assert not near("head") and not near("left_hand")


def test_captions_name_actor_and_action():
    rng = np.random.default_rng(3)
    used = set()
    for kind, actions in (("known", KNOWN_ACTIONS), ("heldout", HELDOUT_ACTIONS)):
        for _ in range(80):
            s = sample(rng, kind)
            actor, phrase = ACTORS[s["actor"]].caption, actions[s["action"]].phrase
            assert actor in s["caption"] and phrase in s["caption"]
            matches = [t for t in CAPTION_TEMPLATES if t.format(actor=actor, action=phrase) == s["caption"]]
            assert matches, s["caption"]
            used.update(matches)
    assert len(used) >= 3  # paraphrases are actually used


def test_bad_names_and_kinds_are_rejected():
    with pytest.raises(KeyError, match="unknown actor"):
        draw("unicorn", "standing")
    with pytest.raises(KeyError, match="unknown action"):
        draw("robot", "moonwalking")
    with pytest.raises(ValueError, match="kind"):
        sample(np.random.default_rng(0), kind="test")


def test_throughput():
    rng = np.random.default_rng(4)
    sample(rng)  # warm the backdrop cache
    n, start = 300, time.perf_counter()
    for _ in range(n):
        sample(rng)
    rate = n / (time.perf_counter() - start)
    assert rate >= 300, f"{rate:.0f} images/s"  # ~2000/s on one idle core; lenient for shared CI


def test_cli_writes_a_contact_sheet(tmp_path, capsys):
    path = main(["--out", str(tmp_path / "sheet"), "--n", "8", "--seed", "1"])
    assert path.exists() and str(path) in capsys.readouterr().out
    with Image.open(path) as im:
        assert im.mode == "RGB" and im.width == 4 * 160 and im.height == 2 * (160 + 14)
