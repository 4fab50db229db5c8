"""Offline assets: MediaPipe's BlazePose models as a `pose_landmarker.task` bundle, rebuilt from a registry package.

No model hub is reachable on our machines, and the current `mediapipe` wheel ships no models. The `mediapipe==0.10.21`
wheel on PyPI still carries BlazePose's two networks (person detector + 33-landmark "full" model). `make install`
downloads that wheel (never installed: it pins numpy<2 and protobuf<5), copies the two `.tflite` files out, writes the
input-normalization metadata that the current Tasks API needs for float models, and packs them into the `.task` zip
that `PoseLandmarker` loads. Run as `python -m twinact.space.pose_assets` to fetch; `pose_bundle_path()` finds the
result.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from twinact.errors import TwinActError
from twinact.paths import cache_dir

POSE_BUNDLE = "pose_landmarker.task"
_SOURCE = "mediapipe==0.10.21"
# Pinned to one wheel so that every machine gets byte-identical models (the tflite files are platform independent).
_WHEEL_ARGS = ["--only-binary=:all:", "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"]

# Bundle member -> (member of the 0.10.21 wheel, its sha256, input normalization (mean, std) on 0..255 pixels).
# The normalizations are those of MediaPipe's own pose graphs: the detector takes [-1, 1], the landmark model [0, 1].
_MODELS = {
    "pose_detector.tflite": (
        "mediapipe/modules/pose_detection/pose_detection.tflite",
        "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
        (127.5, 127.5),
    ),
    "pose_landmarks_detector.tflite": (
        "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
        (0.0, 255.0),
    ),
}


def pose_bundle_path() -> Path:
    """The BlazePose `.task` bundle; a clear error if `make install` has not built it."""
    path = cache_dir() / "pose" / POSE_BUNDLE
    if not path.is_file():
        raise TwinActError(
            f"The pose model assets are missing ({path}). Fetch them with `make install` "
            "(or `python -m twinact.space.pose_assets`)."
        )
    return path


def with_input_normalization(model: bytes, mean: float, std: float, name: str) -> bytes:
    """Return `model` with TFLite metadata saying its one input is an RGB image normalized as (pixel - mean) / std.

    MediaPipe's Tasks API refuses float models without this metadata. Its own metadata writer is unusable in
    mediapipe 1.2 (it imports a module the wheel no longer ships), so this builds the same flatbuffer with the
    schema classes that mediapipe does ship. An existing `TFLITE_METADATA` entry is replaced.
    """
    import flatbuffers
    from mediapipe.tasks.metadata import metadata_schema_py_generated as md
    from mediapipe.tasks.metadata import schema_py_generated as tfl

    tflite = tfl.ModelT.InitFromObj(tfl.Model.GetRootAsModel(model, 0))
    graph = tflite.subgraphs[0]

    norm = md.NormalizationOptionsT()
    norm.mean, norm.std = [mean], [std]
    unit = md.ProcessUnitT()
    unit.optionsType, unit.options = md.ProcessUnitOptions.NormalizationOptions, norm
    image = md.ImagePropertiesT()
    image.colorSpace = md.ColorSpaceType.RGB
    content = md.ContentT()
    content.contentPropertiesType, content.contentProperties = md.ContentProperties.ImageProperties, image
    image_input = md.TensorMetadataT()
    image_input.name, image_input.content, image_input.processUnits = "image", content, [unit]
    outputs = []
    for index in graph.outputs:  # one (empty) entry per output tensor: the parser checks the counts match
        entry = md.TensorMetadataT()
        entry.name = graph.tensors[index].name
        outputs.append(entry)
    subgraph = md.SubGraphMetadataT()
    subgraph.inputTensorMetadata, subgraph.outputTensorMetadata = [image_input], outputs
    meta = md.ModelMetadataT()
    meta.name, meta.minParserVersion, meta.subgraphMetadata = name, "1.0.0", [subgraph]
    builder = flatbuffers.Builder(0)
    builder.Finish(meta.Pack(builder), b"M001")  # the metadata schema's file identifier

    buffer = tfl.BufferT()
    buffer.data = builder.Output()
    entries = tflite.metadata or []
    existing = [e for e in entries if e.name in (b"TFLITE_METADATA", "TFLITE_METADATA")]
    if existing:
        tflite.buffers[existing[0].buffer] = buffer
    else:
        tflite.buffers.append(buffer)
        entry = tfl.MetadataT()
        entry.name, entry.buffer = "TFLITE_METADATA", len(tflite.buffers) - 1
        tflite.metadata = entries + [entry]
    builder = flatbuffers.Builder(0)
    builder.Finish(tflite.Pack(builder), b"TFL3")  # the TFLite schema's file identifier
    return bytes(builder.Output())


def fetch_pose_assets(cache_dir: Path, force: bool = False) -> Path:
    """Download the mediapipe 0.10.21 wheel (no deps, not installed) and build `cache_dir/pose/pose_landmarker.task`.

    Idempotent: returns at once when the bundle exists, unless `force`.
    """
    out = Path(cache_dir) / "pose" / POSE_BUNDLE
    if out.is_file() and not force:
        return out
    models: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *_WHEEL_ARGS, _SOURCE, "-d", tmp]
        subprocess.run(cmd, check=True)
        wheel = next(Path(tmp).glob("mediapipe-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            for name, (member, sha256, (mean, std)) in _MODELS.items():
                raw = zf.read(member)
                if hashlib.sha256(raw).hexdigest() != sha256:
                    raise TwinActError(f"{member} in {wheel.name} is not the expected BlazePose model (sha256).")
                models[name] = with_input_normalization(raw, mean, std, name.removesuffix(".tflite"))

    # mediapipe's bundle writer stores members uncompressed and 4-byte aligned, so they can be memory-mapped.
    from mediapipe.tasks.python.metadata.metadata_writers.model_asset_bundle_utils import create_model_asset_bundle

    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial")  # written aside, then renamed: an interrupted run leaves no bad bundle
    create_model_asset_bundle(models, str(partial))
    os.replace(partial, out)
    return out


if __name__ == "__main__":
    print(f"Pose model ready in {fetch_pose_assets(cache_dir(), force='--force' in sys.argv)}")
