"""Learn a customized action: `python train.py action=three_point_landing lora.rank=8` (see conf/train.yaml)."""

import sys

import hydra

from twinact.cli import check_command_line, user_errors
from twinact.rundir import remember_command_line
from twinact.training import train


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg) -> None:
    with user_errors():
        train(cfg)


if __name__ == "__main__":
    remember_command_line(sys.argv[1:])
    check_command_line(sys.argv[1:], "train")
    main()
