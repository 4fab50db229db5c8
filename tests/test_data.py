"""Tests for exemplar loading and the step-indexed training stream (twinact.method.data)."""

import logging
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import stickworld
from twinact.errors import TwinActError
from twinact.method.data import ActionStream, StepBatchSampler, check_resolution, load_exemplars, load_image

RES = 32
RED, BLUE = (255, 0, 0), (0, 0, 255)


def pixels(image: Image.Image) -> np.ndarray:
    assert image.mode == "RGB"
    assert image.size == (RES, RES)
    return np.asarray(image, dtype=np.int16)


def save(tmp_path, name, image, **kw):
    path = tmp_path / name
    image.save(path, **kw)
    return path


def test_load_rgb_non_square_is_cropped_to_square(tmp_path):
    path = save(tmp_path, "rgb.png", Image.new("RGB", (90, 50), (10, 200, 30)))
    arr = pixels(load_image(path, RES))
    assert np.abs(arr - (10, 200, 30)).max() <= 1


def test_load_rgba_transparent_becomes_white(tmp_path):
    image = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (0, 0, 20, 40))  # opaque red left half
    arr = pixels(load_image(save(tmp_path, "rgba.png", image), RES))
    assert (arr[:, -4:] == 255).all()  # transparent half: white, not black
    assert np.abs(arr[:, :4] - RED).max() <= 2


def test_load_grayscale(tmp_path):
    arr = pixels(load_image(save(tmp_path, "gray.png", Image.new("L", (40, 40), 77)), RES))
    assert np.abs(arr - 77).max() <= 1


def test_load_palette_with_transparency(tmp_path):
    image = Image.new("P", (40, 40), 0)
    image.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)  # index 0 black (transparent), index 1 blue
    image.paste(1, (0, 0, 20, 40))
    path = save(tmp_path, "pal.png", image, transparency=0)
    arr = pixels(load_image(path, RES))
    assert np.abs(arr[:, :4] - BLUE).max() <= 2
    assert (arr[:, -4:] == 255).all()


def test_load_cmyk(tmp_path):
    image = Image.new("CMYK", (40, 40), (255, 0, 0, 0))  # pure cyan
    arr = pixels(load_image(save(tmp_path, "cmyk.jpg", image, quality=95), RES))
    assert np.abs(arr - (0, 255, 255)).max() <= 12


