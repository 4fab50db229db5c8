"""The StickWorld CLIP: image and text encoders in one joint space, the counterpart of CLIP ViT-L/14.

A transformers :class:`~transformers.CLIPModel` small enough to train on one CPU core: a ViT over 64 px images
(8 px patches, so 64 tokens) and a text transformer over the real CLIP tokenizer (49,408 tokens), both projected to
one joint space. It is saved as a plain folder (fp32 safetensors, the tokenizer, a :class:`CLIPImageProcessor`), so
``CLIPModel``, ``CLIPVisionModel``, ``CLIPVisionModelWithProjection`` and ``CLIPImageProcessor`` all load it with
``from_pretrained`` as they would ``openai/clip-vit-large-patch14``.

Only the token-embedding rows of words StickWorld captions use start random; every other row starts (and, having no
gradient, stays) at zero, so the 49,408-row table compresses to almost nothing in git and in a wheel. The images
are normalized with CLIP's own mean and std (:data:`twinact.space.action_encoder.CLIP_MEAN`), because twinact's encoders
apply exactly that normalization to any CLIP folder they load.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import torch
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

from stickworld.world.actions import ACTIONS
from stickworld.world.actors import ACTORS
from stickworld.world.captions import ACTOR_TEMPLATES, SCENE_PHRASES
from stickworld.world.drawing import CAPTION_TEMPLATES
from stickworld.world.units import UNITS, VIEW_PHRASE
from twinact.model.assets import clip_tokenizer_dir
from twinact.space.action_encoder import CLIP_MEAN, CLIP_STD

IMAGE_SIZE = 64
# How the model is asked about an image's actor or action; training shows both forms, quality measures with them.
ACTOR_PROMPT = "a photo of {actor}"
ACTION_PROMPT = "a photo of someone {action}"
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json")
SOMEONE = "someone"  # the subject of captions that name the action but not the actor
# `small` is the shipped model (4.2 M parameters, 3.2 M of them the mostly zero token table; 4,000 steps of batch
# 128 took 87 minutes on one core); `tiny` is for tests.
SIZES = {
    "small": dict(vision_width=128, vision_layers=4, text_width=64, text_layers=3, projection=128),
    "tiny": dict(vision_width=32, vision_layers=1, text_width=16, text_layers=1, projection=16),
}


def tokenizer() -> CLIPTokenizer:
    """The real CLIP tokenizer (vocabulary 49,408), from twinact's offline assets."""
    return CLIPTokenizer.from_pretrained(str(clip_tokenizer_dir()))


def vocabulary_ids(tok: CLIPTokenizer) -> list[int]:
    """Token ids of every word a StickWorld CLIP caption can contain: actors, every action phrase (held-out ones
    too: this CLIP, like the real one, knows their names), unit phrases, views, scenes and caption templates."""
    texts = [a.caption for a in ACTORS.values()] + [a.phrase for a in ACTIONS.values()]
    texts += [u.phrase for u in UNITS] + list(VIEW_PHRASE.values()) + list(SCENE_PHRASES.values())
    texts += [t.format(actor=SOMEONE, action="") for t in CAPTION_TEMPLATES + ACTOR_TEMPLATES]
    texts += [ACTOR_PROMPT.format(actor=""), ACTION_PROMPT.format(action=""), ","]
    ids = {tok.bos_token_id, tok.eos_token_id}
    for text in texts:
        ids.update(tok(text, add_special_tokens=False).input_ids)
    return sorted(ids)


