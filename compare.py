"""Compare runs: `python compare.py run_group=ablate_lora_rank` (or runs=[dir,...], source=wandb)."""

import sys

import hydra

from twinact.runs.cli import check_command_line, user_errors


@hydra.main(config_path="conf", config_name="compare", version_base="1.3")
def main(cfg) -> None:
    # here, once Hydra has parsed the command line: torch and diffusers take seconds that --help need not
    from twinact.eval.compare import compare

    with user_errors():
        table, out = compare(cfg.run_group, list(cfg.runs) if cfg.runs else None, cfg.source, cfg.root, cfg.out_dir,
                             cfg.project, cfg.entity, cfg.include)
    print(table)
    print(f"Wrote {out}/compare.md, compare.csv, compare.png")


if __name__ == "__main__":
    check_command_line(sys.argv[1:], "compare")
    main()
