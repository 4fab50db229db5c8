"""An action space with the appearance directions removed (twinact.space.appearance, action_space.remove_appearance)."""

import pytest
import torch

import twinact.space.action_space as spaces
from tests.test_action_space import WordTokenizer
from twinact.errors import TwinActError
from twinact.space.action_space import build_action_space


def test_removing_appearance_leaves_actor_words_outside_the_span():
    from twinact.space.appearance import without_appearance

    gen = torch.Generator().manual_seed(3)
    dim = 16
    m = torch.zeros(dim)
    m[7] = 2.0
    v = torch.zeros(4, dim)
    v[:, :6] = torch.randn(4, 6, generator=gen)
    u = torch.randn(3, 2, generator=gen) @ v[:2]  # actor words inside a 2-d part of the 4-d phrase span
    table = torch.cat([m + v, m - v, m + u])
    words = [f"p{i}" for i in range(8)] + [f"q{j}" for j in range(3)]
    tokenizer, phrases, actors = WordTokenizer(words), [("hand", f"p{i}") for i in range(8)], ["q0", "q1", "q2"]
    space = build_action_space(phrases, tokenizer, table, "synthetic", slots=1, max_components=8, cache_root=None)
    assert space.slot_components == [4]
    clean = without_appearance(space, tokenizer, table, actors, [p for _, p in phrases])
    assert clean.slot_components == [2] and clean.meta["appearance_removed"]["components_before"] == [4]
    basis = clean.basis[0, :2]
    assert torch.allclose(basis @ basis.T, torch.eye(2), atol=1e-5)  # still orthonormal
    assert spaces.span_fraction(clean, table[8:]).item() == pytest.approx(0.0, abs=1e-5)
    # what is left of the phrases is the part orthogonal to the actor words, and all of it is kept
    actor_dirs = torch.linalg.svd(table[8:] - m, full_matrices=False)[2][:2]
    rest = (v - (v @ actor_dirs.T) @ actor_dirs)[2:]  # v0, v1 lie wholly in the actor span
    assert spaces.span_fraction(clean, rest, centre=False).item() == pytest.approx(1.0, abs=1e-4)
    assert clean.fingerprint() != space.fingerprint()
    with pytest.raises(TwinActError, match="nothing left"):
        whole = torch.cat([m + v, m - v, m + v[:3], m + v[3:] + v[:1]])
        tok = WordTokenizer([f"p{i}" for i in range(8)] + ["a0", "a1", "a2", "a3"])
        s = build_action_space(phrases, tok, whole, "synthetic", slots=1, max_components=8, cache_root=None)
        without_appearance(s, tok, whole, ["a0", "a1", "a2", "a3"])


def test_remove_appearance_is_a_config_option_and_needs_design_words(tmp_path):
    from conftest import compose, model_of, space_of

    from twinact.config.validate import check_training_config

    common = ["model=tiny", f"cache_dir={tmp_path}", "action_space.max_components=8"]
    cfg = compose(common + ["action_space.remove_appearance=true"])
    space = space_of(cfg, model_of(cfg))
    assert "appearance_removed" in space.meta
    assert all(d["actor_in_span"] == pytest.approx(0.0, abs=1e-4) for d in space.meta["design_check"])
    with pytest.raises(TwinActError, match="design_words"):
        check_training_config(compose(common + ["action_space.remove_appearance=true",
                                                "action_space.design_words=null"]))
