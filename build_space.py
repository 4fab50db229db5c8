"""Build the common action space of a model: `python build_space.py model=sd15 action_space=pooled out=space/`."""

import sys

import hydra

from twinact.runs.cli import check_command_line, user_errors


@hydra.main(config_path="conf", config_name="build_space", version_base="1.3")
def main(cfg) -> None:
    # here, once Hydra has parsed the command line: torch and diffusers take seconds that --help need not
    from twinact.train.training import build_space_command

    with user_errors():
        build_space_command(cfg)


if __name__ == "__main__":
    check_command_line(sys.argv[1:], "build_space")
    main()
