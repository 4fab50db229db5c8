"""Exports every tool loads: the model card's plain-diffusers snippet reproduces `sample.py`, the kohya LoRA and the
web-UI embedding round-trip through diffusers, and SDXL renders what it trained."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from twinact.model.random_models import build_tiny, build_tiny_xl
from twinact.paths import package_path
from twinact.release.sampling import make_pipeline, render, sample_run, save_as_pipeline
from twinact.train.training import train

PROMPT = "a polar bear <a1> <a2> <a3> in front of the Eiffel tower"


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def stickworld_run(tmp_path_factory):
    """A fresh TwinAct export on the shipped StickWorld base model (LoRA alpha != rank, so a lost scale shows)."""
    from conftest import compose, fast_overrides

    tmp = tmp_path_factory.mktemp("sw")
    cfg = compose(fast_overrides(tmp, 1, 2) + ["model=stickworld", "lora.alpha=8", "method.stage2.lora_lr=1e-2"])
    return train(cfg).run_dir


def test_shipped_base_loads_plainly_in_one_dtype_with_the_ddim_sampler():
    pipe = StableDiffusionPipeline.from_pretrained(str(package_path("pkg://stickworld/base")))
    assert {m.dtype for m in (pipe.text_encoder, pipe.unet, pipe.vae)} == {torch.float32}
    assert isinstance(pipe.scheduler, DDIMScheduler)


def test_model_card_snippet_reproduces_sample_py(stickworld_run, tmp_path):
    export = stickworld_run / "export"
    info = json.loads((export / "twinact.json").read_text())
    assert info["base_model"] == str(package_path("pkg://stickworld/base"))
    assert (info["steps"], info["guidance_scale"]) == (25, 3.0)  # model=stickworld's render defaults
    card = (export / "README.md").read_text()
    assert info["base_model"] in card and "a polar bear three_point_landing" in card
    snippet = re.search(r"```python\n(.*?)```", card, re.S).group(1)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        scope: dict = {}
        exec(snippet, scope)  # the card's own code, as a user pastes it
    finally:
        os.chdir(cwd)
    plain = scope["pipe"]
    ids = plain.tokenizer.convert_tokens_to_ids(info["tokens"])
    trained = load_file(export / "twinact_state.safetensors")["embeddings.0"]
    assert torch.equal(plain.text_encoder.get_input_embeddings().weight[ids], trained)  # exactly, in fp32

    out = sample_run(str(stickworld_run), [info["example_prompt"]], num_images=1, out_dir=str(tmp_path / "s"))
    diff = np.abs(_pixels(Image.open(tmp_path / "example.png")) - _pixels(Image.open(out / "00_00.png")))
    assert diff.max() <= 2, diff.max()


def test_webui_files_round_trip_through_diffusers(stickworld_run):
    export = stickworld_run / "export"
    base = json.loads((export / "twinact.json").read_text())["base_model"]
    kohya_path = export / "webui" / "loras" / "three_point_landing.safetensors"
    kohya = load_file(kohya_path)
    assert kohya and all(k.startswith("lora_unet_") for k in kohya)
    assert {float(v) for k, v in kohya.items() if k.endswith(".alpha")} == {8.0}
    with safe_open(str(kohya_path), "pt") as f:
        assert f.metadata()["ss_network_dim"] == "4"

    diffusers_pipe = StableDiffusionPipeline.from_pretrained(base)
    diffusers_pipe.load_lora_weights(str(export))
    kohya_pipe = StableDiffusionPipeline.from_pretrained(base)
    kohya_pipe.load_lora_weights(str(kohya_path))
    c = diffusers_pipe.unet.config
    x, t, ctx = torch.randn(1, c.in_channels, c.sample_size, c.sample_size), torch.tensor([500]), torch.randn(1, 77, 64)
    with torch.no_grad():
        torch.testing.assert_close(kohya_pipe.unet(x, t, ctx).sample, diffusers_pipe.unet(x, t, ctx).sample,
                                   rtol=1e-5, atol=1e-6)
        base_out = StableDiffusionPipeline.from_pretrained(base).unet(x, t, ctx).sample
        assert (kohya_pipe.unet(x, t, ctx).sample - base_out).abs().max() > 1e-4  # the LoRA is really in

    emb = load_file(export / "webui" / "embeddings" / "three_point_landing.safetensors")
    trained = load_file(export / "twinact_state.safetensors")["embeddings.0"]
    assert list(emb) == ["emb_params"] and torch.equal(emb["emb_params"], trained)
    # A prompt typing the file's name reads the same vectors as one typing the placeholders.
    for token in ("a1", "a2", "a3"):
        diffusers_pipe.load_textual_inversion(str(export / "textual_inversion" / f"{token}.safetensors"))
    diffusers_pipe.load_textual_inversion(emb, token="three_point_landing")
    kw = dict(num_images=1, steps=3, resolution=64, progress=False)
    by_tokens = render(diffusers_pipe, ["a robot <a1> <a2> <a3>"], **kw)[0]
    by_name = render(diffusers_pipe, ["a robot three_point_landing"], **kw)[0]
    assert np.array_equal(_pixels(by_tokens), _pixels(by_name))


def test_every_export_file_is_world_readable_and_carded(tiny_cfg):
    export = train(tiny_cfg(stage1=1, stage2=1)).run_dir / "export"
    info = json.loads((export / "twinact.json").read_text())
    assert "base_model" in info and info["base_model"] is None  # built in code: nothing from_pretrained takes
    assert "built in code" in (export / "README.md").read_text()
    files = [p for p in export.rglob("*") if p.is_file()]
    assert {"README.md", "three_point_landing.safetensors"} <= {p.name for p in files}
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in files)


def test_sdxl_plain_pipeline_renders_what_training_renders(tiny_cfg, tmp_path):
    """Training conditions on the pooling a plain SDXL pipeline uses, so the in-training render is the export's."""
    result = train(tiny_cfg("model=tiny_xl", "lora.alpha=8", "method.stage2.lora_lr=1e-2", stage1=1, stage2=2))
    export = result.run_dir / "export"
    kw = dict(num_images=1, steps=3, resolution=64, progress=False, guidance_scale=5.0)
    in_training = render(make_pipeline(result.module.comps), [PROMPT], **kw)[0]

    save_as_pipeline(build_tiny_xl(), str(tmp_path / "base"))
    pipe = StableDiffusionXLPipeline.from_pretrained(str(tmp_path / "base"))
    emb = load_file(export / "webui" / "embeddings" / "three_point_landing.safetensors")
    state = load_file(export / "twinact_state.safetensors")
    assert torch.equal(emb["clip_l"], state["embeddings.0"]) and torch.equal(emb["clip_g"], state["embeddings.1"])
    for slot, token in enumerate(("<a1>", "<a2>", "<a3>")):
        pipe.load_textual_inversion(emb["clip_l"][slot], token=token, text_encoder=pipe.text_encoder,
                                    tokenizer=pipe.tokenizer)
        pipe.load_textual_inversion(emb["clip_g"][slot], token=token, text_encoder=pipe.text_encoder_2,
                                    tokenizer=pipe.tokenizer_2)
    pipe.load_lora_weights(str(export / "webui" / "loras" / "three_point_landing.safetensors"))
    plain = render(pipe, [PROMPT], **kw)[0]
    assert np.abs(_pixels(plain) - _pixels(in_training)).max() <= 2


def test_kohya_alpha_keeps_the_trained_scale():
    from twinact.model.lora import add_lora, lora_state_dict
    from twinact.release.webui import kohya_lora

    unet = build_tiny("epsilon").unet
    add_lora(unet, rank=4, alpha=2)
    kohya = kohya_lora(lora_state_dict(unet), 2)
    alphas = [v for k, v in kohya.items() if k.endswith(".alpha")]
    assert alphas and all(float(a) == 2.0 for a in alphas)
