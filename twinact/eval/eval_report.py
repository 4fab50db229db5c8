"""What an evaluation writes beside its numbers: report.md, grid.png, bars.png, and the same to W&B."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from omegaconf import DictConfig
from PIL import Image

from twinact.plots import plt
from twinact.release.sampling import make_grid
from twinact.runs.files import RunFiles

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


def write_report(out: Path, run: Path, suite: DictConfig, rows: list[dict], overall: dict, notes: list[str],
                 judge: str) -> None:
    names = [m for m in METRIC_NOTES if m in overall]
    lines = [f"# Evaluation of {run.name} on evaluation suite `{suite.name}`", "",
             f"{len(suite.actors)} actors x {len(suite.templates)} prompts x {len(suite.seeds)} seeds; "
             f"judge: {judge}.", "", "| metric | mean | 95% CI | meaning |", "| --- | --- | --- | --- |"]
    lines += [f"| {m} | {overall[m]:.4f} | ± {overall[m + '_ci95']:.4f} | {METRIC_NOTES[m]} |" for m in names]
    lines += ["", "| actor | prompt | " + " | ".join(names) + " |", "|" + " --- |" * (len(names) + 2)]
    for r in rows:
        cells = [f"{r[m]:.3f}" if m in r else "n/a" for m in names]
        lines.append(f"| {r['actor']} | {r['prompt']} | " + " | ".join(cells) + " |")
    lines += [""] + [f"- {n}" for n in notes]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def write_figures(out: Path, run: Path, suite: DictConfig, todo: list[dict], exemplars: list[Image.Image],
                  overall: dict) -> None:
    seeds = list(suite.seeds)
    size = Image.open(RunFiles(run).eval_images / todo[0]["file"]).size
    first = [im.resize(size) for im in exemplars[: len(seeds)]]
    first += [Image.new("RGB", size, "white")] * (len(seeds) - len(first))
    rows = [Image.open(RunFiles(run).eval_images / j["file"]).convert("RGB") for a in suite.actors
            for j in todo if j["actor"] == a.name and j["template"] == 0]
    make_grid(first + rows, cols=len(seeds)).save(out / "grid.png")
    names = [m for m in METRIC_NOTES if m in overall]
    fig, ax = plt.subplots(figsize=(1.4 * len(names) + 2, 4))
    ax.bar(names, [overall[m] for m in names], yerr=[overall[m + "_ci95"] for m in names], capsize=4)
    ax.set(ylabel="score", title=f"{run.name}: {suite.name}")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(out / "bars.png", dpi=110)
    plt.close(fig)


def log_to_wandb(run: Path, config: dict, rows: list[dict], overall: dict, out: Path) -> None:
    """Same numbers and pictures to W&B as an `eval` job of the run's group, when the run trained with W&B.

    Args:
        config: the run's recorded config (resolved, plain): the W&B run's config, and its logger's project and tags.
    """
    import wandb

    meta = json.loads(RunFiles(run).meta.read_text()) if RunFiles(run).meta.is_file() else {}
    name = meta.get("wandb_name") or config.get("run_name", run.name)  # the training run's W&B name
    logger = config.get("logger") or {}
    # A stable id, so evaluating again (more seeds, say) continues this evaluation's run instead of adding one.
    run_id = hashlib.sha256(f"{run.resolve()}:eval".encode()).hexdigest()[:16]
    with wandb.init(project=logger.get("project", "twinact"), group=config.get("run_group"), job_type="eval",
                    name=f"{name}-eval", id=run_id, resume="allow", dir=str(out), tags=list(logger.get("tags") or []),
                    config=config) as wb:
        wb.log({**{f"eval/{k}": v for k, v in overall.items()},
                "eval/per_prompt": wandb.Table(columns=list(rows[0]), data=[list(r.values()) for r in rows]),
                "eval/grid": wandb.Image(str(out / "grid.png")), "eval/bars": wandb.Image(str(out / "bars.png"))})
