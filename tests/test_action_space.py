"""Tests for the common action space (twinact.action_space) on the tiny model's embedding table."""

import json

import pytest
import torch
from PIL import Image

import twinact.action_space as spaces
from twinact.action_space import GROUPS, build_action_space, load_phrases, space_key
from twinact.errors import TwinActError


@pytest.fixture(scope="module")
def model(tiny_components):
    comps = tiny_components()
    return comps.tokenizer, comps.text_encoder.get_input_embeddings().weight.detach().clone(), comps.identity


@pytest.fixture(scope="module")
def phrases():
    return load_phrases()


def build(model, phrases, **kw):
    tokenizer, table, identity = model
    kw.setdefault("max_components", 8)
    kw.setdefault("cache_root", None)
    return build_action_space(phrases, tokenizer, table, identity, **kw)


def assert_orthonormal(rows: torch.Tensor) -> None:
    gram = rows.double() @ rows.double().T
    assert torch.allclose(gram, torch.eye(rows.shape[0], dtype=torch.float64), atol=1e-5)


def test_packaged_phrase_list_covers_all_groups(phrases):
    assert len({p for _, p in phrases}) >= 800
    assert {g for g, _ in phrases} == set(GROUPS)
    assert all(p and p == p.strip() for _, p in phrases)


def test_per_slot_bases_are_orthonormal(model, phrases):
    space = build(model, phrases, slots=3, mode="per_slot")
    assert space.basis.shape == (3, 8, model[1].shape[1])
    for slot in range(3):
        assert_orthonormal(space.basis[slot])
    # slots are fitted on different word pieces, so their bases differ
    assert not torch.allclose(space.basis[0], space.basis[1])


def test_pooled_mode_shares_one_basis(model, phrases):
    space = build(model, phrases, slots=3, mode="pooled")
    assert_orthonormal(space.basis[0])
    for slot in (1, 2):
        assert torch.equal(space.basis[slot], space.basis[0])
        assert torch.equal(space.mean[slot], space.mean[0])


def test_unknown_mode_raises(model, phrases):
    with pytest.raises(TwinActError, match="mode"):
        build(model, phrases, mode="per_token")


@pytest.mark.parametrize("max_components", [1, 5, 1000])
def test_num_components_bounded_by_setting_and_embedding_dim(model, phrases, max_components):
    space = build(model, phrases, slots=2, max_components=max_components)
    dim = model[1].shape[1]
    assert space.num_components == space.basis.shape[1] == space.meta["num_components"]
    assert space.num_components <= max_components
    assert space.num_components <= dim
    assert space.explained_variance_ratio.shape == (2, space.num_components)
    if max_components >= dim:
        assert space.num_components == dim  # plenty of distinct phrases: full rank of the 32-d table


def test_cache_is_reused_without_refitting(model, phrases, tmp_path, monkeypatch):
    first = build(model, phrases, cache_root=tmp_path)

    def no_pca(*args, **kwargs):
        raise AssertionError("fit_pca called although the space is cached")

    monkeypatch.setattr(spaces, "fit_pca", no_pca)
    second = build(model, phrases, cache_root=tmp_path)
    assert torch.equal(second.basis, first.basis)
    assert torch.equal(second.mean, first.mean)
    assert torch.equal(second.explained_variance_ratio, first.explained_variance_ratio)
    assert second.fingerprint() == first.fingerprint()


def test_changed_table_is_not_served_from_stale_cache(model, phrases, tmp_path, monkeypatch):
    tokenizer, table, identity = model
    build(model, phrases, cache_root=tmp_path)
    changed = table.clone()
    changed[tokenizer("looking", add_special_tokens=False).input_ids[0], 0] += 1e-3

    monkeypatch.setattr(spaces, "fit_pca", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("refit")))
    with pytest.raises(RuntimeError, match="refit"):
        build((tokenizer, changed, identity), phrases, cache_root=tmp_path)


def test_cache_key_depends_on_table_settings_phrases_and_tokenizer(model, phrases):
    tokenizer, table, identity = model
    settings = {"slots": 3, "mode": "per_slot", "max_components": 8, "dedupe": True, "version": 1}
    base = space_key(phrases, tokenizer, table, identity, settings)
    assert space_key(phrases, tokenizer, table.clone(), identity, dict(settings)) == base

    changed = table.clone()
    changed[-1, -1] += 1e-4
    assert space_key(phrases, tokenizer, changed, identity, settings) != base
    for name, value in [("slots", 2), ("mode", "pooled"), ("max_components", 9), ("dedupe", False)]:
        assert space_key(phrases, tokenizer, table, identity, {**settings, name: value}) != base, name
    assert space_key(phrases[:-1], tokenizer, table, identity, settings) != base

    class Shifted:  # same vocabulary size, different word pieces
        def __call__(self, text, add_special_tokens=False):
            ids = tokenizer(text, add_special_tokens=add_special_tokens).input_ids
            return type("Out", (), {"input_ids": [i + 1 for i in ids]})()

    assert space_key(phrases, Shifted(), table, identity, settings) != base


def test_sidecar_and_plot_written(model, phrases, tmp_path):
    space = build(model, phrases, slots=3, cache_root=tmp_path)
    entry = tmp_path / space.fingerprint()
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["identity"] == model[2]
    assert len(meta["phrase_sha256"]) == 64
    assert meta["num_components"] == space.num_components == 8
    assert len(meta["explained_variance"]) == 3
    assert all(0 < v <= 1 + 1e-6 for v in meta["explained_variance"])
    assert meta["explained_variance"] == pytest.approx(space.explained_variance_ratio.sum(1).tolist())
    with Image.open(entry / "action_space.png") as im:
        assert im.format == "PNG" and im.width > 100


def test_malformed_phrase_line_names_the_line(tmp_path):
    path = tmp_path / "phrases.tsv"
    path.write_text("head\tlooking down\n\nhand waving\nfoot\tkicking\n", encoding="utf-8")
    with pytest.raises(TwinActError, match=r"line 3\b.*hand waving"):
        load_phrases(str(path))


def test_unknown_group_and_missing_file_raise(tmp_path):
    path = tmp_path / "phrases.tsv"
    path.write_text("head\tnodding\narm\traising\n", encoding="utf-8")
    with pytest.raises(TwinActError, match="line 2"):
        load_phrases(str(path))
    with pytest.raises(TwinActError, match="does not exist"):
        load_phrases(str(tmp_path / "missing.tsv"))


def test_custom_phrase_file_round_trip(tmp_path):
    path = tmp_path / "phrases.tsv"
    path.write_text("head\tlooking down \nwhole_body\tjumping\n", encoding="utf-8")
    assert load_phrases(str(path)) == [("head", "looking down"), ("whole_body", "jumping")]


def test_build_space_command_copies_the_space(tmp_path):
    from conftest import compose

    from twinact.training import build_space_command

    cfg = compose([f"cache_dir={tmp_path / 'cache'}", f"out={tmp_path / 'out'}", "action_space=pooled", "slots=2"],
                  config_name="build_space")
    space = build_space_command(cfg)
    assert space.basis.shape[0] == 2 and space.meta["mode"] == "pooled"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["action_space.png", "basis.safetensors",
                                                                    "meta.json"]
