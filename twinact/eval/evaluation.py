"""`evaluate(run_dir, eval_suite)`: render a suite's actors x prompts x seeds with a trained action and score them.

Generations are cached as PNGs under `<run>/eval/images/`, so a rerun (or a larger seed list) only renders what is
missing. Writes `eval/metrics.json` (per prompt and aggregated, mean and 95% CI over seeds), `eval/report.md`,
`eval/grid.png` (exemplars in the first row, then one row per actor, seeds across) and `eval/bars.png`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import signal
from collections import defaultdict
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from twinact.config.validate import check_eval_suite
from twinact.errors import Stopped
from twinact.eval.eval_report import METRIC_NOTES, log_to_wandb, write_figures, write_report
from twinact.eval.scorers import ScoredRun
from twinact.eval.stats import mean_ci95
from twinact.method.data import load_exemplars
from twinact.release.export import load_into_pipeline
from twinact.release.model_card import write_card
from twinact.release.sampling import base_pipeline, export_info, render_jobs, save_whole
from twinact.runs.console import CountProgress
from twinact.runs.files import RunFiles

log = logging.getLogger(__name__)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def render_settings(run: Path, suite: DictConfig, model: dict, resolution: int) -> dict:
    """Everything besides prompt and seed that changes a rendered image: the export's bytes, the base model (its
    recorded `model` settings), the sampler settings and the resolution."""
    export = hashlib.sha256()
    for path in sorted(RunFiles(run).export.rglob("*.safetensors")):
        export.update(path.read_bytes())
    return {"export": export.hexdigest(), "model": model, "sampler": "DDIMScheduler", "steps": int(suite.steps),
            "guidance_scale": guidance(run, suite), "resolution": int(resolution)}


def guidance(run: Path, suite: DictConfig) -> float:
    """The suite's guidance scale, or (null) the export's: the base model's default that its grids used."""
    return float(export_info(run)["guidance_scale"] if suite.guidance_scale is None else suite.guidance_scale)


def jobs(suite: DictConfig, placeholder: str, settings: dict | None = None) -> list[dict]:
    """Every (actor, template, seed) of the suite with its prompt and cache file name.

    The file name carries a hash of the prompt and `settings` (see `render_settings`), so a cached image is reused
    only for exactly the prompt, seed and settings that made it.
    """
    out = []
    for actor in suite.actors:
        for t, template in enumerate(suite.templates):
            for seed in suite.seeds:
                prompt = template.format(actor=actor.name, action=placeholder)
                key = hashlib.sha256(json.dumps([prompt, int(seed), settings], sort_keys=True).encode()).hexdigest()
                out.append({"actor": actor.name, "template": t, "seed": int(seed), "prompt": prompt,
                            "file": f"{slug(actor.name)}_t{t}_s{seed}_{key[:12]}.png"})
    return out


def render_missing(run: Path, todo: list[dict], suite: DictConfig, resolution: int) -> None:
    """Render the jobs whose image is not cached yet (one pipeline load, batched by seed order)."""
    missing = [j for j in todo if not (RunFiles(run).eval_images / j["file"]).is_file()]
    if not missing:
        return
    pipe, cfg, _ = base_pipeline(run)
    load_into_pipeline(pipe, RunFiles(run).export, OmegaConf.to_container(cfg.model, resolve=True))
    pipe.set_progress_bar_config(disable=True)
    RunFiles(run).eval_images.mkdir(parents=True, exist_ok=True)
    progress, done = CountProgress(len(missing)), 0
    try:
        for j, im in render_jobs(pipe, missing, steps=suite.steps, guidance_scale=guidance(run, suite),
                                 resolution=resolution, batch_size=suite.batch_size):
            save_whole(im, RunFiles(run).eval_images / j["file"])
            done += 1
            progress.update(done)
    except KeyboardInterrupt:
        raise Stopped(f"interrupted after {done} of {len(missing)} images; they are cached in {run / 'eval' / 'images'}"
                      " and the same command renders only the rest.", signal.SIGINT) from None


def aggregate(todo: list[dict], per_image: dict[str, list[float]]) -> tuple[list[dict], dict]:
    """Per prompt: mean and CI95 over seeds. Overall: per-seed means (over prompts), then mean and CI95 over seeds."""
    prompts, by_seed = defaultdict(lambda: defaultdict(list)), defaultdict(lambda: defaultdict(list))
    for i, j in enumerate(todo):
        for metric, values in per_image.items():
            v = values[i]
            if v == v:  # NaN: undetected pose or no reference images
                prompts[(j["actor"], j["prompt"])][metric].append(v)
                by_seed[metric][j["seed"]].append(v)
    rows = []
    for (actor, prompt), metrics in prompts.items():
        row = {"actor": actor, "prompt": prompt}
        for metric, values in metrics.items():
            row[metric], row[f"{metric}_ci95"] = mean_ci95(values)
        rows.append(row)
    overall = {}
    for metric, seeds in by_seed.items():
        overall[metric], overall[f"{metric}_ci95"] = mean_ci95([sum(v) / len(v) for v in seeds.values()])
    return rows, overall


def evaluate(run_dir: str | Path, suite: DictConfig, *, device: str = "cpu") -> dict:
    """Render what is missing, score everything with the suite's scorer, write the report; returns metrics.json."""
    run = Path(run_dir)
    check_eval_suite(suite)
    placeholder = " ".join(export_info(run)["tokens"])
    recorded = OmegaConf.to_container(OmegaConf.load(RunFiles(run).config), resolve=True)
    action, model, resolution = recorded["action"], recorded["model"], recorded["data"]["resolution"]
    todo = jobs(suite, placeholder, render_settings(run, suite, model, resolution))
    render_missing(run, todo, suite, resolution)
    exemplars = [e.image for e in load_exemplars(action["image_dir"], resolution)]
    scorer = instantiate(suite.scorer, device=device)
    images = [Image.open(RunFiles(run).eval_images / j["file"]).convert("RGB") for j in todo]
    per_image, notes = scorer(images, todo, suite, ScoredRun(action["name"], action["image_dir"],
                                                             model["clip_vision"]), exemplars)
    rows, overall = aggregate(todo, per_image)
    out = RunFiles(run).eval
    result = {"eval_suite": OmegaConf.to_container(suite, resolve=True), "aggregate": overall, "per_prompt": rows,
              "per_image": [{**j, **{k: v[i] for k, v in per_image.items()}} for i, j in enumerate(todo)],
              "notes": notes}
    RunFiles(run).metrics.write_text(json.dumps(result, indent=2))
    write_report(out, run, suite, rows, overall, notes, scorer.description)
    write_figures(out, run, suite, todo, exemplars, overall)
    write_card(RunFiles(run).export, result)
    if str((recorded.get("logger") or {}).get("_target_", "")).endswith("WandbLogger"):
        log_to_wandb(run, recorded, rows, overall, out)
    for name in METRIC_NOTES:
        if name in overall:
            log.info("%-15s %.4f ± %.4f  %s", name, overall[name], overall[name + "_ci95"], METRIC_NOTES[name])
    log.info("Wrote %s/report.md, metrics.json, grid.png, bars.png", out)
    return result
