"""Tests for the procedural exemplar renderer in twinact.figures."""

import numpy as np
from PIL import Image

from twinact.figures import POSES, Pose, forward_kinematics, render_exemplars, render_figure


def test_render_size_and_mode():
    img = render_figure(POSES["standing"], size=96)
    assert img.size == (96, 96)
    assert img.mode == "RGB"


def test_render_is_deterministic_for_same_seed():
    a = render_figure(POSES["three_point_landing"], size=64, seed=3)
    b = render_figure(POSES["three_point_landing"], size=64, seed=3)
    c = render_figure(POSES["three_point_landing"], size=64, seed=4)
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_different_poses_give_different_images():
    a = np.asarray(render_figure(POSES["standing"], size=64), dtype=np.int16)
    b = np.asarray(render_figure(POSES["three_point_landing"], size=64), dtype=np.int16)
    assert np.abs(a - b).mean() > 5


def test_figure_stays_inside_image():
    # Pushed to a corner, the figure must be clamped back so no edge pixel is body-coloured.
    bg, body = (255, 255, 255), (0, 0, 0)
    img = render_figure(POSES["three_point_landing"], size=64, body_color=body, background=bg,
                        ground=False, scale=0.9, center=(0.0, 1.0))
    arr = np.asarray(img)
    edges = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    assert (edges > 200).all()


def test_landing_pose_touches_ground():
    # One knee and one hand sit near the lowest foot: the defining cue of the action.
    j = forward_kinematics(POSES["three_point_landing"])
    ground = min(j["left_foot"][1], j["right_foot"][1])
    assert min(j["left_knee"][1], j["right_knee"][1]) - ground < 0.06
    assert min(j["left_hand"][1], j["right_hand"][1]) - ground < 0.06
    assert forward_kinematics(Pose())["head"][1] > 0.3  # standing head is above the pelvis


def test_render_exemplars_writes_n_files(tmp_path):
    paths = render_exemplars("three_point_landing", tmp_path / "out", n=3, size=48, seed=1)
    assert [p.name for p in paths] == [f"three_point_landing_{i:02d}.png" for i in range(3)]
    for p in paths:
        with Image.open(p) as im:
            assert im.size == (48, 48) and im.mode == "RGB"
    again = render_exemplars("three_point_landing", tmp_path / "again", n=3, size=48, seed=1)
    assert [a.read_bytes() for a in again] == [p.read_bytes() for p in paths]
