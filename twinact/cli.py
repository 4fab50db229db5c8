"""Entry-point glue: user mistakes print one line and exit 2, no traceback wall."""

from __future__ import annotations

import contextlib
import sys

from twinact.errors import TwinActError


@contextlib.contextmanager
def user_errors():
    try:
        yield
    except TwinActError as err:
        print(f"twinact: error: {err}", file=sys.stderr)
        sys.exit(2)
