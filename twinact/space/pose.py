"""Human pose from a photo: MediaPipe BlazePose's 33 body landmarks, and a feature for comparing poses.

The model is BlazePose "full" (a person detector, then a 33-landmark network on the detected person), run offline
by MediaPipe's Tasks API from the bundle that `make install` builds (see `twinact.space.pose_assets`). One detection
takes about 30 ms on a CPU core.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from twinact.errors import TwinActError
from twinact.space.pose_assets import pose_bundle_path

# BlazePose's landmark order ("left" is the person's left, not the image's).
LANDMARK_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
NUM_LANDMARKS = len(LANDMARK_NAMES)  # 33
FEATURE_DIM = NUM_LANDMARKS * 3  # (dx, dy, visibility) per landmark
LEFT_SHOULDER, RIGHT_SHOULDER = LANDMARK_NAMES.index("left_shoulder"), LANDMARK_NAMES.index("right_shoulder")
LEFT_HIP, RIGHT_HIP = LANDMARK_NAMES.index("left_hip"), LANDMARK_NAMES.index("right_hip")


@contextlib.contextmanager
def quiet_native_stderr():
    """Send file descriptor 2 to /dev/null for a while: MediaPipe's native runtime (LiteRT, glog) writes ~50 lines
    of INFO / WARNING per detector straight to it, past Python's logging and warnings filters. Errors still arrive
    as Python exceptions."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


@dataclass(frozen=True, eq=False)
class Keypoints:
    """One person's 33 landmarks.

    Attributes:
        xy: (33, 2) float32, x / image width and y / image height. Mostly in [0, 1]; landmarks the model places
            outside the photo (e.g. the hips of a waist-up portrait) fall outside it and are kept, not clipped.
        visibility: (33,) float32 in [0, 1], the model's confidence that the landmark is in frame and not occluded.
        image_size: (width, height) of the photo, to undo the per-axis normalization (see `pose_feature`).
    """

    xy: np.ndarray
    visibility: np.ndarray
    image_size: tuple[int, int]


class PoseDetector:
    """BlazePose on single photos. Load once and reuse: building the landmarker costs far more than one detection.

    Args:
        bundle: the `.task` bundle; by default the one `make install` put in twinact's cache.
        min_confidence: the person detector's score threshold (also used for the landmark model's presence score).

    Raises:
        TwinActError: if mediapipe or the bundle is missing (the message says to run `make install`).
    """

    def __init__(self, bundle: Path | None = None, min_confidence: float = 0.5):
        try:
            import mediapipe as mp
            from mediapipe.tasks.python import BaseOptions, vision
        except ImportError as exc:
            raise TwinActError(f"mediapipe is not importable ({exc}). Install it with `make install`.") from exc
        path = Path(bundle) if bundle is not None else pose_bundle_path()
        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.IMAGE,  # independent photos: no tracking between calls
            num_poses=1,
            min_pose_detection_confidence=min_confidence,
            min_pose_presence_confidence=min_confidence,
        )
        self._mp = mp
        with quiet_native_stderr():
            self._landmarker = vision.PoseLandmarker.create_from_options(options)
        # Close the native landmarker when this object goes away or, at the latest, before interpreter teardown
        # (mediapipe's own __del__ then finds its ctypes bindings gone and prints a TypeError).
        self._finalizer = weakref.finalize(self, self._landmarker.close)

    def detect(self, image: Image.Image) -> Keypoints | None:
        """The most prominent person's landmarks in `image`, or None when the detector finds no person.

        Args:
            image: any PIL image; converted to RGB (alpha is dropped, greyscale replicated).

        Returns:
            The person's `Keypoints`, or None.
        """
        rgb = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
        with quiet_native_stderr():
            result = self._landmarker.detect(self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb))
        if not result.pose_landmarks:
            return None
        landmarks = result.pose_landmarks[0]
        xy = np.array([(lm.x, lm.y) for lm in landmarks], dtype=np.float32)
        visibility = np.array([lm.visibility for lm in landmarks], dtype=np.float32)
        return Keypoints(xy=xy, visibility=visibility, image_size=(image.width, image.height))

    def close(self) -> None:
        """Free the native landmarker now (otherwise done when the detector is garbage-collected or at exit)."""
        self._finalizer()

    def __enter__(self) -> PoseDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def pose_feature(kp: Keypoints) -> np.ndarray:
    """A fixed-length description of the pose that ignores where the person is in the photo and how large.

    Landmarks are taken relative to the root (mid-hip) and divided by the torso length (mid-hip to mid-shoulder).
    Each landmark contributes (dx * v, dy * v, v), with v its visibility: occluded or off-frame landmarks are the
    model's guesses, which move with the surroundings, so they are damped rather than compared at full weight.

    Args:
        kp: landmarks from `PoseDetector.detect`.

    Returns:
        float32 vector of length `FEATURE_DIM` (99), ordered landmark by landmark.
    """
    # Back to pixel units first: x and y are normalized by different lengths on a non-square photo, and a torso
    # length measured in mixed units would change with the aspect ratio.
    xy = kp.xy.astype(np.float64) * np.asarray(kp.image_size, dtype=np.float64)
    root = (xy[LEFT_HIP] + xy[RIGHT_HIP]) / 2
    mid_shoulder = (xy[LEFT_SHOULDER] + xy[RIGHT_SHOULDER]) / 2
    scale = max(float(np.linalg.norm(mid_shoulder - root)), 1e-6)  # guard a degenerate (zero-length) torso
    vis = kp.visibility.astype(np.float64)[:, None]
    rel = (xy - root) / scale * vis
    return np.concatenate([rel, vis], axis=1).reshape(-1).astype(np.float32)


@functools.lru_cache(maxsize=None)
def shared_detector(min_confidence: float = 0.5) -> PoseDetector:
    """One detector per process and threshold, closed at exit (building the native graph costs ~0.5 s)."""
    detector = PoseDetector(min_confidence=min_confidence)
    # mediapipe's runtime arms a one-shot profiling timer (ITIMER_PROF) without a handler: seconds of CPU time later
    # (mid-training, say) its SIGPROF killed the whole process ("Profiling timer expired"). Ignore it unless someone
    # installed a handler; signal handlers can only be set from the main thread.
    if signal.getsignal(signal.SIGPROF) == signal.SIG_DFL and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGPROF, signal.SIG_IGN)
    return detector
