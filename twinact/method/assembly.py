"""Assemble the trainable pieces around the frozen model: action space, placeholder vectors, LoRA, the module."""

from __future__ import annotations

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from twinact.errors import TwinActError
from twinact.method.data import load_original
from twinact.method.module import LossSettings, StageSchedule, TwinActModule
from twinact.model.conditioning import time_ids
from twinact.model.lora import add_lora
from twinact.paths import action_space_cache
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


def joint_table(comps) -> torch.Tensor:
    """Input embedding rows of every text encoder side by side (SDXL: 768 + 1280 columns)."""
    return torch.cat([enc.get_input_embeddings().weight.detach().float() for enc in comps.text_encoders], dim=1)


def build_space(cfg: DictConfig, comps, num_slots: int) -> spaces.ActionSpace:
    """The common action space of this model's embedding table(s) (built once, then read from the cache)."""
    a = cfg.action_space
    phrases, table = spaces.load_phrases(a.phrases), joint_table(comps)
    space = built = spaces.build_action_space(
        phrases, comps.tokenizer, table, comps.identity, slots=num_slots, mode=a.mode,
        max_components=a.max_components, dedupe=a.dedupe, cache_root=action_space_cache(cfg.cache_dir),
        appearance_words=a.get("design_words"),
    )
    if a.get("basis", "pca") == "random":
        space = spaces.random_like(space, seed=cfg.seed)
    if a.get("remove_appearance"):
        if not a.get("design_words"):
            raise TwinActError("action_space.remove_appearance=true removes the directions of "
                               "action_space.design_words, which is empty; give actor words or set it false.")
        space = without_appearance(space, comps.tokenizer, table, a.design_words, [p for _, p in phrases])
    if space is not built and a.get("design_words"):  # the check of the basis that is used
        space.meta["design_check"] = spaces.design_check(space, comps.tokenizer, table, a.design_words,
                                                         phrases=[p for _, p in phrases])
    return space


def max_norm_for(setting, table: torch.Tensor) -> float | None:
    """`method.max_norm` as a number: null (no cap), `vocab` (the largest row norm of `table`), or a number."""
    if setting is None:
        return None
    if setting == "vocab":
        return vocabulary_norm(table)
    try:
        value = float(setting)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise TwinActError(f"method.max_norm={setting!r} must be null, vocab or a positive number.")
    return value


def vector_sources(cfg: DictConfig, space, feature, init: torch.Tensor, dims: list[int], table: torch.Tensor
                   ) -> tuple[list[nn.Module], list[tuple[int, int] | None]]:
    """The trainable vector module(s) and the column span each text encoder reads.

    `method.vectors`: `space` (TwinAct: offset + coefficients @ basis), `free` (textual inversion: a free vector per
    token), `fixed` (DreamBooth-LoRA: the init word's embedding, frozen). For SDXL, `action_space.mlp_per_encoder`
    gives each encoder its own MLPs over its slice of the joint basis (released code); otherwise one set of MLPs
    produces the joint vector and each encoder reads its columns. `method.max_norm` caps each vector's norm over
    the columns its module produces (`table`: the joint embedding table).
    """
    a, kind, slots = cfg.action_space, cfg.method.vectors, len(cfg.action.placeholder_tokens)
    bounds = [(sum(dims[:i]), sum(dims[: i + 1])) for i in range(len(dims))]
    cap = cfg.method.get("max_norm")
    if kind in ("free", "fixed"):
        rows = init.expand(slots, -1)
        return [FreeVectors(rows[:, lo:hi], trainable=kind == "free", max_norm=max_norm_for(cap, table[:, lo:hi]))
                for lo, hi in bounds], [None] * len(dims)
    if kind != "space":
        raise TwinActError(f"method.vectors={kind!r} is not one of space, free, fixed.")
    offsets = offsets_for(a.offset, space, init)
    options = {"shared_mlp": a.shared_mlp, "direct": cfg.method.coefficients == "direct",
               "init_scale": a.get("init_scale", 1.0)}
    if len(dims) > 1 and a.get("mlp_per_encoder", True):
        return ([SpaceVectors(feature, space.basis[..., lo:hi], offsets[:, lo:hi],
                              max_norm=max_norm_for(cap, table[:, lo:hi]), **options)
                 for lo, hi in bounds], [None] * len(dims))
    return ([SpaceVectors(feature, space.basis, offsets, max_norm=max_norm_for(cap, table), **options)],
            bounds if len(dims) > 1 else [None])


