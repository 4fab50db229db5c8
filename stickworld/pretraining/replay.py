"""Rebuild a base model from its record: every pretraining run of its ``pretrain.json``, oldest first.

``python -m stickworld.pretraining.replay --record stickworld/data/base/pretrain.json --root runs/stickworld/runs
--out runs/stickworld/model``
(``make stickworld``). An export's ``pretrain.json`` holds the command that made it and, under ``init``, the record
of the export it continued, down to the run that started from scratch. This reruns that chain: each run's
recorded options, with its work and export folders under ``--root/<n>`` and ``--init`` pointing at the run before.
What a run learns from is kept as recorded (batches, steps, rates, seeds); how it is computed is this call's
(``--device``, ``--workers``, ``--threads``; a recorded ``--stop-after`` deadline is dropped). A finished run is
skipped and an unfinished one resumes, so the command is rerun until it prints the final export.

On a CPU the batches and the arithmetic are those of a CPU-recorded run, bitwise; a run recorded on a GPU (bf16
autocast) is repeated on the same batches, not to the same bits.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from stickworld.pretraining import pretrain

MODULE = "python -m stickworld.pretraining.pretrain"
# Options a replay sets itself: where each run writes and starts from, and how it is computed.
PLACED = ("--work", "--out", "--init", "--snapshot")
RUNTIME = tuple(f"--{name}" for name in pretrain.RUNTIME) + ("--stop-after",)
FLAGS = ("--overwrite",)


def chain(record: dict) -> list[list[str]]:
    """The recorded runs' options, oldest first (the module's name left out)."""
    commands = []
    while record:
        commands.append(record["command"])
        record = record.get("init")
    runs = []
    for command in reversed(commands):
        if not command.startswith(MODULE + " "):
            raise SystemExit(f"this record holds a run made by another program ({command.split(' --')[0]!r}); only "
                             f"runs of `{MODULE}` can be replayed.")
        runs.append(shlex.split(command[len(MODULE):]))
    return runs


def kept_options(argv: list[str]) -> list[str]:
    """``argv`` without the options a replay sets itself."""
    out, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg in PLACED + RUNTIME:
            skip = True  # and its value
        elif arg not in FLAGS:
            out.append(arg)
    return out


def plan(record: dict, root: Path, runtime: list[str], final: Path | None = None) -> list[tuple[list[str], Path]]:
    """(``pretrain`` argv, its export folder) per recorded run, each continuing the export of the one before; the
    last exports to ``final`` when given."""
    runs, argvs = chain(record), []
    for n, argv in enumerate(runs):
        if n and "--init" not in argv:
            raise SystemExit(f"run {n} of the record starts from scratch although runs come before it; the record "
                             "is not one chain.")
        start = ["--init", str(root / str(n - 1) / "model")] if n else []
        out = final if final is not None and n == len(runs) - 1 else root / str(n) / "model"
        argvs.append((["--work", str(root / str(n) / "work"), "--out", str(out), *start, *kept_options(argv),
                       *runtime], out))
    return argvs


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--record", type=Path, required=True, help="an export's pretrain.json")
    p.add_argument("--root", type=Path, required=True, help="folder of the runs (<root>/<n>/work, <root>/<n>/model)")
    p.add_argument("--out", type=Path, default=None, help="where the last run exports (default: <root>/<last>/model)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = p.parse_args(argv)
    if not args.record.is_file():
        raise SystemExit(f"--record {args.record} is not a file; give an export's pretrain.json, e.g. "
                         "stickworld/data/base/pretrain.json.")
    runtime = ["--device", args.device, "--workers", str(args.workers)]
    runtime += ["--threads", str(args.threads)] if args.threads else []
    runs = plan(json.loads(args.record.read_text()), args.root, runtime, args.out)
    for n, (run, out) in enumerate(runs, 1):
        print(f"[{n}/{len(runs)}] {MODULE} {shlex.join(run)}", flush=True)
        if not args.dry_run and not (out / "model_index.json").is_file():
            pretrain.main(run)
    final = runs[-1][1]
    print(final)
    return final


if __name__ == "__main__":
    main()
