"""One exception type for mistakes a user can fix: entry points print its message alone, no traceback."""

import os
import re


class TwinActError(Exception):
    """A problem with the user's input or set-up; the message names the problem and the fix."""

    kind = "error"  # the word after `twinact:` on the printed line
    exit_code = 2  # a usage error, as argparse and Hydra report one


class NonFiniteError(TwinActError):
    """Training diverged (a non-finite loss or gradient); the run stops before anything non-finite is saved."""


class Stopped(TwinActError):
    """Training stopped on a signal (SIGTERM, SIGINT) after writing its state; the message says how to continue.

    Exits 128 + the signal's number, as a shell reports a process a signal ended, so a scheduler does not record the
    run as a success.
    """

    kind = "stopped"

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + int(signum)

    def __reduce__(self):  # crosses process boundaries (a sweep's workers): rebuild with the signal
        return type(self), (str(self), self.exit_code - 128)


class WriteError(TwinActError):
    """The OS refused a write (a full disk, a quota, a lost mount); what was written before is whole."""

    exit_code = 1

    @classmethod
    def of(cls, path, err: Exception) -> "WriteError":
        """From the error raised while writing `path`: an OSError, or a library's error quoting one
        (safetensors: "I/O error: No space left on device (os error 28)")."""
        code = getattr(err, "errno", None)
        quoted = re.search(r"\(os error (\d+)\)", str(err))
        code = code or (int(quoted.group(1)) if quoted else None)
        cause = os.strerror(code) if code else str(err).splitlines()[0][:160]
        return cls(f"could not write {path}: {cause}.")
