"""Tests for the common action space (twinact.space.action_space) on the tiny model's embedding table."""

import json
import logging

import pytest
import torch
from PIL import Image

import twinact.space.action_space as spaces
from twinact.errors import TwinActError
from twinact.space.action_space import GROUPS, build_action_space, load_phrases, space_key


@pytest.fixture(scope="module")
def model(tiny_base_model):
    comps = tiny_base_model()
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


def test_unknown_mode_is_refused_with_the_config():
    from omegaconf import OmegaConf

    from twinact.config.validate import check_choices

    with pytest.raises(TwinActError, match="action_space.mode='per_token' is not one of per_slot, pooled"):
        check_choices(OmegaConf.create({"action_space": {"mode": "per_token"}}))


@pytest.mark.parametrize("max_components", [1, 5, 1000])
def test_num_components_bounded_by_setting_and_embedding_dim(model, phrases, max_components):
    space = build(model, phrases, slots=2, max_components=max_components)
    dim = model[1].shape[1]
    assert space.num_components == space.basis.shape[1] == max(space.meta["num_components"])
    assert space.slot_components == space.meta["num_components"]
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
    assert meta["num_components"] == [8, 8, 8] and space.num_components == 8
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

    from twinact.train.training import build_space_command

    cfg = compose([f"cache_dir={tmp_path / 'cache'}", f"out={tmp_path / 'out'}", "action_space=pooled", "slots=2"],
                  config_name="build_space")
    space = build_space_command(cfg)
    assert space.basis.shape[0] == 2 and space.meta["mode"] == "pooled"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["action_space.png", "basis.safetensors",
                                                                    "meta.json"]
    written = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert written["design_check_words"] == list(cfg.action_space.design_words)
    assert len(written["design_check"]) == 2 and written["num_components"] == space.slot_components
    with pytest.raises(TwinActError, match="action_space.mode='joint' is not one of per_slot, pooled"):
        build_space_command(compose([f"cache_dir={tmp_path / 'cache'}", "action_space.mode=joint"],
                                    config_name="build_space"))


class WordTokenizer:
    """One id per whitespace-separated word (a stand-in tokenizer for synthetic tables)."""

    def __init__(self, words):
        self.vocab = {w: i for i, w in enumerate(words)}

    def __call__(self, text, add_special_tokens=False):
        return type("Out", (), {"input_ids": [self.vocab[w] for w in text.split()]})()


def uneven_model(dim=16, n=12, last_slot_words=3, seed=0):
    """Phrases `a<i> b<i> c<i % last_slot_words>`: slots 0 and 1 have `n` distinct rows, slot 2 only a few."""
    words = [f"{x}{i}" for x in "abc" for i in range(n)]
    table = torch.randn(len(words), dim, generator=torch.Generator().manual_seed(seed))
    phrases = [("whole_body", f"a{i} b{i} c{i % last_slot_words}") for i in range(n)]
    return WordTokenizer(words), table, phrases


def test_low_rank_slot_keeps_its_own_k_and_others_are_not_cut(caplog, tmp_path):
    tokenizer, table, phrases = uneven_model()
    with caplog.at_level(logging.INFO, logger="twinact.space.action_space"):
        space = build_action_space(phrases, tokenizer, table, "synthetic", slots=3, max_components=8,
                                   cache_root=tmp_path)
    assert space.slot_components == space.meta["num_components"] == [8, 8, 2]  # slot 2: 3 distinct rows, rank 2
    assert space.basis.shape == (3, 8, 16) and space.num_components == 8
    for slot, k in enumerate(space.slot_components):
        assert_orthonormal(space.basis[slot, :k])
        assert torch.count_nonzero(space.basis[slot, k:]) == 0  # padding rows are exactly zero
        assert torch.count_nonzero(space.explained_variance_ratio[slot, k:]) == 0
    assert "K per slot = [8, 8, 2]" in caplog.text
    # zero rows add nothing: any coefficients beyond slot 2's K leave its vector unchanged
    coeffs = torch.randn(3, 8)
    moved = coeffs.clone()
    moved[2, 2:] += 5.0
    embed = lambda c: torch.einsum("sk,skd->sd", c, space.basis)  # noqa: E731
    assert torch.equal(embed(moved)[2], embed(coeffs)[2])
    # the padded space survives the cache round trip and the plot is drawn
    again = build_action_space(phrases, tokenizer, table, "synthetic", slots=3, max_components=8, cache_root=tmp_path)
    assert again.slot_components == [8, 8, 2] and torch.equal(again.basis, space.basis)
    assert (tmp_path / space.fingerprint() / "action_space.png").is_file()
    rand = spaces.random_like(space)
    assert rand.slot_components == [8, 8, 2] and torch.count_nonzero(rand.basis[2, 2:]) == 0
    assert_orthonormal(rand.basis[2, :2])


def test_max_components_per_slot_list():
    tokenizer, table, phrases = uneven_model()
    space = build_action_space(phrases, tokenizer, table, "synthetic", slots=3, max_components=[4, 9, 8],
                               cache_root=None)
    assert space.slot_components == [4, 9, 2] and space.basis.shape == (3, 9, 16)
    assert space.meta["max_components"] == [4, 9, 8]
    for bad in ([4, 9], [4, 0, 8], "many", 0):
        with pytest.raises(TwinActError, match="action_space.max_components"):
            build_action_space(phrases, tokenizer, table, "synthetic", slots=3, max_components=bad, cache_root=None)


