"""Bad input gets one TwinActError that names the problem and the fix, before anything is written."""

from __future__ import annotations

import pytest
from PIL import Image

from twinact.errors import TwinActError
from twinact.train.training import train


def _images(folder, n=3, size=80):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (size, size + 10 * i), (40 * i, 100, 200)).save(folder / f"im{i}.png")
    return folder


@pytest.mark.parametrize("override,message", [
    ("data.resolution=60", "multiple of 8"),
    ("lora.rank=0", "lora.rank=0 must be a positive"),
    ('action.placeholder_tokens=[action,"<a2>","<a3>"]', "already exist in the tokenizer"),
    ('action.placeholder_tokens=["<a1>","<a1>","<a3>"]', "distinct"),
    ('action.placeholder_tokens=["<a1>","[a1]","<a3>"]', "same file names"),
    ("action_space.offset=median", "init_word, mean, zero"),
    ("action_space.mode=joint", "action_space.mode='joint' is not one of per_slot, pooled"),
    ("action_space.basis=gaussian", "action_space.basis='gaussian' is not one of pca, random"),
    ("model.family=sd3", "model.family='sd3' is not one of sd15, sdxl"),
    ("model.dtype=fp8", "model.dtype='fp8' is not one of auto, fp32, fp16, bf16"),
    ("loss.similarity.decode=noise", "loss.similarity.decode='noise' is not one of x0, eps_raw"),
    ("method.vectors=magic", "method.vectors='magic' is not one of"),
    ("resume=sometimes", "resume='sometimes'"),
    ("method.coefficients=guess", "method.coefficients='guess' is not one of mlp, direct"),
    ("method.stage1.lr=-1e-4", r"method.stage1.lr=-0.0001 must be a learning rate > 0, e.g. method.stage1.lr=2e-4"),
    ("method.stage1.steps=-5", "method.stage1.steps=-5 must be a step count"),
    ("data.batch_size=0", "data.batch_size=0 must be a batch size >= 1"),
    ("action.placeholder_tokens=[]", "action.placeholder_tokens is empty"),
    ('action.caption="a photo"', "action.caption must contain"),
    ('action.templates=["a photo of {}","a photo"]', "action.templates must contain"),
    ("action.name=../../x", "action.name='../../x' must be a plain name"),
])
def test_config_mistakes(tiny_cfg, tmp_path, override, message):
    cfg = tiny_cfg(override, "trainer.fast_dev_run=true", "loss.similarity.start=0",
                   "loss.similarity.min_timestep=-1")
    with pytest.raises(TwinActError, match=message):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_a_method_that_trains_nothing_is_refused(tiny_cfg, tmp_path):
    with pytest.raises(TwinActError, match="method.vectors=fixed with method.lora=false trains nothing"):
        train(tiny_cfg("method.vectors=fixed", "method.lora=false"))
    assert not (tmp_path / "run").exists()


def test_image_folder_problems(tiny_cfg, tmp_path):
    with pytest.raises(TwinActError, match="does not exist"):
        train(tiny_cfg(f"action.image_dir={tmp_path / 'nope'}"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(TwinActError, match="is empty"):
        train(tiny_cfg(f"action.image_dir={tmp_path / 'empty'}"))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("hello")
    with pytest.raises(TwinActError, match="has no images"):
        train(tiny_cfg(f"action.image_dir={tmp_path / 'docs'}"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(TwinActError, match="corrupt"):
        train(tiny_cfg(f"action.image_dir={bad}"))
    with pytest.raises(TwinActError, match="is a file; give the folder"):
        train(tiny_cfg(f"action.image_dir={bad / 'a.png'}"))
    assert not (tmp_path / "run").exists()


def test_user_photos_of_any_size_train(tiny_cfg, tmp_path):
    folder = _images(tmp_path / "photos")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    result = train(tiny_cfg(f"action.image_dir={folder}", "trainer.fast_dev_run=true"))
    assert len((result.run_dir / "exemplars.txt").read_text().split()) == 3


def test_8bit_adam_without_bitsandbytes_is_a_clear_error(tiny_cfg):
    try:
        import bitsandbytes  # noqa: F401

        pytest.skip("bitsandbytes is installed here")
    except ImportError:
        pass
    with pytest.raises(TwinActError, match="pip install bitsandbytes"):
        train(tiny_cfg("method.use_8bit_adam=true", "trainer.fast_dev_run=true"))


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares its size and holds no pixels: what PIL reads before it decodes anything."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + \
        chunk(b"IEND", b"")


def test_huge_tiny_and_elongated_images_are_named_in_the_console_and_train_log(tiny_cfg, tmp_path, caplog):
    folder = _images(tmp_path / "photos", n=3)
    (folder / "bomb.png").write_bytes(_png_header(20000, 20000))
    Image.new("RGB", (10, 12), (200, 30, 30)).save(folder / "tiny.png")
    Image.new("RGB", (400, 40), (30, 200, 30)).save(folder / "strip.png")
    with caplog.at_level("WARNING", logger="twinact.method.data"):
        run = train(tiny_cfg(f"action.image_dir={folder}", stage1=1, stage2=1)).run_dir
    log = (run / "train.log").read_text()
    for name, words in [("bomb.png", "Downscale it"), ("tiny.png", "under a quarter of data.resolution=64"),
                        ("strip.png", "keeps 10% of it")]:
        assert any(name in r.getMessage() and words in r.getMessage() for r in caplog.records), name
        assert name in log and words in log, name
    assert "bomb.png" not in (run / "exemplars.txt").read_text()


def test_a_clip_folder_without_a_vision_tower_is_named(tiny_cfg, tmp_path):
    from transformers import CLIPTextConfig, CLIPTextModel

    CLIPTextModel(CLIPTextConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                 vocab_size=100, max_position_embeddings=16)).save_pretrained(tmp_path / "text_only")
    with pytest.raises(TwinActError, match="is not a CLIP vision model.*model.clip_vision"):
        train(tiny_cfg(f"model.clip_vision={tmp_path / 'text_only'}", "trainer.fast_dev_run=true"))
