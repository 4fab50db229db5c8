"""Baselines and ablations share the training path; each trains and exports on the tiny model."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from twinact.space.action_space import ActionSpace, random_like
from twinact.train.training import train


@pytest.mark.parametrize("method", ["twinact", "textual_inversion", "lora", "ti_lora"])
def test_every_method_trains_and_exports(tiny_cfg, method):
    result = train(tiny_cfg(f"method={method}", stage1=1, stage2=1) if method == "twinact" else
                   tiny_cfg(f"method={method}", "method.stage1.steps=1", "method.stage2.steps=1"))
    export = result.run_dir / "export"
    assert (export / "textual_inversion" / "a1.safetensors").is_file()
    has_lora = method != "textual_inversion"
    assert (export / "pytorch_lora_weights.safetensors").is_file() == has_lora
    assert result.module.fingerprint["method"] == method
    assert (result.module.image_encoder is not None) == (method == "twinact")


def test_dreambooth_lora_keeps_the_rare_token_fixed(tiny_cfg):
    module = train(tiny_cfg("method=lora", "method.stage1.steps=0", "method.stage2.steps=2")).module
    table = module.text_encoder.get_input_embeddings().base.weight
    sks = module.comps.tokenizer("sks", add_special_tokens=False).input_ids[0]
    assert all(torch.equal(row, table[sks]) for row in module.placeholder_embeddings()[0])
    assert not [p for p in module.vectors.parameters() if p.requires_grad]


def test_textual_inversion_vectors_are_free_and_move(tiny_cfg):
    module = train(tiny_cfg("method=textual_inversion", "method.stage1.steps=2", "method.stage2.steps=0")).module
    table = module.text_encoder.get_input_embeddings().base.weight
    action = module.comps.tokenizer("action", add_special_tokens=False).input_ids[0]
    moved = module.placeholder_embeddings()[0] - table[action]
    assert moved.abs().max() > 1e-4 and not module.has_lora


def test_direct_coefficients_ablation_has_no_mlp(tiny_cfg):
    module = train(tiny_cfg("method.coefficients=direct", stage1=2, stage2=0)).module
    source = module.vectors[0]
    assert len(source.mlps) == 0 and source.direct.abs().sum() > 0  # zero-initialized, then trained


def test_random_basis_is_orthonormal_and_not_pca():
    gen = torch.Generator().manual_seed(0)
    pca = ActionSpace(torch.linalg.qr(torch.randn(3, 16, 8, generator=gen))[0].transpose(1, 2), torch.zeros(3, 16),
                      torch.ones(3, 8), {"key": "k"})
    rnd = random_like(pca, seed=1)
    assert rnd.basis.shape == pca.basis.shape and rnd.meta["key"] != "k"
    for b in rnd.basis:
        torch.testing.assert_close(b @ b.T, torch.eye(8), atol=1e-5, rtol=0)
    assert (rnd.basis - pca.basis).abs().max() > 0.1


def test_random_basis_trains(tiny_cfg):
    result = train(tiny_cfg("action_space.basis=random", stage1=1, stage2=1))
    assert result.module.fingerprint["action_space"].endswith("-random0")
    assert load_file(result.run_dir / "export" / "twinact_state.safetensors")["coefficients.0"].shape[0] == 3


@pytest.mark.parametrize("method", ["twinact", "textual_inversion"])
def test_max_norm_vocab_keeps_trained_vectors_within_the_vocabulary(tiny_cfg, method):
    """`method.max_norm=vocab`: however far training pushes them, the vectors (and so the export) stay no longer
    than the embedding table's longest row."""
    result = train(tiny_cfg(f"method={method}", "method.max_norm=vocab", "method.stage1.lr=0.5",
                            "method.stage1.steps=3", "method.stage2.steps=0"))
    table = result.module.text_encoder.get_input_embeddings().base.weight
    limit = float(table.norm(dim=-1).max())
    exported = load_file(str(result.run_dir / "export" / "textual_inversion" / "a1.safetensors"))["<a1>"]
    assert exported.norm() <= limit * (1 + 1e-5)
    assert result.module.placeholder_embeddings()[0].norm(dim=-1).max() <= limit * (1 + 1e-5)
    assert result.module.fingerprint["max_norm"] == [pytest.approx(limit)]


def test_max_norm_rejects_nonsense(tiny_cfg):
    from twinact.errors import TwinActError

    with pytest.raises(TwinActError, match="max_norm"):
        train(tiny_cfg("method.max_norm=-1"))
