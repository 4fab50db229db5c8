"""Typed schemas of the config groups, registered in Hydra's ConfigStore as each group's `schema` option.

Every option file of a group starts from its schema (`defaults: [schema, _self_]`), so a file states only what
differs from the defaults below, a value of the wrong type (`lora.rank=abc`) fails when the config is composed, and
a misspelt key is refused instead of ignored. Per-key comments live in the option files users read and copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import II, MISSING


@dataclass
class ModelConfig:
    name: str = MISSING
    family: str = "sd15"
    pretrained: Optional[str] = None
    builder: Optional[str] = None
    vae: Optional[str] = None
    revision: Optional[str] = None
    variant: Optional[str] = None
    dtype: str = "auto"
    prediction_type: str = "epsilon"
    latents: str = "sample"
    resolution: int = 512
    guidance_scale: float = 7.5
    clip_vision: str = "openai/clip-vit-large-patch14"


@dataclass
class ActionSpaceConfig:
    mode: str = "per_slot"
    max_components: Any = 512  # int (every slot) or a list of ints (one per slot); checked in action_space
    dedupe: bool = True
    phrases: Optional[str] = None
    offset: str = "init_word"
    init_scale: float = 1.0
    shared_mlp: bool = False
    mlp_per_encoder: bool = True
    basis: str = "pca"
    design_words: Optional[List[str]] = None
    remove_appearance: bool = False


@dataclass
class Stage1Config:
    steps: int = 200
    lr: float = 2e-4  # coefficient MLPs (or free vectors), in both stages


@dataclass
class Stage2Config:
    steps: int = 600
    lora_lr: float = 2e-4


@dataclass
class MethodConfig:
    name: str = MISSING
    vectors: str = "space"
    coefficients: str = "mlp"
    lora: bool = True
    similarity_weight: float = 0.0
    init_word: str = II("action.init_word")
    max_norm: Optional[Any] = None  # null, "vocab" or a number
    stage1: Stage1Config = field(default_factory=Stage1Config)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    warmup_steps: int = 0
    weight_decay: float = 1e-2
    use_8bit_adam: bool = False


@dataclass
class LoraConfig:
    rank: int = 8
    alpha: Optional[float] = None
    dropout: float = 0.0
    targets: List[str] = field(default_factory=lambda: ["to_q", "to_k", "to_v", "to_out.0"])
    init: str = "gaussian"


@dataclass
class SimilarityConfig:
    start: float = 0.4
    min_timestep: int = 800
    decode: str = "x0"
    encoder: str = II("model.clip_vision")


@dataclass
class LossConfig:
    min_snr_gamma: Optional[float] = None
    similarity: SimilarityConfig = field(default_factory=SimilarityConfig)


@dataclass
class DataConfig:
    resolution: int = II("model.resolution")
    batch_size: int = 4
    flip_p: float = 0.0
    num_workers: int = 0


SCHEMAS = {"model": ModelConfig, "action_space": ActionSpaceConfig, "method": MethodConfig, "lora": LoraConfig,
           "loss": LossConfig, "data": DataConfig}


def register() -> None:
    """Store each schema as `<group>/schema` (idempotent: storing again replaces)."""
    store = ConfigStore.instance()
    for group, node in SCHEMAS.items():
        store.store(group=group, name="schema", node=node)


register()
