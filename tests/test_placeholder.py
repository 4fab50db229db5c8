"""Tests for placeholder tokens living in the action space (twinact.space.placeholder)."""

from types import SimpleNamespace

import pytest
import torch

from twinact.errors import TwinActError
from twinact.space.action_encoder import ActionFeature
from twinact.space.action_space import build_action_space, load_phrases
from twinact.space.placeholder import (
    CoefficientMLP,
    PlaceholderEmbedding,
    SpaceVectors,
    add_placeholder_tokens,
    cap_norm,
    init_word_embedding,
    install,
    offsets_for,
    vocabulary_norm,
)

TOKENS = ["<a1>", "<a2>", "<a3>"]
PROMPT = "a photo of a person jumping over a fence"


@pytest.fixture(scope="module")
def space(tiny_base_model):
    comps = tiny_base_model()
    table = comps.text_encoder.get_input_embeddings().weight
    return build_action_space(load_phrases(), comps.tokenizer, table, comps.identity, slots=len(TOKENS),
                              max_components=8, cache_root=None)


def make_vectors(space, table, tokenizer, *, shared_mlp=False, seed=0):
    gen = torch.Generator().manual_seed(seed)
    feature = ActionFeature(torch.randn(16, generator=gen), trainable=False, source="test")
    offsets = offsets_for("init_word", space, init_word_embedding(tokenizer, table, "action"))
    return SpaceVectors(feature, space.basis, offsets, shared_mlp=shared_mlp)


def with_placeholders(tiny_base_model, space, **kw):
    """Fresh tiny components with the placeholder tokens added and the embedding wrapper installed."""
    comps = tiny_base_model()
    table = comps.text_encoder.get_input_embeddings().weight
    vectors = make_vectors(space, table, comps.tokenizer, **kw)
    ids = add_placeholder_tokens(comps.tokenizer, TOKENS)
    wrapper = install(comps.text_encoder, ids, vectors)
    return comps, ids, vectors, wrapper


def encode_ids(tokenizer, prompt):
    return tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids


def test_prompt_without_placeholders_is_bit_identical(tiny_base_model, space):
    reference = tiny_base_model()
    comps, _, _, _ = with_placeholders(tiny_base_model, space)
    ids = encode_ids(comps.tokenizer, PROMPT)
    assert torch.equal(ids, encode_ids(reference.tokenizer, PROMPT))
    with torch.no_grad():
        got = comps.text_encoder(ids).last_hidden_state
        want = reference.text_encoder(ids).last_hidden_state
        assert torch.equal(got, want)
        # ...while a prompt with the placeholders does read the new vectors
        with_ph = encode_ids(comps.tokenizer, "a photo of <a1> <a2> <a3>")
        plain = encode_ids(reference.tokenizer, "a photo of action action action")
        assert not torch.allclose(comps.text_encoder(with_ph).last_hidden_state,
                                  reference.text_encoder(plain).last_hidden_state)


def test_placeholder_tokens_are_single_new_ids(tiny_base_model, space):
    comps, ids, _, wrapper = with_placeholders(tiny_base_model, space)
    assert all(i >= wrapper.base.num_embeddings for i in ids)
    assert len(set(ids)) == len(TOKENS)
    tokenized = comps.tokenizer("<a1> <a2> <a3>", add_special_tokens=False).input_ids
    assert tokenized == ids


def test_embedding_rows_come_from_vectors_or_frozen_table(tiny_base_model, space):
    comps, ids, vectors, wrapper = with_placeholders(tiny_base_model, space)
    assert isinstance(comps.text_encoder.get_input_embeddings(), PlaceholderEmbedding)
    input_ids = encode_ids(comps.tokenizer, "<a3> a person doing <a1> <a2> and <a1>")
    with torch.no_grad():
        out = wrapper(input_ids)[0]
        expected_vectors = torch.stack(
            [vectors.offsets[k] + vectors.coefficients()[k] @ vectors.basis[k] for k in range(3)])
        assert torch.allclose(vectors(), expected_vectors, atol=1e-6)
        table = wrapper.base.weight
        seen = set()
        for pos, tok in enumerate(input_ids[0].tolist()):
            if tok in ids:
                seen.add(tok)
                assert torch.equal(out[pos], vectors()[ids.index(tok)])
            else:
                assert torch.equal(out[pos], table[tok])
    assert seen == set(ids)