def build(size: str = "small", seed: int = 0) -> tuple[CLIPModel, CLIPTokenizer]:
    """An untrained StickWorld CLIP of ``size`` (:data:`SIZES`), weights fixed by ``seed``, and its tokenizer."""
    s, tok = SIZES[size], tokenizer()
    # gelu, not CLIP's quick_gelu: one fused op, which cut the CPU step by a tenth.
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=s["text_width"], intermediate_size=4 * s["text_width"],
                         num_hidden_layers=s["text_layers"], num_attention_heads=4, max_position_embeddings=77,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                         hidden_act="gelu", projection_dim=s["projection"]),
        vision_config=dict(hidden_size=s["vision_width"], intermediate_size=4 * s["vision_width"],
                           num_hidden_layers=s["vision_layers"], num_attention_heads=4, image_size=IMAGE_SIZE,
                           patch_size=8, hidden_act="gelu", projection_dim=s["projection"]),
        projection_dim=s["projection"],
    )
    torch.manual_seed(seed)
    model = CLIPModel(config)
    table = model.text_model.embeddings.token_embedding.weight
    with torch.no_grad():
        used = torch.tensor(vocabulary_ids(tok))
        keep = table[used].clone()
        table.zero_()
        table[used] = keep
    return model, tok


def image_processor() -> CLIPImageProcessor:
    """The preprocessing the model was trained with: 64 px, bicubic, CLIP's mean and std."""
    return CLIPImageProcessor(size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
                              image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD), resample=3)


_MEAN = np.asarray(CLIP_MEAN, dtype=np.float32) * 255
_STD = np.asarray(CLIP_STD, dtype=np.float32) * 255


def pixels(images) -> torch.Tensor:
    """64 px PIL images -> [B, 3, 64, 64] model input, equal to :func:`image_processor`'s but without its per-image
    Python overhead (a test keeps the two equal)."""
    arr = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) for im in images])
    return torch.from_numpy((arr - _MEAN) / _STD).permute(0, 3, 1, 2).contiguous()


def text_inputs(tok: CLIPTokenizer, texts: list[str]) -> dict[str, torch.Tensor]:
    """Token ids padded to the longest caption: the attention is causal and the pooled token is the first end of
    text, so padding further (twinact pads to 77) gives the same embedding."""
    enc = tok(list(texts), padding="longest", truncation=True, max_length=77, return_tensors="pt")
    return {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask}


@torch.no_grad()
def embed_images(model: CLIPModel, images, batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit-norm joint-space embeddings [N, projection] and the vision tower's pooled output [N, width] (what twinact's
    `ClipImageEncoder` feeds the action feature and the similarity loss)."""
    joint, pooled = [], []
    for i in range(0, len(images), batch):
        out = model.vision_model(pixel_values=pixels(images[i:i + batch]))
        pooled.append(out.pooler_output)
        joint.append(model.visual_projection(out.pooler_output))
    return normalize(torch.cat(joint)), torch.cat(pooled)


@torch.no_grad()
def embed_texts(model: CLIPModel, tok: CLIPTokenizer, texts: list[str], batch: int = 256) -> torch.Tensor:
    """Unit-norm joint-space embeddings [N, projection] of captions."""
    out = []
    for i in range(0, len(texts), batch):
        pooled = model.text_model(**text_inputs(tok, texts[i:i + batch])).pooler_output
        out.append(model.text_projection(pooled))
    return normalize(torch.cat(out))


def normalize(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


def save(model: CLIPModel, folder: Path) -> None:
    """Write ``model`` (fp32 safetensors), the tokenizer and the image processor config into ``folder``."""
    model.to(torch.float32).save_pretrained(folder, safe_serialization=True)
    # The tokenizer as twinact's assets hold it (vocab + merges, 1.5 MB); save_pretrained writes a 3.6 MB
    # tokenizer.json of the same vocabulary.
    for name in TOKENIZER_FILES:
        shutil.copyfile(clip_tokenizer_dir() / name, Path(folder) / name)
    image_processor().save_pretrained(folder)


def load(folder: str | Path) -> tuple[CLIPModel, CLIPTokenizer]:
    """A saved StickWorld CLIP, in eval mode, and its tokenizer."""
    model = CLIPModel.from_pretrained(str(folder), dtype=torch.float32).eval()
    return model, CLIPTokenizer.from_pretrained(str(folder))


def machine() -> str:
    """The CPU and thread count, for the record."""
    name = "CPU"
    try:
        name = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}, {os.cpu_count()}-core CPU, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}"
