"""Rendering: a plain diffusers pipeline around the frozen parts, images and grids."""

from __future__ import annotations

import logging
import math
import os
import signal
import time
from pathlib import Path

import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline
from omegaconf import OmegaConf
from PIL import Image

from twinact.config.schema import typed
from twinact.config.validate import check_sampling
from twinact.errors import Stopped, TwinActError
from twinact.model.base import BaseModel
from twinact.model.models import load_model
from twinact.release import space_ops
from twinact.release.export import load_into_pipeline
from twinact.release.export_check import check_export, read_info
from twinact.runs.commands import override
from twinact.runs.console import CountProgress
from twinact.runs.files import LORA_WEIGHTS, RunFiles
from twinact.runs.rundir import allocate_run_dir, newest_finished_run

log = logging.getLogger(__name__)


def make_pipeline(comps):
    """An SD or SDXL pipeline on the given parts with a DDIM sampler (no safety checker: research use)."""
    scheduler = DDIMScheduler.from_config(comps.noise_scheduler.config)
    if comps.is_xl:
        return StableDiffusionXLPipeline(
            vae=comps.vae, text_encoder=comps.text_encoder, text_encoder_2=comps.text_encoder_2,
            tokenizer=comps.tokenizer, tokenizer_2=comps.tokenizer_2, unet=comps.unet, scheduler=scheduler,
        )
    return StableDiffusionPipeline(
        vae=comps.vae, text_encoder=comps.text_encoder, tokenizer=comps.tokenizer, unet=comps.unet,
        scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


@torch.no_grad()
def render(pipe, prompts: list[str], *, num_images: int = 1, seed: int = 0, steps: int = 25,
           guidance_scale: float = 7.5, resolution: int = 512, batch_size: int = 4,
           progress: bool = True) -> list[Image.Image]:
    """`num_images` images per prompt; image j of every prompt uses seed `seed + j` (comparable across prompts)."""
    jobs = [(p, seed + j) for p in prompts for j in range(num_images)]
    # None is tqdm's own choice: a bar in a terminal, none when the output goes to a file (an explicit False would
    # override the TQDM_DISABLE that twinact.runs.noise sets for a log)
    pipe.set_progress_bar_config(disable=None if progress else True)
    images = []
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        gens = [torch.Generator(device="cpu").manual_seed(s) for _, s in chunk]
        out = pipe([p for p, _ in chunk], generator=gens, num_inference_steps=steps, guidance_scale=guidance_scale,
                   height=resolution, width=resolution, output_type="pil")
        images.extend(out.images)
    return images


def render_jobs(pipe, todo: list[dict], *, steps: int, guidance_scale: float, resolution: int, batch_size: int,
                batches=iter):
    """Yield (job, image) for every job (its `prompt`, seeded by its own `seed`), `batch_size` prompts per call;
    `batches` wraps the batch starts (a progress bar)."""
    for start in batches(range(0, len(todo), batch_size)):
        chunk = todo[start : start + batch_size]
        gens = [torch.Generator().manual_seed(j["seed"]) for j in chunk]
        images = pipe([j["prompt"] for j in chunk], generator=gens, num_inference_steps=steps,
                      guidance_scale=guidance_scale, height=resolution, width=resolution).images
        yield from zip(chunk, images)


def make_grid(images: list[Image.Image], cols: int | None = None) -> Image.Image:
    """Tile equally sized images row by row."""
    cols = cols or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    w, h = images[0].size
    grid = Image.new("RGB", (cols * w, rows * h), "white")
    for i, im in enumerate(images):
        grid.paste(im, ((i % cols) * w, (i // cols) * h))
    return grid


GRID_COLUMNS = 8  # images per prompt in grid.png (every image is its own file as well)


def sample_run(run_dir: str, prompts: list[str] | None = None, *, num_images: int = 4, seed: int = 0,
               steps: int | None = None, guidance_scale: float | None = None, out_dir: str | None = None,
               compose: list[str] | None = None, weights: list[float] | None = None,
               adjust: dict | None = None) -> Path:
    """Render prompts with a finished run's export, loaded into a fresh pipeline by plain diffusers calls.

    Each image is written as soon as it is made (`<prompt>_<seed>.png`), so an interrupted call keeps what it made;
    a progress line gives the count and the time left.

    Args:
        run_dir: a training run directory (holds `config.yaml` and `export/`).
        prompts: prompts using the placeholder tokens; None renders the action's eval prompts.
        steps, guidance_scale: DDIM steps and guidance; None: the export's (what its training grids used).
        out_dir: where images and `grid.png` go; default `<run>/samples/<timestamp>` (never overwritten).
        compose: run dirs whose actions to mix (sharing `run_dir`'s action space); their LoRAs mix with the same
            weights. None renders `run_dir` alone.
        weights: one weight per composed run (default: equal).
        adjust: `{component: k, amount: a, slots: [..] | None}`: move the coefficients along principal component k.
    """
    check_sampling(num_images, steps, guidance_scale)
    run = Path(run_dir)
    info, cfg = export_info(run), OmegaConf.load(RunFiles(run).config)
    prompts = list(prompts or [p.format(" ".join(info["tokens"])) for p in cfg.action.eval_prompts])
    warn_without_placeholders(prompts, info["tokens"])
    edit = compose or (adjust and adjust.get("component") is not None)
    pipe, cfg, comps = base_pipeline(run)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    if edit:
        for other in [Path(r) for r in compose or [run]]:
            check_export(RunFiles(other).export, pipe, model)
        _load_space_edit(pipe, comps, run, [Path(r) for r in compose or [run]], weights, adjust)
    else:
        load_into_pipeline(pipe, RunFiles(run).export, model)
    out = allocate_run_dir(out_dir or RunFiles(run).samples / time.strftime("%Y-%m-%d_%H-%M-%S"))
    (out / "prompts.txt").write_text("\n".join(prompts) + "\n")
    todo = [{"prompt": p, "seed": seed + j, "file": f"{i:02d}_{j:02d}.png"}
            for i, p in enumerate(prompts) for j in range(num_images)]
    pipe.set_progress_bar_config(disable=True)
    progress, shown, done = CountProgress(len(todo)), [], 0
    try:
        for job, image in render_jobs(pipe, todo, steps=steps or info["steps"], resolution=cfg.data.resolution,
                                      guidance_scale=info["guidance_scale"] if guidance_scale is None
                                      else guidance_scale, batch_size=4):
            save_whole(image, out / job["file"])
            done += 1
            progress.update(done)
            if job["seed"] - seed < GRID_COLUMNS:
                shown.append(image)
    except KeyboardInterrupt:
        for partial in out.glob(".*.tmp"):
            partial.unlink()
        raise Stopped(f"interrupted after {done} of {len(todo)} images; they are in {out}.", signal.SIGINT) from None
    make_grid(shown, cols=min(num_images, GRID_COLUMNS)).save(out / "grid.png")
    return out


def save_whole(image: Image.Image, path: Path) -> None:
    """Write a PNG under a temporary name, then rename it: an interrupted save leaves no torn image behind."""
    tmp = path.with_name(f".{path.name}.tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)


def warn_without_placeholders(prompts: list[str], tokens: list[str]) -> None:
    """A prompt with none of the run's placeholder tokens renders the base model alone: say so."""
    for prompt in prompts:
        if not any(token in prompt for token in tokens):
            example = override("prompt", f"{prompt} {' '.join(tokens)}")
            log.warning("The prompt %r has none of the run's placeholder tokens (%s), so the action cannot show; "
                        "e.g. %s", prompt, " ".join(tokens), example)


def save_as_pipeline(comps: BaseModel, out_dir: str) -> None:
    """Write the base model as a plain diffusers pipeline folder (what `model=sd15` / `model=sdxl` load), in fp32
    and with the DDIM sampler twinact renders with, so a plain `from_pretrained(out_dir)` reproduces its images."""
    modules = [m for m in (*comps.text_encoders, comps.vae, comps.unet) if m.dtype != torch.float32]
    dtypes = [m.dtype for m in modules]
    for module in modules:
        module.to(torch.float32)
    make_pipeline(comps).save_pretrained(out_dir)
    for module, dtype in zip(modules, dtypes):
        module.to(dtype)


def export_info(run: Path) -> dict:
    """The export's `twinact.json` of a finished run, with the render defaults of exports written before they were
    recorded."""
    check_finished(run)
    return {"steps": 25, "guidance_scale": 7.5, **read_info(RunFiles(run).export)}


def check_finished(run: Path) -> None:
    if not RunFiles(run).config.is_file() or not RunFiles(run).export_info.is_file():
        newest = newest_finished_run()
        raise TwinActError(f"{run} is not a finished twinact run (it needs config.yaml and export/twinact.json); "
                           + (f"the newest one here is {override('run', newest)}." if newest else
                              "pass the run dir train.py printed."))


def base_pipeline(run: Path):
    """(pipeline on the run's frozen base model, the run's config, the base model's parts) for a finished run."""
    check_finished(run)
    cfg = OmegaConf.load(RunFiles(run).config)
    comps = load_model(typed("model", cfg.model), cfg.trainer.precision if torch.cuda.is_available() else "32-true")
    return make_pipeline(comps).to("cuda" if torch.cuda.is_available() else "cpu"), cfg, comps


def _load_space_edit(pipe, comps, run: Path, runs: list[Path], weights: list[float] | None,
                     adjust: dict | None) -> list[str]:
    """Compose and/or adjust actions in the common space, then load the result like an export."""
    weights = list(weights) if weights else [1.0 / len(runs)] * len(runs)
    meta, coeffs = space_ops.compose(runs, weights)
    if adjust and adjust.get("component") is not None:
        coeffs = space_ops.adjust(coeffs, int(adjust["component"]), float(adjust.get("amount", 0.0)),
                                  adjust.get("slots"), num_components=space_ops.slot_components(meta))
    rows = space_ops.run_space_embeddings(run, comps, coeffs)
    pairs = list(zip(comps.tokenizers, comps.text_encoders))
    for slot, token in enumerate(meta["tokens"]):
        for (tok, enc), emb in zip(pairs, rows):
            pipe.load_textual_inversion(emb[slot].clone(), token=token, text_encoder=enc, tokenizer=tok)
    names = []
    for i, r in enumerate(runs):
        if (RunFiles(r).export / LORA_WEIGHTS).is_file():
            pipe.load_lora_weights(str(RunFiles(r).export), adapter_name=f"run{i}")
            names.append((f"run{i}", weights[i]))
    if names:
        pipe.set_adapters([n for n, _ in names], adapter_weights=[w for _, w in names])
    return meta["tokens"]
