"""Offline assets: the real CLIP tokenizer, rebuilt from a registry package.

No model hub is reachable on our machines, but the open-clip-torch wheel on PyPI carries the exact BPE vocabulary
that Stable Diffusion's CLIP tokenizer uses. `make install` downloads that wheel (never imported: open_clip needs
torchvision) and converts the vocabulary to the `vocab.json` + `merges.txt` layout `CLIPTokenizer.from_pretrained`
reads. Run as `python -m twinact.model.assets` to fetch; `clip_tokenizer_dir()` finds the result at run time.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from twinact.errors import TwinActError
from twinact.paths import cache_dir

CLIP_VOCAB_SIZE = 49408  # 256 bytes + 256 word-final bytes + 48894 merges + 2 special tokens
_NUM_MERGES = 49152 - 256 - 2
_BPE_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"


def clip_tokenizer_dir() -> Path:
    """The converted CLIP tokenizer folder; a clear error if `make install` has not fetched it."""
    path = cache_dir() / "clip_tokenizer"
    if not (path / "vocab.json").is_file():
        raise TwinActError(
            f"The CLIP tokenizer assets are missing ({path}). Fetch them with `make install` "
            "(or `python -m twinact.model.assets`)."
        )
    return path


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable-character table (the BPE alphabet)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


def convert_bpe(bpe_gz: bytes, out_dir: Path) -> None:
    """Write `vocab.json`, `merges.txt` and the tokenizer config from CLIP's gzipped BPE file."""
    lines = gzip.decompress(bpe_gz).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : _NUM_MERGES + 1]]
    alphabet = list(_bytes_to_unicode().values())
    tokens = alphabet + [c + "</w>" for c in alphabet] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    # CLIPTokenizer skips the first line of merges.txt (a version header), as in the original file.
    merges_text = "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n"
    (out_dir / "merges.txt").write_text(merges_text, encoding="utf-8")
    config = {
        "model_max_length": 77,  # SD's text encoders have 77 positions
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "do_lower_case": True,
        "tokenizer_class": "CLIPTokenizer",
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


def fetch_clip_tokenizer(force: bool = False) -> Path:
    """Download the open-clip-torch wheel (no deps, not installed) and convert its vocabulary. Idempotent."""
    out_dir = cache_dir() / "clip_tokenizer"
    if (out_dir / "vocab.json").is_file() and not force:
        return out_dir
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "open-clip-torch", "-d", tmp]
        subprocess.run(cmd, check=True)
        wheel = next(Path(tmp).glob("open_clip_torch-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            bpe_gz = zf.read(_BPE_MEMBER)
    convert_bpe(bpe_gz, out_dir)
    check_tokenizer(out_dir)
    return out_dir


def check_tokenizer(path: Path) -> None:
    """Load through `from_pretrained` and assert the real vocabulary size (transformers 5 can silently build a
    2-token vocabulary when the files are passed the wrong way)."""
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(str(path))
    if len(tok) != CLIP_VOCAB_SIZE:
        raise TwinActError(f"CLIP tokenizer at {path} has {len(tok)} tokens, expected {CLIP_VOCAB_SIZE}.")


if __name__ == "__main__":
    print(f"CLIP tokenizer ready in {fetch_clip_tokenizer(force='--force' in sys.argv)}")
