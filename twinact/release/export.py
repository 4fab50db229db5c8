"""Export a trained action as files plain diffusers and the web UIs load, with a model card.

Once trained, the coefficients are fixed, so each placeholder collapses to one embedding vector per text encoder:
`export/textual_inversion/<token>.safetensors` (SD1.5: diffusers' one-key format; SDXL: `clip_l` + `clip_g` keys, the
usual SDXL embedding layout), `export/pytorch_lora_weights.safetensors` (diffusers LoRA format with its adapter
metadata), `export/webui/` (kohya LoRA and one multi-vector embedding named after the action, see `webui.py`),
`export/README.md` (the model card) and `export/twinact_state.safetensors` + `twinact.json` (MLPs, action feature,
coefficients, basis key, the base model as `from_pretrained` takes it).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from twinact.errors import NonFiniteError, WriteError
from twinact.model.lora import lora_state_dict
from twinact.model.models import pipeline_class
from twinact.release.export_check import check_export
from twinact.release.model_card import write_card
from twinact.release.webui import SDXL_KEYS, write_webui_files
from twinact.runs.files import EXPORT_INFO, EXPORT_STATE, LORA_WEIGHTS
from twinact.space.placeholder import token_filename


@torch.no_grad()
def export_action(out_dir: Path, *, tokens: list[str], vectors, embeddings: list[torch.Tensor], unet, lora_config,
                  meta: dict) -> Path:
    """Write the export folder atomically (built beside it, then renamed into place); returns it.

    An export marks a finished run, so a half-written one must never exist under `out_dir`: a crash while exporting
    leaves only the hidden `.<name>.partial` folder, which the next attempt replaces. Nothing non-finite is written.

    Args:
        vectors: the trainable vector modules (their state and coefficients go to `twinact_state.safetensors`).
        embeddings: [slots, D_i] per text encoder, the final placeholder embeddings.
        meta: goes to `twinact.json`; needs `action`, `base_model`, `example_prompt`, `steps`, `guidance_scale`,
            `resolution`, `model` and `config` (the card is written from it).
    """
    if (out_dir / EXPORT_INFO).is_file():
        raise FileExistsError(f"{out_dir} already holds an export")
    is_xl = len(embeddings) > 1
    # clone: SDXL's two MLP sets share one action feature, and safetensors refuses shared storage
    state = {f"vectors.{k}": v.detach().cpu().clone() for k, v in vectors.state_dict().items()}
    for i, source in enumerate(vectors):
        if hasattr(source, "coefficients"):  # action-space methods; baselines' free vectors have none
            state[f"coefficients.{i}"] = source.coefficients().detach().float().cpu().contiguous()
    for i, emb in enumerate(embeddings):
        state[f"embeddings.{i}"] = emb.detach().float().cpu().contiguous()
    lora = lora_state_dict(unet) if lora_config is not None else {}
    bad = [k for k, v in {**state, **lora}.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise NonFiniteError(f"Refusing to export non-finite weights ({', '.join(bad[:4])}); nothing was written.")
    partial = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:  # a full disk or a quota: one error naming the export; the partial folder is removed to free its space
        ti_dir = partial / "textual_inversion"
        ti_dir.mkdir(parents=True)
        for slot, token in enumerate(tokens):
            rows = [e[slot].detach().float().cpu().contiguous() for e in embeddings]
            content = dict(zip(SDXL_KEYS, rows)) if is_xl else {token: rows[0]}
            save_file(content, str(ti_dir / f"{token_filename(token)}.safetensors"))
        if lora_config is not None:
            pipeline_class(is_xl).save_lora_weights(
                partial, unet_lora_layers=lora, safe_serialization=True,
                unet_lora_adapter_metadata=_stable(lora_config.to_dict()),
            )
        write_webui_files(partial, meta["action"], embeddings, lora, lora_config)
        save_file(state, str(partial / EXPORT_STATE))
        info = {"tokens": tokens, "sdxl": is_xl, "lora": lora_config is not None, **meta}
        (partial / EXPORT_INFO).write_text(json.dumps(info, indent=2, default=str))
        write_card(partial, location=out_dir)
        for path in [partial, *partial.rglob("*")]:  # colleagues read exports (safetensors writes them 0600)
            path.chmod(0o755 if path.is_dir() else 0o644)
    except (OSError, SafetensorError) as err:
        shutil.rmtree(partial, ignore_errors=True)
        raise WriteError.of(getattr(err, "filename", None) or out_dir, err) from None
    if out_dir.exists():  # an interrupted export written in place by an older twinact (it has no twinact.json)
        shutil.rmtree(out_dir)
    os.replace(partial, out_dir)
    return out_dir


def _stable(config: dict) -> dict:
    """The LoRA config with its sets sorted: a set's order changes between processes (string hashing), and the same
    weights should export to the same bytes."""
    return {k: sorted(v) if isinstance(v, set) else v for k, v in config.items()}


def load_into_pipeline(pipe, export_dir: Path, model: dict | None = None) -> list[str]:
    """Load an export into an SD or SDXL pipeline with plain diffusers calls (its files checked first, against the
    run's `model` config when given); returns the placeholder tokens."""
    export_dir = Path(export_dir)
    info = check_export(export_dir, pipe, model)
    for token in info["tokens"]:
        path = export_dir / "textual_inversion" / f"{token_filename(token)}.safetensors"
        if info.get("sdxl"):
            rows = load_file(str(path))
            pipe.load_textual_inversion(rows["clip_l"], token=token, text_encoder=pipe.text_encoder,
                                        tokenizer=pipe.tokenizer)
            pipe.load_textual_inversion(rows["clip_g"], token=token, text_encoder=pipe.text_encoder_2,
                                        tokenizer=pipe.tokenizer_2)
        else:
            pipe.load_textual_inversion(str(path))
    if (export_dir / LORA_WEIGHTS).is_file():
        pipe.load_lora_weights(str(export_dir))
    return info["tokens"]