def test_max_components_list_from_the_config(tmp_path):
    from conftest import compose, model_of, space_of

    cfg = compose([f"cache_dir={tmp_path}", "action_space.max_components=[3,5,7]"])
    comps = model_of(cfg)
    space = space_of(cfg, comps)
    assert space.slot_components == [3, 5, 7] and space.num_components == 7
    with pytest.raises(TwinActError, match="action_space.max_components"):
        space_of(compose([f"cache_dir={tmp_path}", "action_space.max_components=[3,5]"]), comps)


def test_spaces_of_the_old_version_are_not_reused():
    tokenizer, table, phrases = uneven_model()
    space = build_action_space(phrases, tokenizer, table, "synthetic", slots=3, max_components=8, cache_root=None)
    old = {"slots": 3, "mode": "per_slot", "max_components": 8, "dedupe": True, "version": 1}
    assert space.meta["version"] == spaces.SPACE_VERSION > 1
    assert space_key(phrases, tokenizer, table, "synthetic", old) != space.fingerprint()
    assert space_key(phrases, tokenizer, table, "synthetic", {**old, "version": spaces.SPACE_VERSION}) == \
        space.fingerprint()


def span_model(inside: bool, dim=16, seed=0):
    """One slot from single-word phrases whose rows are m +- v_i (v_i in e0..e5, m along e7, so the mean is
    exactly m), and actor words m + u_j with u_j in the span of the v_i or orthogonal to it (in e8..e15)."""
    gen = torch.Generator().manual_seed(seed)
    m = torch.zeros(dim)
    m[7] = 2.0
    v = torch.zeros(4, dim)
    v[:, :6] = torch.randn(4, 6, generator=gen)
    u = torch.zeros(5, dim)
    if inside:
        u = torch.randn(5, 4, generator=gen) @ v
    else:
        u[:, 8:] = torch.randn(5, 8, generator=gen)
    table = torch.cat([m + v, m - v, m + u])
    words = [f"p{i}" for i in range(8)] + [f"q{j}" for j in range(5)]
    return WordTokenizer(words), table, [("hand", f"p{i}") for i in range(8)], [f"q{j}" for j in range(5)]


@pytest.mark.parametrize("inside", [False, True])
def test_design_check_measures_actor_words_in_the_span(inside, caplog):
    tokenizer, table, phrases, actors = span_model(inside)
    space = build_action_space(phrases, tokenizer, table, "synthetic", slots=1, max_components=8, cache_root=None,
                               appearance_words=actors)
    assert space.slot_components == [4]  # 8 rows +-v_i: rank 4 around their mean
    span_rows = table[:8]
    assert spaces.span_fraction(space, span_rows).item() == pytest.approx(1.0, abs=1e-5)
    actor_rows = table[8:]
    check = space.meta["design_check"][0]
    assert check["actor_rows"] == 5 and space.meta["design_check_words"] == actors
    assert check["actor_in_span"] == pytest.approx(spaces.span_fraction(space, actor_rows).item(), abs=1e-6)
    # four random directions of a 4-d span in 16-d: about sqrt(4 / 16) = 0.5
    assert 0.35 < check["random_in_span"] < 0.65
    assert check["actor_in_span"] == pytest.approx(1.0 if inside else 0.0, abs=1e-5)
    warned = [r.getMessage() for r in caplog.records if "design check: the actor words" in r.getMessage()]
    assert len(warned) == (1 if inside else 0)


def test_the_design_check_warns_when_the_space_is_fitted_not_on_every_run(tmp_path, caplog):
    tokenizer, table, phrases, actors = span_model(inside=True)

    def said(**kw):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="twinact.space.action_space"):
            build_action_space(phrases, tokenizer, table, "synthetic", slots=1, max_components=8,
                               cache_root=tmp_path, appearance_words=actors, plot=False, **kw)
        return [(r.levelno, r.getMessage()) for r in caplog.records if "the actor words lie" in r.getMessage()]

    fitted, cached = said(), said()
    assert [level for level, _ in fitted] == [logging.WARNING] and [level for level, _ in cached] == [logging.INFO]
    assert "action_space.remove_appearance=true" in fitted[0][1]  # the option that removes them, as typed
    assert said(warn_overlap=False) == []  # a derived basis (random, projected) is checked by the caller


def test_the_random_basis_ablation_records_its_own_design_check(tmp_path):
    from conftest import compose, model_of, space_of

    common = ["model=tiny", f"cache_dir={tmp_path}", "action_space.max_components=4"]  # a 4-d span of 32-d rows
    cfg = compose(common)
    comps = model_of(cfg)
    pca = space_of(cfg, comps)
    rand = space_of(compose(common + ["action_space.basis=random"]), comps)
    assert rand.meta["basis"] == "random" and len(rand.meta["design_check"]) == 3
    assert rand.meta["design_check"] != pca.meta["design_check"]
    expected = spaces.design_check(rand, comps.tokenizer, comps.text_encoders[0].get_input_embeddings().weight,
                                   cfg.action_space.design_words,
                                   phrases=[p for _, p in spaces.load_phrases(cfg.action_space.phrases)])
    assert rand.meta["design_check"] == expected
