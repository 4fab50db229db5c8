"""The export is plain diffusers: a fresh pipeline loads it with its own calls and renders the action."""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline
from safetensors.torch import load_file

from twinact.model.random_models import build_tiny
from twinact.release.sampling import make_pipeline, sample_run, save_as_pipeline
from twinact.train.training import train

PROMPT = "a polar bear <a1> <a2> <a3> in front of the Eiffel tower"


def _image(pipe, prompt: str) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return pipe(prompt, generator=gen, num_inference_steps=3, height=64, width=64, output_type="pt").images


def test_export_loads_into_plain_pipeline_and_matches_training(tiny_cfg, tmp_path):
    # alpha != rank: a format that dropped the adapter metadata would load the wrong LoRA scale.
    result = train(tiny_cfg("lora.alpha=8", "method.stage2.lora_lr=1e-2", stage1=1, stage2=3))
    export = result.run_dir / "export"
    save_as_pipeline(build_tiny(), str(tmp_path / "base"))
    pipe = StableDiffusionPipeline.from_pretrained(str(tmp_path / "base"), safety_checker=None)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)  # the sampler twinact renders with
    before = _image(pipe, PROMPT)

    for token in ("a1", "a2", "a3"):
        pipe.load_textual_inversion(str(export / "textual_inversion" / f"{token}.safetensors"))
    pipe.load_lora_weights(str(export))
    after = _image(pipe, PROMPT)
    assert (after - before).abs().max() > 1e-3

    # The loaded token rows are exactly the trained placeholder vectors.
    vectors = load_file(export / "twinact_state.safetensors")["embeddings.0"]
    ids = pipe.tokenizer.convert_tokens_to_ids(["<a1>", "<a2>", "<a3>"])
    assert torch.allclose(pipe.text_encoder.get_input_embeddings().weight[ids], vectors)

    # The loaded LoRA UNet computes what the trained UNet computes.
    module = result.module.eval()
    x, t, ctx = torch.randn(1, 4, 32, 32), torch.tensor([500]), torch.randn(1, 77, 32)
    with torch.no_grad():
        torch.testing.assert_close(pipe.unet(x, t, ctx).sample, module.unet(x, t, ctx).sample, rtol=1e-4, atol=1e-5)

    # Rendering through the training pipeline and the plain one agrees.
    torch.testing.assert_close(_image(make_pipeline(module.comps), PROMPT), after, rtol=1e-3, atol=1e-3)


def test_sample_run_writes_images_and_grid(tiny_cfg):
    run_dir = train(tiny_cfg(stage1=1, stage2=1)).run_dir
    out = sample_run(str(run_dir), [PROMPT, "a robot <a1> <a2> <a3>"], num_images=2, steps=2)
    assert sorted(p.name for p in out.glob("*.png")) == ["00_00.png", "00_01.png", "01_00.png", "01_01.png", "grid.png"]
    again = sample_run(str(run_dir), [PROMPT], num_images=1, steps=2, out_dir=str(out))
    assert again != out and (out / "grid.png").is_file()  # an existing output folder is never overwritten


def test_pretrained_loading_path(tiny_cfg, tmp_path):
    """`model=sd15 model.pretrained=<dir>` goes through from_pretrained, offline."""
    save_as_pipeline(build_tiny(), str(tmp_path / "sd"))
    cfg = tiny_cfg("model=sd15", f"model.pretrained={tmp_path / 'sd'}", "model.resolution=64",
                   "model.clip_vision=tiny", stage1=1, stage2=1)
    result = train(cfg)
    assert result.module.fingerprint["model"].startswith(str(tmp_path / "sd"))
    assert (result.run_dir / "export" / "pytorch_lora_weights.safetensors").is_file()