def instantiate_encoder(node):
    """The configured action encoder (None: `learned`); an encoder's own TwinActError comes out as itself, not
    wrapped in Hydra's InstantiationException, so the user reads one line that names the problem."""
    if node is None:
        return None
    try:
        return instantiate(node)
    except InstantiationException as err:
        if isinstance(err.__cause__, TwinActError):
            raise err.__cause__ from None
        raise


def install_placeholders(cfg: DictConfig, comps, space, feature, tokens: list[str]) -> nn.ModuleList:
    """Add the tokens to every tokenizer and wrap every text encoder; returns the vector modules."""
    dims = [enc.get_input_embeddings().weight.shape[1] for enc in comps.text_encoders]
    init = init_word_rows(comps, cfg.method.init_word)
    sources, spans = vector_sources(cfg, space, feature, init, dims, joint_table(comps))
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


def build_module(cfg: DictConfig, comps, exemplars) -> tuple[TwinActModule, dict]:
    """Install placeholders and LoRA on the frozen parts and wrap them in the LightningModule."""
    tokens = list(cfg.action.placeholder_tokens)
    images = [ex.image for ex in exemplars]
    space = build_space(cfg, comps, len(tokens))
    encoder = instantiate_encoder(cfg.action_encoder.encoder)
    shown = [load_original(ex.path) for ex in exemplars] if getattr(encoder, "reads_originals", False) else images
    try:
        feature = build_action_feature(encoder, shown, dim=cfg.action_encoder.dim or 320, seed=cfg.seed)
    except NoPersonError as err:
        files = ", ".join(str(exemplars[i].path) for i in err.indices)
        raise TwinActError(
            f"action_encoder={cfg.action_encoder.name} found no person in {len(err.indices)} of {len(exemplars)} "
            f"exemplars: {files}. Remove those images, or use action_encoder=clip_vision for actions without a "
            "human actor."
        ) from None
    vectors = install_placeholders(cfg, comps, space, feature, tokens)
    lora_cfg = None
    use_lora = cfg.method.lora
    if use_lora:
        lora_cfg = add_lora(comps.unet, cfg.lora.rank, cfg.lora.alpha, cfg.lora.dropout, tuple(cfg.lora.targets),
                            cfg.lora.init)
    sim = cfg.loss.similarity
    sim_weight = cfg.method.similarity_weight
    image_encoder = ClipImageEncoder(sim.encoder) if sim_weight > 0 else None
    m = cfg.method
    schedule = StageSchedule(
        stage1_steps=m.stage1.steps, stage2_steps=m.stage2.steps if use_lora else 0, lr=m.stage1.lr,
        lora_lr=m.stage2.lora_lr, warmup_steps=m.warmup_steps, weight_decay=m.weight_decay,
        use_8bit_adam=m.use_8bit_adam,
    )
    losses = LossSettings(cfg.loss.min_snr_gamma, sim_weight, sim.start, sim.min_timestep, sim.decode)
    fingerprint = {
        "model": comps.identity, "action_space": space.fingerprint(), "tokens": tokens,
        "feature": feature.source, "lora_rank": cfg.lora.rank if use_lora else 0,
        "method": cfg.method.name,
        "shared_mlp": bool(cfg.action_space.shared_mlp), "vector_modules": len(vectors),
        # a resume with another seed or schedule would silently train a run that neither setting describes
        "seed": int(cfg.seed), "steps": [schedule.stage1_steps, schedule.stage2_steps],
    }
    latents = cfg.model.latents
    if latents not in ("sample", "mean"):
        raise TwinActError(f"model.latents={latents!r} is not 'sample' or 'mean'.")
    if latents == "mean":  # only when set, so checkpoints of earlier runs still resume
        fingerprint["latents"] = latents
    caps = [getattr(v, "max_norm", None) for v in vectors]
    if any(c is not None for c in caps):  # only when set, so checkpoints of runs without a cap still resume
        fingerprint["max_norm"] = caps
    pixels = torch.stack([pil_to_tensor(im) for im in images])
    module = TwinActModule(vectors, comps, pixels, schedule, losses, image_encoder, fingerprint,
                           time_ids=exemplar_time_ids(exemplars, cfg.data.resolution) if comps.is_xl else None,
                           gradient_checkpointing=cfg.trainer.gradient_checkpointing,
                           sample_latents=latents == "sample")
    return module, {"space": space, "lora_config": lora_cfg, "tokens": tokens}
