"""Score a trained action: `python evaluate.py run=<run dir> eval_suite=demo` (writes <run>/eval/)."""

import sys

import hydra

from twinact.runs.cli import check_command_line, user_errors


@hydra.main(config_path="conf", config_name="evaluate", version_base="1.3")
def main(cfg) -> None:
    # here, once Hydra has parsed the command line: torch and diffusers take seconds that --help need not
    from twinact.eval.evaluation import evaluate

    with user_errors():
        result = evaluate(cfg.run, cfg.eval_suite, device=cfg.device)
    for name, value in result["aggregate"].items():
        if not name.endswith("_ci95"):
            print(f"{name:16s} {value:.4f} ± {result['aggregate'][name + '_ci95']:.4f}")


if __name__ == "__main__":
    check_command_line(sys.argv[1:], "evaluate")
    main()
