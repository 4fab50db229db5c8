"""The export's model card, `export/README.md`: which base model, what to type, how to load it, how it was trained.

Its diffusers snippet is the test's own code path (tests execute it and compare the image with `sample.py`'s), so
what the card promises is checked, not only printed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from twinact.release.webui import EMBEDDING_DIR, LORA_DIR, webui_name
from twinact.runs.commands import command, override
from twinact.runs.files import EXPORT_INFO
from twinact.space.placeholder import token_filename

CARD = "README.md"


def diffusers_snippet(info: dict, export_dir: Path) -> str:
    """Python that renders the card's example prompt with plain diffusers calls (runnable as written)."""
    xl = info["sdxl"]
    pipe_cls = "StableDiffusionXLPipeline" if xl else "StableDiffusionPipeline"
    lines = ["from pathlib import Path", "", "import torch",
             f"from diffusers import DDIMScheduler, {pipe_cls}", "",
             f"export = Path({str(export_dir.resolve())!r})  # this folder",
             f"pipe = {pipe_cls}.from_pretrained({info['base_model']!r})",
             "pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)  # twinact renders with DDIM"]
    # the export's own file names (token_filename), not a rule re-derived here
    files = {t: f"{token_filename(t)}.safetensors" for t in info["tokens"]}
    if xl:
        lines += ["from safetensors.torch import load_file", "",
                  f"for token, name in {files!r}.items():",
                  "    rows = load_file(export / 'textual_inversion' / name)",
                  "    pipe.load_textual_inversion(rows['clip_l'], token=token, text_encoder=pipe.text_encoder,"
                  " tokenizer=pipe.tokenizer)",
                  "    pipe.load_textual_inversion(rows['clip_g'], token=token, text_encoder=pipe.text_encoder_2,"
                  " tokenizer=pipe.tokenizer_2)"]
    else:
        lines += [f"for name in {list(files.values())!r}:",
                  "    pipe.load_textual_inversion(export / 'textual_inversion' / name)"]
    if info.get("lora"):
        lines.append("pipe.load_lora_weights(export)")
    size = info["resolution"]
    lines += [f"image = pipe({info['example_prompt']!r}, num_inference_steps={info['steps']}, "
              f"guidance_scale={info['guidance_scale']}, height={size}, width={size},",
              "             generator=torch.Generator().manual_seed(0)).images[0]",
              "image.save('example.png')"]
    return "\n".join(lines)


def _recipe(recorded: dict) -> list[str]:
    """The card's recipe table, from the run's recorded config (`twinact.json`'s `config`)."""
    m, data, lora, trainer = recorded["method"], recorded["data"], recorded["lora"], recorded["trainer"]
    rows = [("method", m["name"]), ("stage 1", f"{m['stage1']['steps']} steps, lr {m['stage1']['lr']}"),
            ("stage 2", f"{m['stage2']['steps']} steps, LoRA lr {m['stage2']['lora_lr']}"),
            ("LoRA", f"rank {lora['rank']}, alpha {lora['alpha'] or lora['rank']}" if m.get("lora") else "none"),
            ("similarity loss weight", m.get("similarity_weight", 0)),
            ("batch", f"{data['batch_size']} x {trainer.get('accumulate_grad_batches', 1)} accumulated"),
            ("resolution", data["resolution"]), ("precision", trainer["precision"]), ("seed", recorded["seed"]),
            ("exemplars", recorded["action"]["image_dir"]), ("init word", m.get("init_word"))]
    return ["| setting | value |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in rows]


def _evaluation(metrics: dict | None, export_dir: Path) -> list[str]:
    if not metrics:
        evaluate = command("evaluate.py", override("run", export_dir.resolve().parent))
        return [f"No evaluation yet: `{evaluate}` adds its table here."]
    agg = metrics["aggregate"]
    names = [k for k in agg if not k.endswith("_ci95")]
    return [f"Evaluation suite `{metrics['eval_suite']['name']}` (mean ± 95% CI over evaluation seeds):", "",
            "| metric | mean | 95% CI |", "| --- | --- | --- |"] + [
        f"| {k} | {agg[k]:.4f} | ± {agg[k + '_ci95']:.4f} |" for k in names]


def card_markdown(info: dict, export_dir: Path, metrics: dict | None = None) -> str:
    """The card's Markdown for an export whose `twinact.json` is `info`."""
    name, tokens = webui_name(info["action"]), " ".join(info["tokens"])
    webui_prompt = info["example_prompt"].replace(tokens, name)
    base = info["base_model"]
    lines = [f"# {info['action']}: a twinact action ({info['config']['method']['name']})", "",
             f"- Base model: `{base}` ({'SDXL' if info['sdxl'] else 'SD1.5'} layout)" if base else
             f"- Base model: built in code (`{info['model'].get('builder') or 'tiny'}`, random weights; not loadable "
             "by `from_pretrained`: for tests only)",
             f"- Tokens: `{tokens}`; example prompt: `{info['example_prompt']}`",
             f"- Rendered by twinact with DDIM, {info['steps']} steps, guidance {info['guidance_scale']}.", "",
             "## diffusers", "", "```python", diffusers_snippet(info, export_dir), "```", "",
             "## AUTOMATIC1111 / Forge", "",
             f"Copy `{EMBEDDING_DIR}/{name}.safetensors` to `embeddings/`"
             + (f" and `{LORA_DIR}/{name}.safetensors` to `models/Lora/`" if info.get("lora") else "")
             + f"; prompt: `{webui_prompt}" + (f" <lora:{name}:1>`" if info.get("lora") else "`") + ".",
             "The web UIs sample with their own schedulers, so images differ from twinact's in detail."
             + (" SDXL: they pool the second text encoder at the end-of-text token, while diffusers (and twinact's "
                "training) pool at the last placeholder." if info["sdxl"] else ""), "",
             "## ComfyUI", "",
             f"Copy the embedding to `models/embeddings/` and write `embedding:{name}` in the prompt"
             + (f"; load `{LORA_DIR}/{name}.safetensors` from `models/loras/` with a LoraLoader at strength 1."
                if info.get("lora") else "."), "",
             "## Training recipe", "", *_recipe(info["config"]), "",
             "## Evaluation", "", *_evaluation(metrics, export_dir), ""]
    return "\n".join(lines)


def write_card(export_dir: Path, metrics: dict | None = None, location: Path | None = None) -> Path:
    """(Re)write `export_dir/README.md` from its `twinact.json` (atomically: a reader never sees half a card).

    Args:
        location: where the export will live, for the snippet's paths (default `export_dir`; an export being
            written sits in a temporary folder until it is renamed into place).
    """
    export_dir = Path(export_dir)
    info = json.loads((export_dir / EXPORT_INFO).read_text())
    tmp = export_dir / f".{CARD}.tmp"
    tmp.write_text(card_markdown(info, Path(location or export_dir), metrics))
    tmp.chmod(0o644)
    os.replace(tmp, export_dir / CARD)
    return export_dir / CARD
