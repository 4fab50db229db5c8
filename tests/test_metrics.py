"""Metrics with known answers, and the evaluation command end to end on the tiny model."""

from __future__ import annotations

import json

import pytest
import torch

from twinact.eval.metrics import EmbeddingSimilarity, PoseActionScore, TextImageSimilarity


def _pose(seed: int) -> torch.Tensor:
    """A plausible 99-d pose feature: (dx*v, dy*v, v) per landmark with full visibility."""
    xy = torch.randn(33, 2, generator=torch.Generator().manual_seed(seed))
    return torch.cat([xy, torch.ones(33, 1)], dim=1).reshape(-1)


def test_pose_score_identical_is_one_shuffled_is_low_and_undetected_is_counted():
    ref = _pose(0)
    metric = PoseActionScore(ref[None])
    shuffled = ref.view(33, 3)[torch.randperm(33, generator=torch.Generator().manual_seed(1))].reshape(-1)
    scores = metric.scores(torch.stack([ref, shuffled]))
    assert scores[0] == pytest.approx(1.0) and scores[1] < 0.2
    metric.update(torch.stack([ref, torch.full((99,), float("nan"))]))
    out = metric.compute()
    assert out["s_action_pose"] == pytest.approx(1.0) and out["detection_rate"] == pytest.approx(0.5)


def test_pose_score_falls_with_distance():
    ref = _pose(0)
    near, far = ref.clone(), ref.clone()
    near.view(33, 3)[:, :2] += 0.1
    far.view(33, 3)[:, :2] += 0.6
    s = PoseActionScore(ref[None]).scores(torch.stack([near, far]))
    assert 1 > s[0] > s[1] > 0


def test_embedding_and_text_similarity_known_answers():
    e = torch.eye(4)
    sim = EmbeddingSimilarity(e[:1])
    sim.update(torch.stack([e[0] * 3, e[1]]))
    assert sim.compute() == pytest.approx(0.5)  # (1 + 0) / 2, scale-free
    txt = TextImageSimilarity()
    txt.update(torch.stack([e[0], e[0]]), torch.stack([e[0], -e[0]]))
    assert txt.compute() == pytest.approx(0.0)


def test_pose_judge_on_real_photos():
    """The astronaut scores ~1 against herself and clearly less against the cameraman's different pose."""
    pytest.importorskip("mediapipe")
    from PIL import Image
    from skimage import data

    from twinact.errors import TwinActError

    try:
        from twinact.eval.scorers import PoseJudge

        judge = PoseJudge()
    except TwinActError as err:
        pytest.skip(str(err))
    astronaut = Image.fromarray(data.astronaut())
    cameraman = Image.fromarray(data.camera()).convert("RGB")
    feats = judge.features([astronaut, cameraman])
    metric = PoseActionScore(feats[:1])
    scores = metric.scores(feats)
    if torch.isnan(scores[1]):
        pytest.skip("no person detected in the cameraman photo")
    assert scores[0] == pytest.approx(1.0, abs=1e-5) and scores[1] < scores[0] - 0.05