def test_training_changes_only_the_mlps(tiny_base_model, space):
    comps, ids, vectors, wrapper = with_placeholders(tiny_base_model, space)
    te = comps.text_encoder
    frozen = {n: p.detach().clone() for n, p in te.named_parameters() if ".vectors." not in n}
    frozen.update({n: b.detach().clone() for n, b in te.named_buffers() if ".vectors." not in n})
    assert any(n.endswith("token_embedding.base.weight") for n in frozen)
    mlp_before = {n: p.detach().clone() for n, p in vectors.named_parameters()}
    assert mlp_before and all(n.startswith("mlps.") for n in mlp_before)

    opt = torch.optim.AdamW(vectors.parameters(), lr=1e-2, weight_decay=1e-2)
    input_ids = encode_ids(comps.tokenizer, "a photo of <a1> <a2> <a3>")
    target = torch.randn(te.config.hidden_size, generator=torch.Generator().manual_seed(1))
    for _ in range(3):
        opt.zero_grad()
        hidden = te(input_ids).last_hidden_state
        loss = (hidden[0, 4:8] - target).pow(2).mean()
        loss.backward()
        opt.step()

    after = dict(te.named_parameters()) | dict(te.named_buffers())
    for name, value in frozen.items():
        assert torch.equal(after[name], value), name
        assert after[name].grad is None, name
    for name, value in vectors.named_parameters():
        if name.endswith("weight"):
            assert not torch.equal(value, mlp_before[name]), name


@pytest.mark.parametrize("tokens, bad", [(["action"], "action"), (["<a1>", "dog"], "dog"), (["Action"], "Action")])
def test_token_clash_raises_and_leaves_tokenizer_alone(tiny_base_model, tokens, bad):
    tokenizer = tiny_base_model().tokenizer
    size = len(tokenizer)
    with pytest.raises(TwinActError, match=bad):
        add_placeholder_tokens(tokenizer, tokens)
    assert len(tokenizer) == size


def test_duplicate_placeholders_raise(tiny_base_model):
    with pytest.raises(TwinActError, match="distinct"):
        add_placeholder_tokens(tiny_base_model().tokenizer, ["<a1>", "<a1>"])


def test_offsets_for_each_kind(tiny_base_model, space):
    comps = tiny_base_model()
    table = comps.text_encoder.get_input_embeddings().weight
    init = init_word_embedding(comps.tokenizer, table, "action")
    action_id = comps.tokenizer("action", add_special_tokens=False).input_ids[0]
    assert torch.equal(init, table[action_id])

    slots, _, dim = space.basis.shape
    got = offsets_for("init_word", space, init)
    assert got.shape == (slots, dim)
    assert torch.equal(got, init.expand(slots, dim))
    got[0] += 1  # an independent tensor, not a view of the init vector
    assert torch.equal(init, table[action_id])

    assert torch.equal(offsets_for("mean", space, init), space.mean)
    assert torch.equal(offsets_for("zero", space, init), torch.zeros(slots, dim))
    from omegaconf import OmegaConf

    from twinact.config.validate import check_choices

    with pytest.raises(TwinActError, match="action_space.offset='random' is not one of init_word, mean, zero"):
        check_choices(OmegaConf.create({"action_space": {"offset": "random"}}))


def test_coefficient_mlp_init_and_shape():
    mlp = CoefficientMLP(feature_dim=16, num_components=7)
    assert torch.count_nonzero(mlp.fc1.bias) == 0
    assert torch.count_nonzero(mlp.fc2.bias) == 0
    assert mlp.fc1.weight.shape == (32, 16)
    assert mlp(torch.randn(16)).shape == (7,)
    assert mlp(torch.randn(5, 16)).shape == (5, 7)


