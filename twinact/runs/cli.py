"""Entry-point glue: user mistakes print one line and exit 2, no traceback wall."""

from __future__ import annotations

import contextlib
import sys

from twinact.errors import TwinActError
from twinact.runs.overrides import check_overrides

_HELP_FLAGS = {"-h", "--help", "--hydra-help", "--info", "-i"}


@contextlib.contextmanager
def user_errors():
    try:
        yield
    except TwinActError as err:
        print(f"twinact: {err.kind}: {err}", file=sys.stderr)
        sys.exit(err.exit_code)


def check_command_line(argv: list[str], config_name: str) -> None:
    """Before Hydra starts: a bad override is one `twinact: error:` line and exit 2, with nothing written."""
    if _HELP_FLAGS & set(argv):
        return
    with user_errors():
        check_overrides(argv, config_name)
