"""The StickWorld diagnosis tools: the judges' reading drawn over generations, learned-token norms, VAE latents."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from stickworld.gates import diagnose
from stickworld.protocol.scoring import canonical, normalize
from stickworld.world.drawing import draw
from twinact.paths import package_path


def test_overlay_fits_the_true_pose_onto_the_judged_joints():
    """Drawn from a clean drawing's own joints, the green true pose lands on the red dots (same centre and radius)."""
    image, joints = draw("robot", "arms_out")
    judged = joints.astype(np.float32)
    tile = diagnose.overlay(image, judged, canonical("robot", "arms_out"), "arms_out")
    assert tile.size == (4 * image.width, 4 * image.height)
    arr = np.asarray(tile)
    for x, y in (judged * tile.width).astype(int):  # every judged joint is marked in red
        patch = arr[max(0, y - 1):y + 2, max(0, x - 1):x + 2].reshape(-1, 3)
        assert ((patch[:, 0] > 200) & (patch[:, 1] < 60)).any()
    # canonical() is normalize(true joints); a clean drawing's joints normalise to (nearly) the same pose
    assert np.abs(normalize(judged) - canonical("robot", "arms_out")).max() < 0.25


def test_joints_sheet_reads_generations_of_the_shipped_model():
    model = str(package_path("pkg://stickworld/base"))
    sheet, rows = diagnose.joints_sheet(model, "robot", ["standing", "squatting"], steps=3)
    assert isinstance(sheet, Image.Image) and sheet.size == (2 * 256, 256)
    assert [r["action"] for r in rows] == ["standing", "squatting"]
    assert all(r["distance"] >= 0 and isinstance(r["nearest"], str) for r in rows)


def test_token_norms_report_a_runs_vectors_against_the_vocabulary(tiny_cfg, capsys):
    from twinact.train.training import train

    run = train(tiny_cfg("method.max_norm=vocab", stage1=1, stage2=0)).run_dir
    diagnose.main(["tokens", "--run", str(run)])
    report = json.loads(capsys.readouterr().out)
    enc = report["encoders"][0]
    assert len(enc["placeholders"]) == 3 and 0 < enc["vocab_mean"] <= enc["vocab_max"]
    assert max(enc["placeholders"]) <= enc["vocab_max"] + 1e-3  # capped at the longest row


def test_released_init_starts_stickworld_twinact_tokens_beyond_the_vocabulary(tmp_path):
    """experiments/stickworld's finding, and why experiment=stickworld sets init_scale and max_norm: with the
    released code's init every placeholder starts longer than the longest vocabulary row; with both set, none does."""
    from tests.conftest import compose, model_of, module_of
    from twinact.space.placeholder import vocabulary_norm

    def initial_norms(*overrides):
        cfg = compose(["experiment=stickworld", f"cache_dir={tmp_path}", *overrides])
        comps = model_of(cfg)
        limit = vocabulary_norm(comps.text_encoder.get_input_embeddings().weight)
        torch.manual_seed(cfg.seed)  # as train() does before building: the MLP init is a function of the seed
        module = module_of(cfg, comps)
        return module.placeholder_embeddings()[0].norm(dim=-1), limit

    released, limit = initial_norms("action_space.init_scale=1.0", "method.max_norm=null")
    assert (released > limit).all()
    capped, limit = initial_norms()
    assert (capped <= limit * (1 + 1e-5)).all()


def test_latent_report_shows_why_stickworld_trains_on_the_posterior_mean(capsys):
    """The shipped VAE decodes its posterior mean (pretraining's latents) cleanly and a posterior sample badly: its
    std is the KL prior's, larger than the means' spread (conf/model/stickworld.yaml sets latents: mean)."""
    diagnose.main(["latents", "--model", str(package_path("pkg://stickworld/base")), "--action", "backflip"])
    report = json.loads(capsys.readouterr().out)
    assert report["images"] >= 4 and report["posterior_std"] > report["mean_spread"]
    assert report["recon_error"]["sample"] > 4 * report["recon_error"]["mean"]


def test_readings_names_what_an_evaluated_run_drew(tmp_path, capsys):
    """A run whose 'generations' are clean drawings of kneeling, asked for three_point_landing: read as kneeling."""
    run = tmp_path / "run"
    (run / "eval" / "images").mkdir(parents=True)
    (run / "config.yaml").write_text("action:\n  name: three_point_landing\n")
    rng = np.random.default_rng(0)
    shots = []
    for i, actor in enumerate(["robot", "fox", "robot"]):
        draw(actor, "kneeling", 64, rng)[0].save(run / "eval" / "images" / f"{i}.png")
        shots.append({"actor": f"a {actor}", "file": f"{i}.png"})
    metrics = {"eval_suite": {"actors": [{"name": "a robot", "id": "robot"}, {"name": "a fox", "id": "fox"}]},
               "per_image": shots}
    (run / "eval" / "metrics.json").write_text(json.dumps(metrics))
    diagnose.main(["readings", "--run", str(run)])
    report = json.loads(capsys.readouterr().out)
    assert report["nearest"] == {"kneeling": 3} and report["median_distance"] > 0.24
