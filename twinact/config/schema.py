"""Typed schemas of the config groups, registered in Hydra's ConfigStore as each group's `schema` option.

The one place the config's defaults live. Every option file of a group starts from its schema
(`defaults: [schema, _self_]`) and states only what differs from the defaults below, with its reason beside it; a
value of the wrong type (`lora.rank=abc`) fails when the config is composed, and a misspelt key is refused instead of
ignored. `python train.py --cfg job` prints every key with the value a run gets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import II, MISSING, OmegaConf


@dataclass
class ModelConfig:
    name: str = MISSING
    family: str = "sd15"  # sd15 | sdxl: how captions become UNet conditioning
    pretrained: Optional[str] = None  # hub id or diffusers folder (pkg://<package>/<path> for shipped ones); null
    # builds model.builder in code
    builder: Optional[str] = None  # tiny | tiny_xl | sd15_random | sdxl_random; null: the family's tiny model
    vae: Optional[str] = None  # a separate VAE folder / id (SDXL in fp16: madebyollin/sdxl-vae-fp16-fix, no NaNs)
    revision: Optional[str] = None
    variant: Optional[str] = None  # "fp16" downloads the half-precision files
    dtype: str = "auto"  # frozen weights: auto follows trainer.precision; fp32 | fp16 | bf16 to force
    prediction_type: str = "epsilon"  # built models only; pretrained ones keep their scheduler's
    latents: str = "sample"  # training latents: a draw from the VAE posterior (diffusers' scripts) | mean
    resolution: int = 512  # default data.resolution for this model
    guidance_scale: float = 7.5  # every render's default: training grids, sample.py, evaluation, the model card
    clip_vision: str = "openai/clip-vit-large-patch14"  # image encoder of the action feature and similarity loss
    # (released code)


@dataclass
class ActionConfig:
    name: str = MISSING  # names the run directory: letters, digits, '_', '-', '.'
    image_dir: str = MISSING  # the exemplar images (a folder, or pkg://...)
    placeholder_tokens: List[str] = MISSING
    init_word: str = MISSING  # the word the placeholders start from
    caption: str = MISSING  # stage 2's caption; {} is where the tokens go
    templates: List[str] = MISSING  # stage 1's captions (textual-inversion style); {} is where the tokens go
    eval_prompts: List[str] = MISSING  # rendered into sample grids and samples_final.png


@dataclass
class ActionSpaceConfig:
    mode: str = "per_slot"  # per_slot: one PCA basis per slot, from the phrases' k-th word piece (released code) |
    # pooled: one basis from all word pieces, shared by the slots
    max_components: Any = 512  # K, an int (every slot) or a list (one per slot, checked in action_space); fewer
    # when the phrase embeddings have lower rank (tiny model: 32)
    dedupe: bool = True  # drop repeated word-piece rows so frequent pieces do not dominate the PCA
    phrases: Optional[str] = None  # null: the packaged 1038-phrase list; or a group<TAB>phrase file (pkg://... or
    # a path)
    offset: str = "init_word"  # embedding = offset + coeffs @ basis; init_word | mean | zero
    init_scale: float = 1.0  # factor on the MLP output layer's Xavier init (1: released code; 0.1: start near
    # offset)
    shared_mlp: bool = False  # one coefficient MLP for all slots (false: one per slot, released code)
    mlp_per_encoder: bool = True  # SDXL: each text encoder gets MLPs over its slice of the joint basis (released
    # code)
    basis: str = "pca"  # pca | random (ablation: random orthonormal basis of the same K)
    design_words: Optional[List[str]] = None  # actor words of the design check; null: no check
    # Project each slot's basis off the span of design_words' embeddings (twinact/space/appearance.py): actor words
    # then lie wholly outside the space. Not in the paper.
    remove_appearance: bool = False
    # Warn when the design check finds the actor words inside the span (false where that is known and measured, as
    # for the shipped StickWorld world: stickworld/README.md); the check is logged to train.log either way.
    warn_appearance: bool = True


@dataclass
class Stage1Config:
    steps: int = 200  # placeholder vectors only (textual-inversion-style captions)
    lr: float = 2e-4  # coefficient MLPs (or free vectors), in both stages


@dataclass
class Stage2Config:
    steps: int = 600  # vectors + UNet LoRA, plain caption (skipped without LoRA)
    lora_lr: float = 2e-4


@dataclass
class MethodConfig:
    name: str = MISSING
    vectors: str = "space"  # placeholder = offset + coefficients @ basis (space) | free vectors (free) | frozen (fixed)
    coefficients: str = "mlp"  # space only: mlp (from the action feature) | direct (free coefficients, ablation)
    lora: bool = True  # stage 2 trains UNet LoRA (settings: lora=); false: no LoRA and no stage 2
    similarity_weight: float = 0.0  # weight of the action-similarity loss (settings: loss.similarity.*); 0: off
    init_word: str = II("action.init_word")  # the word the placeholders start from (and the init_word offset)
    max_norm: Optional[Any] = None  # cap on placeholder vector norms: null (released code) | vocab (largest table
    # row) | a number
    stage1: Stage1Config = field(default_factory=Stage1Config)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    warmup_steps: int = 0  # linear warm-up at the start of each stage
    weight_decay: float = 1e-2
    use_8bit_adam: bool = False  # bitsandbytes AdamW8bit (install bitsandbytes; GPU only)


@dataclass
class LoraConfig:
    rank: int = 8  # released code's
    alpha: Optional[float] = None  # null: alpha = rank (scale 1)
    dropout: float = 0.0
    # every attention projection of self- and cross-attention (released code)
    targets: List[str] = field(default_factory=lambda: ["to_q", "to_k", "to_v", "to_out.0"])
    init: str = "gaussian"  # peft init: A random, B zero (the adapter starts as the identity)


@dataclass
class SimilarityConfig:
    start: float = 0.4  # on after this fraction of each stage
    min_timestep: int = 800  # only samples with t > this
    decode: str = "x0"  # x0: decode the predicted clean latent; eps_raw: decode the raw prediction (released code)
    encoder: str = II("model.clip_vision")  # frozen image encoder (any CLIPVisionModel id, or tiny)


@dataclass
class LossConfig:
    min_snr_gamma: Optional[float] = None  # e.g. 5.0 for Min-SNR weighting; null: plain MSE
    similarity: SimilarityConfig = field(default_factory=SimilarityConfig)


@dataclass
class DataConfig:
    resolution: int = II("model.resolution")  # exemplars are resized (short side) and centre-cropped to this
    batch_size: int = 4  # per device
    flip_p: float = 0.0  # horizontal flips change left/right actions: off by default
    num_workers: int = 0  # samples are indices into cached latents: workers buy nothing


@dataclass
class CallbacksConfig:
    checkpoint_every_n_steps: int = 100  # <run>/checkpoints/stepNNNNNN.ckpt, plus last.ckpt
    samples_every_n_steps: int = 200  # sample grid of the eval prompts during training; 0 disables
    samples_num_images: int = 2  # images per eval prompt (seeds seed, seed+1, ...)
    sample_steps: int = 25  # DDIM steps
    guidance_scale: float = II("model.guidance_scale")


SCHEMAS = {"model": ModelConfig, "action": ActionConfig, "action_space": ActionSpaceConfig, "method": MethodConfig,
           "lora": LoraConfig, "loss": LossConfig, "data": DataConfig, "callbacks": CallbacksConfig}


def typed(group: str, node):
    """A group's node (composed, or read back from a run's config.yaml) as its schema's dataclass, interpolations
    resolved: what the code below the config reads."""
    return OmegaConf.to_object(OmegaConf.merge(SCHEMAS[group], OmegaConf.to_container(node, resolve=True)))


def register() -> None:
    """Store each schema as `<group>/schema` (idempotent: storing again replaces)."""
    store = ConfigStore.instance()
    for group, node in SCHEMAS.items():
        store.store(group=group, name="schema", node=node)


register()
