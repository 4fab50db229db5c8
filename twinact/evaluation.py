"""`evaluate(run_dir, benchmark)`: render a benchmark's actors x prompts x seeds with a trained action and score them.

Generations are cached as PNGs under `<run>/eval/images/`, so a rerun (or a larger seed list) only renders what is
missing. Writes `eval/metrics.json` (per prompt and aggregated, mean and 95% CI over seeds), `eval/report.md`,
`eval/grid.png` (exemplars in the first row, then one row per actor, seeds across) and `eval/bars.png`.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from tqdm import tqdm

from twinact.compare import mean_ci95
from twinact.data import load_exemplars
from twinact.judges import ClipJudge, pose_judge_or_none
from twinact.metrics import EmbeddingSimilarity, PoseActionScore, TextImageSimilarity
from twinact.sampling import make_grid

log = logging.getLogger(__name__)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def jobs(bench: DictConfig, placeholder: str) -> list[dict]:
    """Every (actor, template, seed) of the benchmark with its prompt and cache file name."""
    out = []
    for actor in bench.actors:
        for t, template in enumerate(bench.templates):
            for seed in bench.seeds:
                prompt = template.format(actor=actor.name, action=placeholder)
                out.append({"actor": actor.name, "template": t, "seed": int(seed), "prompt": prompt,
                            "file": f"{slug(actor.name)}_t{t}_s{seed}.png"})
    return out


def render_missing(run: Path, todo: list[dict], bench: DictConfig, resolution: int) -> None:
    """Render the jobs whose image is not cached yet (one pipeline load, batched by seed order)."""
    missing = [j for j in todo if not (run / "eval" / "images" / j["file"]).is_file()]
    if not missing:
        return
    from twinact.export import load_into_pipeline
    from twinact.sampling import base_pipeline

    pipe, _, _ = base_pipeline(run)
    load_into_pipeline(pipe, run / "export")
    pipe.set_progress_bar_config(disable=True)
    (run / "eval" / "images").mkdir(parents=True, exist_ok=True)
    for start in tqdm(range(0, len(missing), bench.batch_size), desc="rendering", unit="batch"):
        chunk = missing[start : start + bench.batch_size]
        gens = [torch.Generator().manual_seed(j["seed"]) for j in chunk]
        images = pipe([j["prompt"] for j in chunk], generator=gens, num_inference_steps=bench.steps,
                      guidance_scale=bench.guidance_scale, height=resolution, width=resolution).images
        for j, im in zip(chunk, images):
            im.save(run / "eval" / "images" / j["file"])


def score(run: Path, todo: list[dict], bench: DictConfig, exemplars: list[Image.Image], judge: ClipJudge,
          pose) -> dict[str, list[float]]:
    """Per-image scores for every metric that can be computed here."""
    images = [Image.open(run / "eval" / "images" / j["file"]).convert("RGB") for j in todo]
    img_emb = judge.image_embeddings(images)
    per_image = {
        "s_action_embed": EmbeddingSimilarity(judge.image_embeddings(exemplars)).scores(img_emb),
        "s_actor_text": TextImageSimilarity.scores(img_emb, judge.text_embeddings(
            [bench.actor_text.format(actor=j["actor"]) for j in todo])),
        "leakage_text": TextImageSimilarity.scores(img_emb, judge.text_embeddings([bench.exemplar_actor] * len(todo))),
    }
    references = {a.name: EmbeddingSimilarity(judge.image_embeddings(
        [e.image for e in load_exemplars(a.images, images[0].width)])) for a in bench.actors if a.get("images")}
    if references:  # customized actors: image-image similarity to their reference photos
        per_image["s_actor_image"] = torch.tensor([
            float(references[j["actor"]].scores(img_emb[i:i + 1])) if j["actor"] in references else float("nan")
            for i, j in enumerate(todo)])
    if pose is not None:
        metric = PoseActionScore(pose.features(exemplars))
        per_image["s_action_pose"] = metric.scores(pose.features(images))
        per_image["detection_rate"] = (~torch.isnan(per_image["s_action_pose"])).float()
    return {k: [float(x) for x in v] for k, v in per_image.items()}


def score_stickworld(run: Path, todo: list[dict], bench: DictConfig, cfg: DictConfig) -> dict[str, list[float]]:
    """Per-image StickWorld scores: pose vs the true action on each requested actor, actor probabilities."""
    from twinact.errors import TwinActError
    from twinact.stickworld import ACTIONS, HELDOUT_ACTIONS
    from twinact.stickworld.exemplars import load_meta
    from twinact.stickworld.scoring import score_images

    if cfg.action.name not in ACTIONS:
        raise TwinActError(f"benchmark=stickworld scores StickWorld actions; {cfg.action.name!r} is not one "
                           f"(use action=stickworld action.name=<one of {', '.join(HELDOUT_ACTIONS)}>).")
    ids = {a.name: a.id for a in bench.actors}
    images = [Image.open(run / "eval" / "images" / j["file"]).convert("RGB") for j in todo]
    exemplar_actors = load_meta(cfg.action.image_dir).get("actors", [])
    scores = score_images(images, [ids[j["actor"]] for j in todo], cfg.action.name, exemplar_actors)
    keys = ("s_action", "action_correct", "s_actor", "leakage", "actor_correct")
    return {k: [float(x) for x in scores[k]] for k in keys if k in scores}


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


METRIC_NOTES = {
    "s_action": "S_Action: StickWorld pose similarity to the true action, exp(-d^2/2k^2) (higher better)",
    "s_actor": "S_Actor: judge probability of the requested actor (higher better)",
    "leakage": "Leakage: judge probability of the exemplars' actor(s) (lower better)",
    "actor_correct": "fraction of generations whose most probable actor is the requested one",
    "action_correct": "fraction of generations whose pose is nearer the true pose than any other action's",
    "s_action_pose": "S_Action (pose): keypoint similarity to the exemplars, detected images only (higher better)",
    "detection_rate": "fraction of generations where the pose judge found a person",
    "s_action_embed": "S_Action (embedding): CLIP image cosine to the exemplars (higher better)",
    "s_actor_text": "S_Actor (text): CLIP cosine to the requested actor phrase (higher better)",
    "s_actor_image": "S_Actor (image): CLIP cosine to the customized actor's photos (higher better)",
    "leakage_text": "Leakage: CLIP cosine to the exemplar actor's description (lower better)",
}


def write_report(out: Path, run: Path, bench: DictConfig, rows: list[dict], overall: dict, notes: list[str],
                 judge: str) -> None:
    names = [m for m in METRIC_NOTES if m in overall]
    lines = [f"# Evaluation of {run.name} on benchmark `{bench.name}`", "",
             f"{len(bench.actors)} actors x {len(bench.templates)} prompts x {len(bench.seeds)} seeds; "
             f"judge: {judge}.", "", "| metric | mean | 95% CI | meaning |", "| --- | --- | --- | --- |"]
    lines += [f"| {m} | {overall[m]:.4f} | ± {overall[m + '_ci95']:.4f} | {METRIC_NOTES[m]} |" for m in names]
    lines += ["", "| actor | prompt | " + " | ".join(names) + " |", "|" + " --- |" * (len(names) + 2)]
    for r in rows:
        cells = [f"{r[m]:.3f}" if m in r else "n/a" for m in names]
        lines.append(f"| {r['actor']} | {r['prompt']} | " + " | ".join(cells) + " |")
    lines += [""] + [f"- {n}" for n in notes]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def write_figures(out: Path, run: Path, bench: DictConfig, todo: list[dict], exemplars: list[Image.Image],
                  overall: dict) -> None:
    from twinact.plots import plt

    seeds = list(bench.seeds)
    size = Image.open(run / "eval" / "images" / todo[0]["file"]).size
    first = [im.resize(size) for im in exemplars[: len(seeds)]]
    first += [Image.new("RGB", size, "white")] * (len(seeds) - len(first))
    rows = [Image.open(run / "eval" / "images" / j["file"]).convert("RGB") for a in bench.actors
            for j in todo if j["actor"] == a.name and j["template"] == 0]
    make_grid(first + rows, cols=len(seeds)).save(out / "grid.png")
    names = [m for m in METRIC_NOTES if m in overall]
    fig, ax = plt.subplots(figsize=(1.4 * len(names) + 2, 4))
    ax.bar(names, [overall[m] for m in names], yerr=[overall[m + "_ci95"] for m in names], capsize=4)
    ax.set(ylabel="score", title=f"{run.name}: {bench.name}")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(out / "bars.png", dpi=110)
    plt.close(fig)


def log_to_wandb(run: Path, cfg: DictConfig, rows: list[dict], overall: dict, out: Path) -> None:
    """Same numbers and pictures to W&B as an `eval` job of the run's group, when the run trained with W&B."""
    import wandb

    name = cfg.get("run_name", run.name)
    with wandb.init(project=cfg.logger.get("project", "twinact"), group=cfg.get("run_group"), job_type="eval",
                    name=f"{name}-eval", dir=str(out), config=OmegaConf.to_container(cfg, resolve=True)) as wb:
        wb.log({**{f"eval/{k}": v for k, v in overall.items()},
                "eval/per_prompt": wandb.Table(columns=list(rows[0]), data=[list(r.values()) for r in rows]),
                "eval/grid": wandb.Image(str(out / "grid.png")), "eval/bars": wandb.Image(str(out / "bars.png"))})