def test_load_exif_rotated_jpeg(tmp_path):
    """Orientation 6 (rotate 90 deg clockwise to display): a wide red|blue image comes out red-over-blue."""
    image = Image.new("RGB", (80, 40), BLUE)
    image.paste(RED, (0, 0, 40, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(tmp_path, "rotated.jpg", image, exif=exif.tobytes(), quality=95)
    with Image.open(path) as raw:
        assert raw.size == (80, 40)  # stored wide, displayed tall
    arr = pixels(load_image(path, RES))
    top, bottom = arr[: RES // 4], arr[-RES // 4 :]
    assert np.abs(top - RED).max() <= 40  # unrotated, the top-right corner would be blue
    assert np.abs(bottom - BLUE).max() <= 40  # unrotated, the bottom-left corner would be red


def test_missing_folder(tmp_path):
    folder = tmp_path / "nope"
    with pytest.raises(TwinActError, match=re.escape(str(folder))):
        load_exemplars(str(folder), RES)


def test_empty_folder_ignores_hidden_files(tmp_path):
    (tmp_path / ".DS_Store").write_bytes(b"junk")
    (tmp_path / "subdir").mkdir()
    with pytest.raises(TwinActError, match=re.escape(str(tmp_path)) + ".*empty"):
        load_exemplars(str(tmp_path), RES)


def test_folder_without_images(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "pose.json").write_text("{}")
    with pytest.raises(TwinActError, match=re.escape(str(tmp_path)) + ".*notes.txt"):
        load_exemplars(str(tmp_path), RES)


def test_corrupt_image_skipped_with_warning(tmp_path, caplog):
    (tmp_path / "a_bad.png").write_bytes(b"this is not a png at all")
    save(tmp_path, "b_good.png", Image.new("RGB", (40, 40), RED))
    save(tmp_path, "c_good.jpg", Image.new("RGB", (40, 40), BLUE))
    (tmp_path / "readme.txt").write_text("not an image")
    with caplog.at_level(logging.WARNING, logger="twinact.method.data"):
        exemplars = load_exemplars(str(tmp_path), RES)
        images, paths = [e.image for e in exemplars], [e.path for e in exemplars]
    assert [p.name for p in paths] == ["b_good.png", "c_good.jpg"]
    assert len(images) == 2 and all(im.size == (RES, RES) and im.mode == "RGB" for im in images)
    assert any("a_bad.png" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_only_corrupt_images_raise(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"garbage")
    (tmp_path / "bad2.jpg").write_bytes(b"\xff\xd8garbage")
    with pytest.raises(TwinActError, match=re.escape(str(tmp_path)) + ".*2 files"):
        load_exemplars(str(tmp_path), RES)


def test_packaged_action_folder_loads():
    """pkg://<package>/<path> is <path> under the installed package's data/ folder, found by import."""
    exemplars = load_exemplars("pkg://stickworld/exemplars/three_point_landing", RES)
    images, paths = [e.image for e in exemplars], [e.path for e in exemplars]
    assert len(images) >= 4
    assert len(paths) == len(images) and all(p.is_file() for p in paths)
    assert all(im.size == (RES, RES) and im.mode == "RGB" for im in images)
    assert exemplars[0].path.parent == Path(stickworld.__file__).parent / "data" / "exemplars" / "three_point_landing"


@pytest.mark.parametrize("resolution, factor", [(60, 2), (0, 2), (-64, 2), (100, 8), (72, 16)])
def test_check_resolution_rejects_and_suggests(resolution, factor):
    with pytest.raises(TwinActError, match=f"data.resolution={resolution}") as err:
        check_resolution(resolution, factor)
    suggestion = int(re.search(r"try (\d+)", str(err.value)).group(1))
    check_resolution(suggestion, factor)  # the suggested value is itself accepted


@pytest.mark.parametrize("resolution, factor", [(64, 2), (512, 8), (32, 2), (768, 8)])
def test_check_resolution_accepts(resolution, factor):
    check_resolution(resolution, factor)


def make_stream(seed=0, stage1_steps=2, samples_per_step=4):
    return ActionStream(num_images=5, stage1_steps=stage1_steps, samples_per_step=samples_per_step,
                        templates=["a photo of {}", "a rendering of {}", "{} in the street"],
                        caption="a person doing {}", placeholder="<a1> <a2> <a3>", flip_p=0.5,
                        num_train_timesteps=1000, seed=seed)


def test_stream_is_deterministic_in_seed_and_index():
    a, b, other = make_stream(seed=3), make_stream(seed=3), make_stream(seed=4)
    indices = [0, 1, 7, 8, 123, 10**9]
    assert [a[i] for i in indices] == [b[i] for i in indices]
    assert [a[i] for i in reversed(indices)] == [b[i] for i in reversed(indices)]  # no hidden state
    assert [a[i] for i in indices] != [other[i] for i in indices]
    assert a[0] != a[1]
    for i in range(50):
        item = a[i]
        assert item["index"] == i
        assert 0 <= item["image"] < 5 and item["flip"] in (0, 1) and 0 <= item["timestep"] < 1000


def test_stream_uses_templates_in_stage1_and_caption_after():
    stream = make_stream(stage1_steps=2, samples_per_step=4)
    stage1 = {t.format("<a1> <a2> <a3>") for t in stream.templates}
    first = [stream[i]["caption"] for i in range(8)]  # steps 0 and 1
    assert set(first) <= stage1 and len(set(first)) > 1
    later = {stream[i]["caption"] for i in range(8, 40)}
    assert later == {"a person doing <a1> <a2> <a3>"}
    assert all("{}" not in c for c in first)


def test_flip_probability_zero_never_flips():
    stream = ActionStream(num_images=3, stage1_steps=1, samples_per_step=2, templates=["{}"], caption="{}",
                          placeholder="<a1>", flip_p=0.0, num_train_timesteps=10, seed=0)
    assert all(stream[i]["flip"] == 0 for i in range(100))


def epoch_batches(batch_size, accumulate, epoch, rank=0, world_size=1):
    return list(StepBatchSampler(batch_size, accumulate, lambda: epoch, rank, world_size))


@pytest.mark.parametrize("accumulate", [1, 3])
def test_two_ranks_see_the_single_rank_global_batch(accumulate):
    b = 2
    for epoch in range(4):
        single = epoch_batches(2 * b, accumulate, epoch)
        rank0 = epoch_batches(b, accumulate, epoch, 0, 2)
        rank1 = epoch_batches(b, accumulate, epoch, 1, 2)
        assert len(single) == len(rank0) == len(rank1) == accumulate
        assert all(len(batch) == b for batch in rank0 + rank1)
        assert set(sum(rank0, [])).isdisjoint(sum(rank1, []))
        for micro in range(accumulate):
            assert sorted(rank0[micro] + rank1[micro]) == sorted(single[micro])


def test_epochs_are_contiguous_and_disjoint():
    b, accumulate, world = 2, 3, 2
    per_step = b * accumulate * world
    stream = make_stream(stage1_steps=1, samples_per_step=per_step)
    seen = set()
    for epoch in range(5):
        indices = {i for rank in range(world) for batch in epoch_batches(b, accumulate, epoch, rank, world)
                   for i in batch}
        assert indices == set(range(epoch * per_step, (epoch + 1) * per_step))
        assert seen.isdisjoint(indices)
        seen |= indices
        # every sample of an optimizer step belongs to that step (stage switches on step boundaries)
        captions = {stream[i]["caption"] for i in indices}
        assert (captions == {"a person doing <a1> <a2> <a3>"}) == (epoch >= 1)


def test_sampler_reads_epoch_when_iteration_starts():
    epoch = {"value": 0}
    sampler = StepBatchSampler(2, 1, lambda: epoch["value"])
    assert len(sampler) == 1
    assert list(sampler) == [[0, 1]]
    epoch["value"] = 5
    assert list(sampler) == [[10, 11]]


def test_16_bit_grayscale_is_rescaled_not_clipped(tmp_path):
    path = tmp_path / "depth.png"
    Image.fromarray(np.full((40, 50), 30000, dtype=np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")
    pixel = np.asarray(load_image(path, 32))[0, 0]
    assert abs(int(pixel[0]) - round(30000 / 65535 * 255)) <= 1 and len(set(pixel)) == 1
