"""Assemble the trainable pieces around the frozen model: action space, placeholder vectors, LoRA, the module.

Everything here reads typed settings (`twinact.config.schema`'s dataclasses, built from the composed config by
`twinact.train.training`), never the config itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from twinact.config.schema import (
    ActionConfig,
    ActionSpaceConfig,
    LoraConfig,
    LossConfig,
    MethodConfig,
)
from twinact.errors import TwinActError
from twinact.method.data import load_original
from twinact.method.module import LossSettings, StageSchedule, TwinActModule
from twinact.model.conditioning import time_ids
from twinact.model.lora import add_lora
from twinact.space import action_space as spaces
from twinact.space.action_encoder import ClipImageEncoder, NoPersonError, build_action_feature, pil_to_tensor
from twinact.space.appearance import without_appearance
from twinact.space.placeholder import (
    FreeVectors,
    SpaceVectors,
    add_placeholder_tokens,
    init_word_rows,
    install,
    offsets_for,
    vocabulary_norm,
)

log = logging.getLogger(__name__)


@dataclass
class Recipe:
    """What `build_module` assembles around the frozen model."""

    action: ActionConfig
    action_space: ActionSpaceConfig
    method: MethodConfig
    lora: LoraConfig
    loss: LossConfig
    latents: str  # model.latents: sample | mean
    resolution: int
    seed: int
    cache_root: Path  # the action-space cache
    encoder: Callable[[], object] | None  # makes the configured action encoder; None: `learned`
    encoder_name: str
    feature_dim: int | None  # null: the encoder's
    gradient_checkpointing: bool


@dataclass
class Assembled:
    """The module and the pieces the run's export and header need besides it."""

    module: TwinActModule
    space: spaces.ActionSpace
    lora_config: object | None  # peft's LoraConfig, for the export
    tokens: list[str]


def joint_table(comps) -> torch.Tensor:
    """Input embedding rows of every text encoder side by side (SDXL: 768 + 1280 columns)."""
    return torch.cat([enc.get_input_embeddings().weight.detach().float() for enc in comps.text_encoders], dim=1)


def build_space(a: ActionSpaceConfig, comps, num_slots: int, cache_root: Path, seed: int) -> spaces.ActionSpace:
    """The common action space of this model's embedding table(s) (built once, then read from `cache_root`)."""
    phrases, table = spaces.load_phrases(a.phrases), joint_table(comps)
    space = built = spaces.build_action_space(
        phrases, comps.tokenizer, table, comps.identity, slots=num_slots, mode=a.mode,
        max_components=a.max_components, dedupe=a.dedupe, cache_root=cache_root, appearance_words=a.design_words,
        # not of a random or projected basis: the check below is of the basis used
        warn_overlap=a.warn_appearance and a.basis == "pca" and not a.remove_appearance,
    )
    if a.basis == "random":
        space = spaces.random_like(space, seed=seed)
    if a.remove_appearance:
        space = without_appearance(space, comps.tokenizer, table, a.design_words, [p for _, p in phrases])
    if space is not built and a.design_words:  # the check of the basis that is used
        space.meta["design_check"] = spaces.design_check(space, comps.tokenizer, table, a.design_words,
                                                         phrases=[p for _, p in phrases])
        log.info("design check of the %s basis used: %s", "random" if a.basis == "random" else "projected",
                 spaces.appearance_overlap(space.meta["design_check"]) or "the actor words lie no more inside the "
                 "span than random directions do")
    return space


def max_norm_for(setting, table: torch.Tensor) -> float | None:
    """`method.max_norm` as a number: null (no cap), `vocab` (the largest row norm of `table`), or a number (the
    config check refuses anything else)."""
    if setting is None:
        return None
    return vocabulary_norm(table) if setting == "vocab" else float(setting)


def vector_sources(method: MethodConfig, a: ActionSpaceConfig, slots: int, space, feature, init: torch.Tensor,
                   dims: list[int], table: torch.Tensor) -> tuple[list[nn.Module], list[tuple[int, int] | None]]:
    """The trainable vector module(s) and the column span each text encoder reads.

    `method.vectors`: `space` (TwinAct: offset + coefficients @ basis), `free` (textual inversion: a free vector per
    token), `fixed` (DreamBooth-LoRA: the init word's embedding, frozen). For SDXL, `action_space.mlp_per_encoder`
    gives each encoder its own MLPs over its slice of the joint basis (released code); otherwise one set of MLPs
    produces the joint vector and each encoder reads its columns. `method.max_norm` caps each vector's norm over
    the columns its module produces (`table`: the joint embedding table).
    """
    kind, cap = method.vectors, method.max_norm
    bounds = [(sum(dims[:i]), sum(dims[: i + 1])) for i in range(len(dims))]
    if kind in ("free", "fixed"):
        rows = init.expand(slots, -1)
        return [FreeVectors(rows[:, lo:hi], trainable=kind == "free", max_norm=max_norm_for(cap, table[:, lo:hi]))
                for lo, hi in bounds], [None] * len(dims)
    offsets = offsets_for(a.offset, space, init)
    options = {"shared_mlp": a.shared_mlp, "direct": method.coefficients == "direct", "init_scale": a.init_scale}
    if len(dims) > 1 and a.mlp_per_encoder:
        return ([SpaceVectors(feature, space.basis[..., lo:hi], offsets[:, lo:hi],
                              max_norm=max_norm_for(cap, table[:, lo:hi]), **options)
                 for lo, hi in bounds], [None] * len(dims))
    return ([SpaceVectors(feature, space.basis, offsets, max_norm=max_norm_for(cap, table), **options)],
            bounds if len(dims) > 1 else [None])