@pytest.mark.parametrize("shared", [True, False])
def test_shared_mlp(shared):
    basis = torch.linalg.qr(torch.randn(8, 4))[0].T.expand(3, 4, 8).contiguous()
    feature = ActionFeature(torch.randn(16), trainable=False, source="test")
    vectors = SpaceVectors(feature, basis, torch.zeros(3, 8), shared_mlp=shared)
    assert len(vectors.mlps) == (1 if shared else 3)
    coeffs = vectors.coefficients()
    assert coeffs.shape == (3, 4)
    same = torch.equal(coeffs[0], coeffs[1]) and torch.equal(coeffs[1], coeffs[2])
    assert same == shared
    assert vectors().shape == (3, 8)


def test_vectors_do_not_checkpoint_basis_or_offsets():
    """Checkpoints hold only trainable state; the basis is rebuilt from its cache."""
    space = SimpleNamespace(basis=torch.eye(4)[:2].expand(2, 2, 4), mean=torch.zeros(2, 4))
    feature = ActionFeature(torch.randn(6), trainable=True, source="learned")
    vectors = SpaceVectors(feature, space.basis, offsets_for("zero", space, torch.zeros(4)))
    keys = set(vectors.state_dict())
    assert "basis" not in keys and "offsets" not in keys
    assert "feature.value" in keys and any(k.startswith("mlps.1.") for k in keys)


def test_cap_norm_shortens_only_long_vectors_and_keeps_direction():
    v = torch.tensor([[3.0, 4.0], [0.3, 0.4]], requires_grad=True)
    capped = cap_norm(v, 1.0)
    assert torch.allclose(capped.norm(dim=-1), torch.tensor([1.0, 0.5]))
    assert torch.allclose(capped[0], torch.tensor([0.6, 0.8])) and torch.equal(capped[1], v[1])
    capped.sum().backward()  # a capped vector still gets a gradient (it can still turn)
    assert v.grad.abs().sum() > 0
    assert cap_norm(v, None) is v


def test_space_vectors_respect_max_norm_and_init_scale():
    basis = torch.linalg.qr(torch.randn(8, 4))[0].T.expand(3, 4, 8).contiguous()
    feature = ActionFeature(torch.randn(16), trainable=False, source="test")
    offsets = torch.full((3, 8), 0.1)
    torch.manual_seed(0)
    free = SpaceVectors(feature, basis, offsets)
    torch.manual_seed(0)
    small = SpaceVectors(feature, basis, offsets, init_scale=0.01)
    # Same seed, same Xavier draw: init_scale only scales the output layer, so the placeholders start at the offset.
    assert torch.allclose(small.coefficients(), 0.01 * free.coefficients(), atol=1e-6)
    assert (small() - offsets).norm(dim=-1).max() < 0.05 < (free() - offsets).norm(dim=-1).max()
    capped = SpaceVectors(feature, basis, offsets * 20, max_norm=0.5)
    assert torch.allclose(capped().norm(dim=-1), torch.full((3,), 0.5))


def test_vocabulary_norm_is_the_longest_row():
    table = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
    assert vocabulary_norm(table) == pytest.approx(5.0)


def test_released_init_starts_sd15_coefficients_near_norm_094():
    """The README's figure: Xavier output layer, K=512 components over a 320-d feature -> |w| ~ sqrt(2K/(2d+K))."""
    torch.manual_seed(0)
    norms = torch.stack([CoefficientMLP(320, 512)(torch.randn(320)).norm() for _ in range(5)])
    assert abs(float(norms.mean()) - (2 * 512 / (640 + 512)) ** 0.5) < 0.05
    assert float(CoefficientMLP(320, 512, init_scale=0.1)(torch.randn(320)).norm()) < 0.15
