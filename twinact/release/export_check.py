"""Check an export's files against the pipeline they are about to be loaded into, before loading any.

diffusers and safetensors report a truncated file, a file from another run or a file made for another base model as
a traceback from deep inside loading (or, for LoRA keys that match nothing, as a notice and an unchanged model). Here
each is one `TwinActError` naming the file, what is wrong with it, and how to get a good one back. Before training,
`check_path_limits` makes sure the file names an export will have fit the filesystem.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors import safe_open

from twinact.errors import TwinActError
from twinact.release.webui import SDXL_KEYS, webui_name
from twinact.runs.files import EXPORT_INFO, EXPORT_STATE, LORA_WEIGHTS
from twinact.space.placeholder import token_filename

INFO_KEYS = ("tokens", "sdxl", "lora")


def _reexport(export_dir: Path) -> str:
    return (f"Move {export_dir} away and relaunch the run's training command with run_dir={export_dir.parent} "
            "resume=auto: it exports again from the last checkpoint.")


def read_info(export_dir: Path) -> dict:
    """`twinact.json`, with the keys loading needs."""
    path = export_dir / EXPORT_INFO
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise TwinActError(f"{path} is not readable JSON ({type(err).__name__}). {_reexport(export_dir)}") from None
    missing = [k for k in INFO_KEYS if k not in info] if isinstance(info, dict) else list(INFO_KEYS)
    if missing:
        raise TwinActError(f"{path} lacks {', '.join(missing)}: not a twinact export. {_reexport(export_dir)}")
    return info


def _shapes(path: Path, export_dir: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape, read from the file's header (no tensor is loaded)."""
    if not path.is_file():
        raise TwinActError(f"{path} is missing from the export. {_reexport(export_dir)}")
    try:
        with safe_open(str(path), "pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types for every kind of damage
        raise TwinActError(f"{path} is not a readable safetensors file ({str(err).splitlines()[0][:120]}). "
                           f"{_reexport(export_dir)}") from None


def _mismatch(path: Path, export_dir: Path, what: str) -> TwinActError:
    return TwinActError(f"{path} {what}: it was made for another base model or run, not for {export_dir.parent}. "
                        f"{_reexport(export_dir)}")


def check_export(export_dir: Path, pipe, model: dict | None = None) -> dict:
    """Raise one `TwinActError` for the first file of `export_dir` that `pipe` could not load as this run's action;
    returns `twinact.json`.

    Args:
        pipe: the SD or SDXL pipeline the export goes into (its text encoders' widths and its UNet's layers).
        model: the run's `model` config (config.yaml), which the export's own record of its base model must match.
    """
    export_dir = Path(export_dir)
    info = read_info(export_dir)
    if model is not None and info.get("model") is not None and info["model"] != model:
        raise _mismatch(export_dir / EXPORT_INFO, export_dir,
                        f"names base model {info['model'].get('name')!r} ({info.get('base_model')})")
    encoders = [pipe.text_encoder] + ([pipe.text_encoder_2] if info["sdxl"] else [])
    if info["sdxl"] != (getattr(pipe, "text_encoder_2", None) is not None):
        raise _mismatch(export_dir / EXPORT_INFO, export_dir, f"is an {'SDXL' if info['sdxl'] else 'SD1.5'} export")
    dims = [enc.get_input_embeddings().weight.shape[1] for enc in encoders]
    for token in info["tokens"]:
        path = export_dir / "textual_inversion" / f"{token_filename(token)}.safetensors"
        expected = dict(zip(SDXL_KEYS, [(d,) for d in dims])) if info["sdxl"] else {token: (dims[0],)}
        found = _shapes(path, export_dir)
        if found != expected:
            raise _mismatch(path, export_dir, f"holds {found} where {expected} was expected")
    state = export_dir / EXPORT_STATE
    if state.is_file():
        shapes = _shapes(state, export_dir)
        for i, dim in enumerate(dims):
            got = shapes.get(f"embeddings.{i}")
            if got is not None and got != (len(info["tokens"]), dim):
                raise _mismatch(state, export_dir, f"holds embeddings.{i} of shape {list(got)} where "
                                                   f"{[len(info['tokens']), dim]} was expected")
    if info["lora"]:
        _check_lora(export_dir / LORA_WEIGHTS, export_dir, pipe.unet)
    return info


def _check_lora(path: Path, export_dir: Path, unet) -> None:
    """Every `unet.<layer>.lora_A/B.weight` names a layer of `unet` and fits its input / output width."""
    shapes = _shapes(path, export_dir)
    if not shapes:
        raise _mismatch(path, export_dir, "holds no tensors")
    for key, shape in shapes.items():
        layer, _, part = key.removeprefix("unet.").rpartition(".lora_")
        if not key.startswith("unet.") or part not in ("A.weight", "B.weight"):
            raise _mismatch(path, export_dir, f"holds {key}, not a UNet LoRA weight")
        try:
            module = unet.get_submodule(layer)
        except AttributeError:
            raise _mismatch(path, export_dir, f"holds {key} for a layer this UNet does not have") from None
        width = (getattr(module, "in_features", None) or getattr(module, "in_channels", None) if part[0] == "A"
                 else getattr(module, "out_features", None) or getattr(module, "out_channels", None))
        if width is not None and shape[1 if part[0] == "A" else 0] != width:
            raise _mismatch(path, export_dir, f"holds {key} of shape {list(shape)}, which does not fit that layer "
                                              f"(width {width})")


SUFFIX_ROOM = len("-999")  # what `allocate_run_dir` may append to a used run dir's last folder


def check_path_limits(run_dir: Path, action_name: str, tokens: list[str]) -> None:
    """Every file a run writes gets a name and a path the filesystem takes: checked before training, since a name
    refused at the export would fail a finished run (and every resume of it).

    The longest file names are the export's web-UI files (`<action>.safetensors`) and token files
    (`<token>.safetensors`); the longest path is a web-UI file inside the export while it is built
    (`<run>/.export.partial/webui/embeddings/...`).
    """
    run_dir = run_dir.absolute()
    existing = next(p for p in [run_dir, *run_dir.parents] if os.path.exists(p))  # False for a too long name
    name_max, path_max = os.pathconf(existing, "PC_NAME_MAX"), os.pathconf(existing, "PC_PATH_MAX")
    webui = f"{webui_name(action_name)}.safetensors"
    if len(webui.encode()) > name_max:
        raise TwinActError(f"action.name is {len(action_name)} characters; it names the export's {webui[:24]}... "
                           f"and file names take at most {name_max} bytes here: keep it to "
                           f"{name_max - len('.safetensors')} or fewer, e.g. action.name={action_name[:40]}.")
    for token in tokens:
        if len(f"{token_filename(token)}.safetensors".encode()) > name_max:
            raise TwinActError(f"The placeholder token {token[:24]}... names a file of more than {name_max} bytes "
                               "(the limit here); use short tokens, e.g. action.placeholder_tokens='[<a1>,<a2>,<a3>]'.")
    # the last folder keeps room for the -N a used run dir gets
    limits = [(part, name_max) for part in run_dir.parts[1:-1]] + [(run_dir.name, name_max - SUFFIX_ROOM)]
    long = [(part, limit) for part, limit in limits if len(part.encode()) > limit]
    longest = run_dir / ".export.partial" / "webui" / "embeddings" / webui
    if long or len(str(longest).encode()) >= path_max:
        short = Path(*(p[:40] for p in run_dir.parts)) if long else Path("runs") / run_dir.name[:40]
        what = (f"a folder name of {len(long[0][0].encode())} bytes ({long[0][0][:24]}...), over the {long[0][1]} "
                "it can have here" if long else f"files whose paths exceed the {path_max} bytes a path takes here")
        raise TwinActError(f"The run dir {str(run_dir)[:60]}... has {what}; use a shorter one, e.g. run_dir={short}.")
