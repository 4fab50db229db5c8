"""The StickWorld CLIP: the shipped folder loads as any CLIP does, its gates hold, training resumes exactly, and the
quality metrics are computed in range."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import CLIPImageProcessor, CLIPModel, CLIPVisionModel, CLIPVisionModelWithProjection

from stickworld.gates import clip_quality
from stickworld.networks import clip_model
from stickworld.pretraining import train_clip
from stickworld.world.actions import ACTIONS
from stickworld.world.actors import ACTORS
from stickworld.world.drawing import draw
from twinact.paths import package_path

SHIPPED = package_path("pkg://stickworld/clip")
TINY = ["--size", "tiny", "--steps", "4", "--batch", "6", "--ckpt-every", "2", "--log-every", "1", "--warmup", "2",
        "--ramp", "3", "--probe-every", "0"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_shipped_folder_loads_as_a_clip():
    for cls in (CLIPModel, CLIPVisionModel, CLIPVisionModelWithProjection):
        model = cls.from_pretrained(str(SHIPPED))
        assert model.dtype == torch.float32
    vision = CLIPVisionModelWithProjection.from_pretrained(str(SHIPPED))
    assert vision.config.image_size == clip_model.IMAGE_SIZE
    full = CLIPModel.from_pretrained(str(SHIPPED))
    assert torch.equal(vision.visual_projection.weight, full.visual_projection.weight)
    assert full.config.text_config.vocab_size == 49408
    processor = CLIPImageProcessor.from_pretrained(str(SHIPPED))
    image, _ = draw("fox", "backflip", 64, np.random.default_rng(0))
    got = processor(images=[image], return_tensors="pt").pixel_values
    assert got.shape == (1, 3, 64, 64)
    assert torch.allclose(got, clip_model.pixels([image]), atol=1e-5)  # what training fed the model


def test_twinact_uses_the_shipped_folder_unchanged():
    from twinact.eval.scorers import ClipJudge
    from twinact.space.action_encoder import ClipImageEncoder

    images = [draw(a, "backflip", 64, np.random.default_rng(i))[0] for i, a in enumerate(("fox", "robot"))]
    encoder = ClipImageEncoder(str(SHIPPED))
    pooled = encoder.encode(images)
    assert pooled.shape == (2, encoder.dim)
    _, ours = clip_model.embed_images(clip_model.load(SHIPPED)[0], images)
    assert torch.allclose(pooled, ours, atol=1e-4)  # its resize to 64 px and CLIP normalization are ours
    judge = ClipJudge(str(SHIPPED))
    text = clip_model.normalize(judge.text_embeddings(["a photo of a fox", "a photo of a robot"]))
    image = clip_model.normalize(judge.image_embeddings(images))
    assert (image @ text.T).argmax(1).tolist() == [0, 1]


def test_model_stickworld_trains_and_encodes_with_the_stickworld_clip():
    from conftest import compose
    from hydra.utils import instantiate

    from twinact.space.action_encoder import ClipImageEncoder, pil_to_tensor

    cfg = compose(["model=stickworld", "action_encoder=clip_vision"])
    assert cfg.loss.similarity.encoder == cfg.action_encoder.encoder.pretrained == "pkg://stickworld/clip"
    encoder = instantiate(cfg.action_encoder.encoder)
    assert isinstance(encoder, ClipImageEncoder) and encoder.dim == 128
    # What the similarity loss compares (pooled features of pixels in [-1, 1]) tells the action, not the actor:
    # the random tiny CLIP it replaces scored these two pairs alike (0.881 vs 0.889).
    rng = np.random.default_rng(2)
    shots = [draw(actor, action, 64, rng)[0] for actor, action in
             (("robot", "backflip"), ("fox", "backflip"), ("robot", "kneeling"))]
    f = torch.nn.functional.normalize(encoder.embed_pixels(torch.stack([pil_to_tensor(im) for im in shots])), dim=-1)
    assert float(f[0] @ f[1]) > float(f[0] @ f[2]) + 0.2


def test_committed_quality_passes_the_gates():
    record = json.loads((SHIPPED / "quality.json").read_text())
    assert set(record) == set(clip_quality.KEYS)
    assert record["gates"] == clip_quality.gate(record)  # recomputed from the recorded metrics
    assert {k: (g["op"], g["bound"]) for k, g in record["gates"].items()} == clip_quality.GATES
    assert record["passed"] is True
    assert record["eval"]["actions"] == 57 and record["eval"]["actors"] == 18
    train = json.loads((SHIPPED / "train.json").read_text())
    assert train["command"].startswith("python -m stickworld.pretraining.train_clip")
    assert train["steps"] == train["settings"]["steps"]


def test_a_caption_is_true_of_every_image_it_describes():
    fox, robot = "fox", "robot"
    pose_a, pose_b = ("front", 1.0), ("side", 2.0)
    shown = [train_clip.Facts(fox, pose_a, "beach"), train_clip.Facts(robot, pose_a, "snow"),
             train_clip.Facts(fox, pose_b, "snow")]
    said = [train_clip.Facts(fox, None, None), train_clip.Facts(None, pose_a, None),
            train_clip.Facts(fox, pose_b, "snow")]
    assert train_clip.positives(shown, said).tolist() == [[True, True, False], [False, True, False],
                                                          [True, False, True]]


def test_a_batch_pairs_every_pose_with_another_actor():
    b = train_clip.batch(seed=0, step=7, size=8, actors=3, canonical=0.5)
    assert b["pixels"].shape == (8, 3, 64, 64) and b["joints"].shape == (8, 14, 2) and len(b["captions"]) == 8
    assert b["pairs"].diagonal().all()  # a caption is true of its own image
    assert b["same_pose"].sum(1).min() >= 1 and not b["same_pose"].diagonal().any()
    again = train_clip.batch(seed=0, step=7, size=8, actors=3, canonical=0.5)
    assert torch.equal(b["pixels"], again["pixels"]) and b["captions"] == again["captions"]  # (seed, step) alone


def test_every_caption_word_has_an_embedding():
    model, tok = clip_model.build("tiny")
    nonzero = set(torch.nonzero(model.text_model.embeddings.token_embedding.weight.abs().sum(1)).flatten().tolist())
    assert nonzero == set(clip_model.vocabulary_ids(tok))
    captions = train_clip.batch(seed=1, step=0, size=64)["captions"]
    prompts = [clip_model.ACTION_PROMPT.format(action="doing a backflip"),
               clip_model.ACTOR_PROMPT.format(actor="a fox")]
    for text in captions + prompts:
        assert set(tok(text).input_ids) <= nonzero, text


def test_training_resumes_bitwise_exactly(tmp_path):
    straight = train_clip.main(["--work", str(tmp_path / "a"), "--out", str(tmp_path / "out_a")] + TINY)
    # --stop-after 0 stops at the first checkpoint (step 2); the same command then resumes to step 4.
    split = ["--work", str(tmp_path / "b"), "--out", str(tmp_path / "out_b")] + TINY
    train_clip.main(split + ["--stop-after", "0"])
    assert not (tmp_path / "out_b").exists()
    resumed = train_clip.main(split)
    a, b = load_file(str(straight / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    record = json.loads((resumed / "train.json").read_text())
    assert record["steps"] == 4 and "--stop-after" not in record["command"]
    with pytest.raises(SystemExit, match="already exists"):  # a finished --out is never overwritten silently
        train_clip.main(split)
    with pytest.raises(SystemExit, match="other settings"):
        train_clip.main(["--work", str(tmp_path / "b"), "--out", str(tmp_path / "out_c"), *TINY, "--lr", "1e-4"])


def test_quality_metrics_of_a_random_model_are_in_range(tmp_path):
    model, _ = clip_model.build("tiny", seed=3)
    clip_model.save(model, tmp_path)
    record = clip_quality.main(["--model", str(tmp_path), "--actors", "fox", "robot", "penguin",
                                "--actions", "standing", "lunging", "backflip", "dabbing"])
    assert set(record) == set(clip_quality.KEYS)
    assert record == json.loads((tmp_path / "quality.json").read_text())
    assert record["eval"]["images"] == 12
    for key in ("actor_top1", "action_top1", "action_top1_known", "action_top1_heldout", "action_top1_given_actor"):
        assert 0.0 <= record["retrieval"][key] <= 1.0
    assert -2.0 <= record["margin"] <= 2.0 and -2.0 <= record["margin_pooled"] <= 2.0
    assert record["passed"] == all(g["passed"] for g in record["gates"].values())
    # A subset draws exactly the images the full set does (pair k from seed [EVAL_SEED, k]), so readings of a
    # subset are readings of part of the full set.
    sub = clip_quality.eval_set(actors=["fox"], actions=["backflip"])
    k = list(ACTORS).index("fox") * len(ACTIONS) + list(ACTIONS).index("backflip")
    image, _ = draw("fox", "backflip", 64, np.random.default_rng([clip_quality.EVAL_SEED, k]))
    assert np.array_equal(np.asarray(sub[0]["image"]), np.asarray(image))