def test_evaluate_writes_report_and_caches_images(tiny_cfg, monkeypatch):
    from conftest import compose

    from twinact.eval import evaluation
    from twinact.train.training import train

    run = train(tiny_cfg(stage1=1, stage2=1)).run_dir
    suite = compose(["eval_suite.scorer.pose=false"], config_name="evaluate").eval_suite
    suite.steps, suite.seeds = 2, [0]
    result = evaluation.evaluate(run, suite)
    out = run / "eval"
    for name in ("metrics.json", "report.md", "grid.png", "bars.png"):
        assert (out / name).is_file(), name
    assert len(list((out / "images").glob("*.png"))) == 3 * 2 * 1
    assert {"s_action_embed", "s_actor_text", "leakage_text"} <= set(result["aggregate"])
    assert "pose metrics disabled" in (out / "report.md").read_text()
    assert json.loads((out / "metrics.json").read_text())["per_prompt"][0]["actor"] == "polar bear"
    card = (run / "export" / "README.md").read_text()  # the model card now carries the evaluation table
    assert "Evaluation suite `demo`" in card and f"| s_actor_text | {result['aggregate']['s_actor_text']:.4f} |" in card

    calls = []
    real = evaluation.base_pipeline
    monkeypatch.setattr(evaluation, "base_pipeline", lambda r: calls.append(r) or real(r))
    evaluation.evaluate(run, suite)
    assert calls == []  # everything cached: nothing rendered again
    suite.seeds = [0, 1]
    evaluation.evaluate(run, suite)
    assert len(calls) == 1 and len(list((out / "images").glob("*.png"))) == 3 * 2 * 2
    # A cached image is reused only for the same prompt and sampler settings: other steps or another template text
    # at the same template index render anew, and the report never labels an old image with a new prompt.
    suite.steps = 3
    evaluation.evaluate(run, suite)
    suite.templates = ["a {actor} {action} on the moon", suite.templates[1]]
    evaluation.evaluate(run, suite)
    assert len(calls) == 3 and len(list((out / "images").glob("*.png"))) == 3 * 2 * 2 * 2 + 3 * 2


def test_evaluate_at_end_of_training(tiny_cfg):
    from twinact.train.training import train

    run = train(tiny_cfg("eval=true", "eval_suite.steps=2", "eval_suite.seeds=[0]", stage1=1, stage2=1)).run_dir
    assert (run / "eval" / "report.md").is_file()


def test_evaluation_of_a_wandb_run_is_logged_as_an_eval_job(tiny_cfg, monkeypatch, tmp_path):
    from conftest import compose

    from twinact.eval.evaluation import evaluate
    from twinact.train.training import train

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    from twinact.train.fit import wandb_run_id

    overrides = ["logger=wandb", "run_group=g", "eval=true", "eval_suite.steps=2", "eval_suite.seeds=[0]",
                 "eval_suite.scorer.pose=false", "sample_at_end=true", "callbacks.sample_steps=2",
                 "callbacks.samples_num_images=1"]
    run = train(tiny_cfg(*overrides, stage1=1, stage2=0)).run_dir
    training = list((run / "wandb").glob("offline-run-*"))
    assert [r.name.rsplit("-", 1)[1] for r in training] == [wandb_run_id(run)]
    assert list(training[0].glob("files/media/images/samples_final*.png")), "final samples not logged to W&B"
    suite = compose(["eval_suite.scorer.pose=false"], config_name="evaluate").eval_suite
    suite.steps, suite.seeds = 2, [0, 1]
    evaluate(run, suite)  # again, standalone, with one more seed: the same evaluation run continues
    evals = {r.name.rsplit("-", 1)[1] for r in (run / "eval" / "wandb").glob("offline-run-*")}
    assert len(evals) == 1 and wandb_run_id(run) not in evals, evals


def test_customized_actor_gets_image_similarity(tiny_cfg):
    """An actor with reference photos (`images:`) is also scored image-to-image (S_Actor, image)."""
    from conftest import compose

    from twinact.eval.evaluation import evaluate
    from twinact.train.training import train

    run = train(tiny_cfg(stage1=1, stage2=0)).run_dir
    suite = compose(["eval_suite.scorer.pose=false"], config_name="evaluate").eval_suite
    suite.steps, suite.seeds = 2, [0]
    from omegaconf import open_dict

    # StickWorld drawings stand in for a customized actor's photos
    with open_dict(suite):
        suite.actors[0].images = "pkg://stickworld/exemplars/three_point_landing"
    result = evaluate(run, suite)
    assert "s_actor_image" in result["aggregate"]
    scored = [row for row in result["per_image"] if row["s_actor_image"] == row["s_actor_image"]]  # not NaN
    assert {row["actor"] for row in scored} == {suite.actors[0].name}
