"""Tests for the BlazePose detector and the pose feature (twinact.space.pose) on a real photo.

The photo is scikit-image's astronaut (Eileen Collins, waist-up, facing the camera). The model tests skip only when
mediapipe or the pose bundle (`make install`) is missing; the feature's own invariance is checked without them.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from twinact.errors import TwinActError
from twinact.space.pose import FEATURE_DIM, LANDMARK_NAMES, NUM_LANDMARKS, Keypoints, pose_feature
from twinact.space.pose_assets import pose_bundle_path

UPPER_BODY = list(range(13))  # face (0-10) and shoulders (11, 12): the landmarks the astronaut photo shows clearly
NOSE, LEFT_HIP, RIGHT_HIP = 0, 23, 24


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_feature_is_exactly_translation_and_scale_invariant():
    """Moving and resizing a photo moves and scales its pixel landmarks; the feature must not change at all."""
    rng = np.random.default_rng(0)
    xy = rng.uniform(0.2, 0.8, (NUM_LANDMARKS, 2)).astype(np.float32)
    vis = rng.uniform(0, 1, NUM_LANDMARKS).astype(np.float32)
    kp = Keypoints(xy=xy, visibility=vis, image_size=(640, 480))
    # The same person pasted at (100, 30) into a 1000x900 canvas, then the canvas resized by 0.5.
    pixels = xy * (640, 480)
    moved = ((pixels + (100, 30)) * 0.5) / (500, 450)
    feature = pose_feature(kp)
    assert feature.shape == (FEATURE_DIM,) and feature.dtype == np.float32
    np.testing.assert_allclose(pose_feature(Keypoints(moved.astype(np.float32), vis, (500, 450))), feature, atol=1e-4)


@pytest.fixture(scope="module")
def detector():
    pytest.importorskip("mediapipe", reason="mediapipe is not installed (make install)")
    try:
        pose_bundle_path()
    except TwinActError as exc:
        pytest.skip(str(exc))
    from twinact.space.pose import shared_detector

    return shared_detector()  # the process-wide one (see its docstring for why not a fresh detector per test)


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())  # 512x512 RGB


@pytest.fixture(scope="module")
def astronaut_kp(detector, astronaut) -> Keypoints:
    kp = detector.detect(astronaut)
    assert kp is not None, "no person found in the astronaut photo"
    return kp


def test_astronaut_has_33_plausible_landmarks(astronaut_kp):
    kp = astronaut_kp
    assert len(LANDMARK_NAMES) == 33
    assert kp.xy.shape == (33, 2) and kp.visibility.shape == (33,) and kp.image_size == (512, 512)
    assert np.isfinite(kp.xy).all() and ((kp.visibility >= 0) & (kp.visibility <= 1)).all()
    # Her face is in the upper half, centred; her hips are at or just below the bottom edge (a waist-up photo).
    nose = kp.xy[NOSE]
    assert 0.3 < nose[0] < 0.6 and 0.1 < nose[1] < 0.4
    assert nose[1] < kp.xy[LEFT_HIP, 1] - 0.4 and nose[1] < kp.xy[RIGHT_HIP, 1] - 0.4
    # Facing the camera: her left shoulder is on the image's right.
    assert kp.xy[11, 0] > kp.xy[12, 0]
    assert (kp.visibility[UPPER_BODY] > 0.9).all()
    # Hips and legs are out of frame, so the model is unsure of them.
    assert kp.visibility[25:].max() < 0.5


def test_same_photo_gives_the_same_feature(detector, astronaut, astronaut_kp):
    again = detector.detect(astronaut.copy())
    np.testing.assert_array_equal(pose_feature(again), pose_feature(astronaut_kp))


@pytest.mark.parametrize("size", [384, 1024])
def test_feature_survives_rescaling(detector, astronaut, astronaut_kp, size):
    kp = detector.detect(astronaut.resize((size, size), Image.BICUBIC))
    assert kp is not None
    assert cosine(pose_feature(kp), pose_feature(astronaut_kp)) > 0.98


@pytest.fixture(scope="module")
def other_pose_feature(detector) -> np.ndarray:
    """A clearly different pose for scale: scikit-image's cameraman, side-on, bent over a tripod camera."""
    from skimage import data

    kp = detector.detect(Image.fromarray(data.camera()))
    assert kp is not None
    return pose_feature(kp)


