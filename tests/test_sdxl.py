"""SDXL goes through the same training path as SD1.5; its export renders in a plain StableDiffusionXLPipeline."""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler, StableDiffusionXLPipeline
from safetensors.torch import load_file

from twinact.method.assembly import exemplar_time_ids
from twinact.method.data import Exemplar
from twinact.model.conditioning import encode_captions
from twinact.model.random_models import build_tiny_xl
from twinact.release.sampling import save_as_pipeline
from twinact.space.placeholder import add_placeholder_tokens, install
from twinact.train.training import train

PROMPT = "a polar bear <a1> <a2> <a3> in front of the Eiffel tower"


def test_conditioning_matches_the_pipeline_for_plain_prompts(tmp_path):
    """Hidden states and the pooled embedding equal SDXL's own `encode_prompt`, also with placeholders installed."""
    save_as_pipeline(build_tiny_xl(), str(tmp_path / "xl"))
    pipe = StableDiffusionXLPipeline.from_pretrained(str(tmp_path / "xl"))
    assert pipe.text_encoder_2.config.eos_token_id == 2  # the legacy pooling path, as in the real SDXL
    prompt = "a photo of a dog jumping over a fence"
    ref_hidden, _, ref_pooled, _ = pipe.encode_prompt(prompt, device="cpu", do_classifier_free_guidance=False)

    comps = build_tiny_xl()
    for tok, enc in zip(comps.tokenizers, comps.text_encoders):
        ids = add_placeholder_tokens(tok, ["<a1>"])
        vectors = (lambda h: (lambda: torch.ones(1, h)))(enc.config.hidden_size)
        install(enc, ids, vectors)
    with torch.no_grad():
        hidden, pooled = encode_captions(comps, [prompt], "cpu")
        torch.testing.assert_close(hidden, ref_hidden)
        torch.testing.assert_close(pooled, ref_pooled)
        # With a placeholder the pooled output reads the (largest) placeholder id's position, as the pipeline does.
        _, pooled_a = encode_captions(comps, ["a photo of <a1>"], "cpu")
        _, pooled_b = encode_captions(comps, ["a photo of <a1> ."], "cpu")
    torch.testing.assert_close(pooled_a, pooled_b)


def test_time_ids_follow_the_crop():
    wide = Exemplar(image=None, path=None, original_size=(100, 200), crop_top_left=(0, 32))
    ids = exemplar_time_ids([wide], resolution=64)
    assert ids[0, 0].tolist() == [100, 200, 0, 32, 64, 64]
    assert ids[0, 1].tolist() == [100, 200, 0, 128 - 32 - 64, 64, 64]  # flipped: the crop mirrors


def test_tiny_xl_trains_both_stages_and_exports_to_plain_sdxl(tiny_cfg, tmp_path):
    result = train(tiny_cfg("model=tiny_xl", "lora.alpha=8", "method.stage2.lora_lr=1e-2", stage1=1, stage2=2))
    export = result.run_dir / "export"
    assert len(result.module.vectors) == 2  # one MLP set per text encoder
    save_as_pipeline(build_tiny_xl(), str(tmp_path / "base"))
    pipe = StableDiffusionXLPipeline.from_pretrained(str(tmp_path / "base"))
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    kw = dict(num_inference_steps=3, height=64, width=64, output_type="pt")
    before = pipe(PROMPT, generator=gen(), **kw).images

    rows = load_file(export / "textual_inversion" / "a1.safetensors")
    assert rows["clip_l"].shape == (32,) and rows["clip_g"].shape == (48,)
    for token in ("<a1>", "<a2>", "<a3>"):
        rows = load_file(export / "textual_inversion" / f"{token.strip('<>')}.safetensors")
        pipe.load_textual_inversion(rows["clip_l"], token=token, text_encoder=pipe.text_encoder,
                                    tokenizer=pipe.tokenizer)
        pipe.load_textual_inversion(rows["clip_g"], token=token, text_encoder=pipe.text_encoder_2,
                                    tokenizer=pipe.tokenizer_2)
    pipe.load_lora_weights(str(export))
    after = pipe(PROMPT, generator=gen(), **kw).images
    assert (after - before).abs().max() > 1e-3

    module = result.module.eval()
    x, t = torch.randn(1, 4, 32, 32), torch.tensor([500])
    ctx, added = torch.randn(1, 77, 80), {"text_embeds": torch.randn(1, 32), "time_ids": torch.tensor([[64.0] * 6])}
    with torch.no_grad():
        torch.testing.assert_close(pipe.unet(x, t, ctx, added_cond_kwargs=added).sample,
                                   module.unet(x, t, ctx, added_cond_kwargs=added).sample, rtol=1e-4, atol=1e-5)


def test_sdxl_pretrained_path_and_sampling(tiny_cfg, tmp_path):
    """`model=sdxl model.pretrained=<dir>` loads both encoders whole through from_pretrained; sample.py renders."""
    from twinact.release.sampling import sample_run

    save_as_pipeline(build_tiny_xl(), str(tmp_path / "xl"))
    cfg = tiny_cfg("model=sdxl", f"model.pretrained={tmp_path / 'xl'}", "model.resolution=64", "model.clip_vision=tiny",
                   stage1=1, stage2=1)
    result = train(cfg)
    assert torch.equal(result.module.comps.text_encoder_2.text_projection.weight,
                       build_tiny_xl().text_encoder_2.text_projection.weight)
    out = sample_run(str(result.run_dir), [PROMPT], num_images=2, steps=2)
    assert (out / "grid.png").is_file() and len(list(out.glob("00_*.png"))) == 2