def install_placeholders(method: MethodConfig, a: ActionSpaceConfig, comps, space, feature, tokens: list[str]
                         ) -> nn.ModuleList:
    """Add the tokens to every tokenizer and wrap every text encoder; returns the vector modules."""
    dims = [enc.get_input_embeddings().weight.shape[1] for enc in comps.text_encoders]
    init = init_word_rows(comps, method.init_word)
    sources, spans = vector_sources(method, a, len(tokens), space, feature, init, dims, joint_table(comps))
    for i, (tok, enc) in enumerate(zip(comps.tokenizers, comps.text_encoders)):
        ids = add_placeholder_tokens(tok, tokens)
        install(enc, ids, sources[min(i, len(sources) - 1)], spans[i])
    return nn.ModuleList(sources)


def exemplar_time_ids(exemplars, resolution: int) -> torch.Tensor:
    """[N, 2, 6] SDXL time ids per exemplar, unflipped and flipped (a flip mirrors the crop's left edge)."""
    out = []
    for ex in exemplars:
        h, w = ex.original_size
        scale = resolution / min(h, w)
        resized_w = max(resolution, round(w * scale))
        top, left = ex.crop_top_left
        size, target = (h, w), (resolution, resolution)
        out.append(torch.stack([time_ids(size, (top, left), target),
                                time_ids(size, (top, resized_w - left - resolution), target)]))
    return torch.stack(out)


def build_module(r: Recipe, comps, exemplars) -> Assembled:
    """Install placeholders and LoRA on the frozen parts and wrap them in the LightningModule."""
    tokens, m, use_lora = list(r.action.placeholder_tokens), r.method, r.method.lora
    images = [ex.image for ex in exemplars]
    space = build_space(r.action_space, comps, len(tokens), r.cache_root, r.seed)
    encoder = r.encoder() if r.encoder is not None else None
    shown = [load_original(ex.path) for ex in exemplars] if getattr(encoder, "reads_originals", False) else images
    try:
        feature = build_action_feature(encoder, shown, dim=r.feature_dim or 320, seed=r.seed)
    except NoPersonError as err:
        files = ", ".join(str(exemplars[i].path) for i in err.indices)
        raise TwinActError(
            f"action_encoder={r.encoder_name} found no person in {len(err.indices)} of {len(exemplars)} "
            f"exemplars: {files}. Remove those images, or use action_encoder=clip_vision for actions without a "
            "human actor."
        ) from None
    vectors = install_placeholders(m, r.action_space, comps, space, feature, tokens)
    lo = r.lora
    lora_cfg = add_lora(comps.unet, lo.rank, lo.alpha, lo.dropout, tuple(lo.targets), lo.init) if use_lora else None
    sim = r.loss.similarity
    image_encoder = ClipImageEncoder(sim.encoder) if m.similarity_weight > 0 else None
    schedule = StageSchedule(
        stage1_steps=m.stage1.steps, stage2_steps=m.stage2.steps if use_lora else 0, lr=m.stage1.lr,
        lora_lr=m.stage2.lora_lr, warmup_steps=m.warmup_steps, weight_decay=m.weight_decay,
        use_8bit_adam=m.use_8bit_adam,
    )
    losses = LossSettings(r.loss.min_snr_gamma, m.similarity_weight, sim.start, sim.min_timestep, sim.decode)
    fingerprint = {
        "model": comps.identity, "action_space": space.fingerprint(), "tokens": tokens,
        "feature": feature.source, "lora_rank": lo.rank if use_lora else 0, "method": m.name,
        "shared_mlp": bool(r.action_space.shared_mlp), "vector_modules": len(vectors),
        # a resume with another seed or schedule would silently train a run that neither setting describes
        "seed": int(r.seed), "steps": [schedule.stage1_steps, schedule.stage2_steps],
    }
    if r.latents == "mean":  # only when set, so checkpoints of earlier runs still resume
        fingerprint["latents"] = r.latents
    caps = [getattr(v, "max_norm", None) for v in vectors]
    if any(c is not None for c in caps):  # only when set, so checkpoints of runs without a cap still resume
        fingerprint["max_norm"] = caps
    pixels = torch.stack([pil_to_tensor(im) for im in images])
    module = TwinActModule(vectors, comps, pixels, schedule, losses, image_encoder, fingerprint,
                           time_ids=exemplar_time_ids(exemplars, r.resolution) if comps.is_xl else None,
                           gradient_checkpointing=r.gradient_checkpointing, sample_latents=r.latents == "sample")
    return Assembled(module, space, lora_cfg, tokens)