@pytest.mark.parametrize(
    ("canvas", "offset", "size"), [((800, 700), (100, 150), (256, 224)), ((1024, 768), (300, 50), (600, 450))]
)
def test_feature_survives_padding_translation_and_rescaling(
    detector, astronaut, astronaut_kp, other_pose_feature, canvas, offset, size
):
    """Pasted onto a larger grey canvas at an offset, then resized: the pose still reads as hers.

    The bound is looser than for plain rescaling because the model really does see something new: grey where the
    photo cut her off at the waist, so it re-guesses her off-frame hips, the feature's root. Measured over 81 canvases,
    offsets, fills and scales: cosine 0.90-0.98 (median 0.94), against 0.72 for the cameraman's pose.
    """
    scene = Image.new("RGB", canvas, (128, 128, 128))
    scene.paste(astronaut, offset)
    kp = detector.detect(scene.resize(size, Image.BICUBIC))  # canvas and size share one aspect ratio: a pure rescale
    assert kp is not None
    original = pose_feature(astronaut_kp)
    same = cosine(pose_feature(kp), original)
    assert same > 0.9
    assert same > cosine(other_pose_feature, original) + 0.15


@pytest.mark.parametrize("colour", [(0, 0, 0), (255, 255, 255)])
def test_no_person_gives_none(detector, colour):
    assert detector.detect(Image.new("RGB", (512, 512), colour)) is None


def test_random_noise_gives_none(detector):
    noise = np.random.default_rng(0).integers(0, 256, (384, 384, 3), dtype=np.uint8)
    assert detector.detect(Image.fromarray(noise)) is None


def test_mirrored_photo_keeps_anatomical_left_and_right(detector, astronaut):
    """BlazePose names sides by which way the person faces, not by image side: her mirror image still faces the
    camera, so her "left" shoulder is again the one on the image's right, and the feature barely changes."""
    kp = detector.detect(astronaut.transpose(Image.FLIP_LEFT_RIGHT))
    assert kp is not None
    assert kp.xy[11, 0] > kp.xy[12, 0]


def test_pose_action_encoder_feature_and_missing_person(detector, astronaut):
    """The `pose` action encoder feeds the MLP a 99-d feature; an exemplar without a person is reported by index."""
    from twinact.space.action_encoder import NoPersonError, PoseActionEncoder

    encoder = PoseActionEncoder()
    feats = encoder.encode([astronaut, astronaut])
    assert feats.shape == (2, encoder.dim) and np.array_equal(feats[0].numpy(), feats[1].numpy())
    with pytest.raises(NoPersonError) as err:
        encoder.encode([astronaut, Image.new("RGB", (256, 256), "white")])
    assert err.value.indices == [1]


def test_pose_runs_read_the_original_photo_and_name_every_exemplar_without_a_person(detector, astronaut, tiny_cfg,
                                                                                     tmp_path, capfd):
    """At 64 px BlazePose loses most people, so the encoder reads the photo itself; blank images are all named in
    one error, and MediaPipe's native log lines stay off the console."""
    from twinact.train.training import train

    folder = tmp_path / "photos"
    folder.mkdir()
    astronaut.save(folder / "a_astronaut.png")
    for name in ("b_blank.png", "c_blank.png"):
        Image.new("RGB", (300, 300), "white").save(folder / name)
    with pytest.raises(TwinActError, match=r"no person in 2 of 3 exemplars: .*b_blank.png, .*c_blank.png\. Remove"):
        train(tiny_cfg("action_encoder=pose", f"action.image_dir={folder}"))
    (folder / "b_blank.png").unlink()
    (folder / "c_blank.png").unlink()
    train(tiny_cfg("action_encoder=pose", f"action.image_dir={folder}", f"run_dir={tmp_path / 'ok'}", stage1=1,
                   stage2=1))
    err = capfd.readouterr().err
    assert "LiteRT" not in err and "XNNPACK" not in err and "Sparsity" not in err
