"""Composing and adjusting actions in the common space: the arithmetic, the errors, and that the result renders."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from twinact.errors import TwinActError
from twinact.model.random_models import build_tiny
from twinact.release import space_ops
from twinact.release.sampling import sample_run
from twinact.train.training import train


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    from conftest import compose, fast_overrides

    root = tmp_path_factory.mktemp("runs")
    runs = []
    for seed in (0, 1):
        cfg = compose(fast_overrides(root, 2, 1) + [f"run_dir={root / f'r{seed}'}", f"seed={seed}"])
        runs.append(train(cfg).run_dir)
    return runs


def test_compose_is_a_weighted_sum_and_embeds_linearly(two_runs):
    a, b = two_runs
    _, ca = space_ops.load_run_coefficients(a)
    _, cb = space_ops.load_run_coefficients(b)
    _, mixed = space_ops.compose([a, b], [0.25, 0.75])
    torch.testing.assert_close(mixed[0], 0.25 * ca[0] + 0.75 * cb[0])
    comps = build_tiny()
    # weight 1 on one run reproduces exactly what that run exported
    only_a = space_ops.run_space_embeddings(a, comps, space_ops.compose([a, b], [1.0, 0.0])[1])
    torch.testing.assert_close(only_a[0], load_file(a / "export" / "twinact_state.safetensors")["embeddings.0"],
                               atol=1e-5, rtol=1e-5)


def test_adjust_moves_along_one_basis_direction(two_runs):
    a = two_runs[0]
    _, coeffs = space_ops.load_run_coefficients(a)
    moved = space_ops.adjust(coeffs, component=3, amount=0.5, slots=[1])
    delta = moved[0] - coeffs[0]
    assert float(delta[1, 3]) == pytest.approx(0.5, abs=1e-6)
    assert float(delta.abs().sum()) == pytest.approx(0.5, abs=1e-6)
    comps = build_tiny()
    before = space_ops.run_space_embeddings(a, comps, coeffs)[0]
    after = space_ops.run_space_embeddings(a, comps, moved)[0]
    from omegaconf import OmegaConf

    from twinact.config.schema import typed
    from twinact.method.assembly import build_space
    from twinact.paths import action_space_cache

    recorded = OmegaConf.load(a / "config.yaml")
    basis = build_space(typed("action_space", recorded.action_space), comps, 3, action_space_cache(recorded.cache_dir),
                        recorded.seed).basis
    torch.testing.assert_close(after[1] - before[1], 0.5 * basis[1, 3], atol=1e-6, rtol=1e-5)
    with pytest.raises(TwinActError, match="outside"):
        space_ops.adjust(coeffs, component=10_000, amount=1.0)


def test_different_spaces_refuse_to_compose(two_runs, tiny_cfg):
    pooled = train(tiny_cfg("action_space=pooled", stage1=1, stage2=0)).run_dir
    with pytest.raises(TwinActError, match="different action spaces"):
        space_ops.compose([two_runs[0], pooled], [0.5, 0.5])
    ti = train(tiny_cfg("method=textual_inversion", "method.stage1.steps=1")).run_dir
    with pytest.raises(TwinActError, match="no action-space coefficients"):
        space_ops.compose([ti], [1.0])


def test_composed_and_adjusted_actions_render(two_runs):
    a, b = two_runs
    plain = sample_run(str(a), ["a robot <a1> <a2> <a3>"], num_images=1, steps=2)
    mixed = sample_run(str(a), ["a robot <a1> <a2> <a3>"], num_images=1, steps=2, compose=[str(a), str(b)],
                       weights=[0.5, 0.5])
    moved = sample_run(str(a), ["a robot <a1> <a2> <a3>"], num_images=1, steps=2,
                       adjust={"component": 0, "amount": 2.0, "slots": None})
    import numpy as np
    from PIL import Image

    img = lambda d: np.asarray(Image.open(d / "00_00.png"), dtype=np.float32)  # noqa: E731
    assert np.abs(img(mixed) - img(plain)).max() > 0 and np.abs(img(moved) - img(plain)).max() > 0


def test_space_embeddings_apply_the_runs_norm_cap(tmp_path):
    """A run trained with `method.max_norm` exported capped vectors; rebuilding them from its coefficients (what
    compose and adjust do) must apply the same cap."""
    from conftest import compose, fast_overrides

    run = train(compose(fast_overrides(tmp_path, 2, 0) + ["method.max_norm=0.05"])).run_dir
    _, coeffs = space_ops.load_run_coefficients(run)
    rebuilt = space_ops.run_space_embeddings(run, build_tiny(), coeffs)[0]
    torch.testing.assert_close(rebuilt, load_file(run / "export" / "twinact_state.safetensors")["embeddings.0"],
                               atol=1e-6, rtol=1e-5)
    assert torch.allclose(rebuilt.norm(dim=-1), torch.full((3,), 0.05))


def test_adjust_refuses_a_component_beyond_a_slots_own_k():
    coeffs = [torch.zeros(3, 8), torch.zeros(3, 8)]  # e.g. SDXL: one coefficient module per text encoder
    ks = [8, 8, 2]  # slot 2 has rank 2: its components 2..7 are zero padding
    moved = space_ops.adjust(coeffs, component=5, amount=1.0, slots=[0, 1], num_components=ks)
    assert all(float(c[:2, 5].sum()) == 2.0 and float(c.abs().sum()) == 2.0 for c in moved)
    assert float(space_ops.adjust(coeffs, component=1, amount=1.0, slots=[2], num_components=ks)[0][2, 1]) == 1.0
    with pytest.raises(TwinActError, match=r"outside the components of slot\(s\) \[2\].*K per slot = \[8, 8, 2\]"):
        space_ops.adjust(coeffs, component=2, amount=1.0, slots=[2], num_components=ks)
    with pytest.raises(TwinActError, match=r"slot\(s\) \[2\]"):  # all slots by default, so slot 2 too
        space_ops.adjust(coeffs, component=5, amount=1.0, num_components=ks)
    with pytest.raises(TwinActError, match="outside the components"):
        space_ops.adjust(coeffs, component=4, amount=1.0, num_components=4)  # spaces recorded before per-slot K
    with pytest.raises(TwinActError, match="outside the run's 3 slots"):
        space_ops.adjust(coeffs, component=0, amount=1.0, slots=[3], num_components=ks)


def test_runs_record_k_per_slot_for_adjust(two_runs):
    meta, coeffs = space_ops.load_run_coefficients(two_runs[0])
    ks = space_ops.slot_components(meta)
    assert isinstance(ks, list) and len(ks) == 3 and max(ks) == coeffs[0].shape[1]
    space_ops.adjust(coeffs, component=max(ks) - 1, amount=1.0, num_components=ks)
