"""Learn a customized action: `python train.py action=three_point_landing lora.rank=8` (see conf/train.yaml)."""

import sys

import hydra

from twinact.runs.cli import check_command_line, user_errors
from twinact.runs.rundir import remember_command_line


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg) -> None:
    # here, once Hydra has parsed the command line: torch and diffusers take seconds that --help need not
    from twinact.train.training import train

    with user_errors():
        train(cfg)


if __name__ == "__main__":
    remember_command_line(sys.argv[1:])
    check_command_line(sys.argv[1:], "train")
    main()