def evaluate(run_dir: str | Path, bench: DictConfig, *, pose: bool = True, device: str = "cpu") -> dict:
    """Render what is missing, score everything, write the report; returns the metrics.json content."""
    from twinact.errors import TwinActError

    run = Path(run_dir)
    if not (run / "export" / "twinact.json").is_file():
        raise TwinActError(f"{run} is not a finished twinact run (no export/). Pass run=<run dir>.")
    cfg = OmegaConf.load(run / "config.yaml")
    placeholder = " ".join(json.loads((run / "export" / "twinact.json").read_text())["tokens"])
    todo = jobs(bench, placeholder)
    render_missing(run, todo, bench, cfg.data.resolution)
    exemplars = [e.image for e in load_exemplars(cfg.action.image_dir, cfg.data.resolution)]
    notes = []
    if bench.get("judge") == "stickworld":
        judge = "StickWorld judges (twinact/data/stickworld/judges.safetensors)"
        per_image = score_stickworld(run, todo, bench, cfg)
    else:
        pose_judge, why_not = pose_judge_or_none(pose)
        clip = cfg.model.clip_vision if bench.clip == "auto" else bench.clip
        per_image = score(run, todo, bench, exemplars, ClipJudge(clip, device), pose_judge)
        judge = f"CLIP `{clip}`"
        notes += [f"pose metrics {why_not}"] if why_not else []
        if clip == "tiny":
            notes.append("CLIP judge is the tiny random model: the numbers test the pipeline, they mean nothing.")
    rows, overall = aggregate(todo, per_image)
    out = run / "eval"
    result = {"benchmark": OmegaConf.to_container(bench, resolve=True), "aggregate": overall, "per_prompt": rows,
              "per_image": [{**j, **{k: v[i] for k, v in per_image.items()}} for i, j in enumerate(todo)],
              "notes": notes}
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    write_report(out, run, bench, rows, overall, notes, judge)
    write_figures(out, run, bench, todo, exemplars, overall)
    if cfg.get("logger") and str(cfg.logger.get("_target_", "")).endswith("WandbLogger"):
        log_to_wandb(run, cfg, rows, overall, out)
    for name in METRIC_NOTES:
        if name in overall:
            log.info("%-15s %.4f ± %.4f  %s", name, overall[name], overall[name + "_ci95"], METRIC_NOTES[name])
    log.info("Wrote %s/report.md, metrics.json, grid.png, bars.png", out)
    return result
