"""One exception type for mistakes a user can fix: entry points print its message alone, no traceback."""


class TwinActError(Exception):
    """A problem with the user's input or set-up; the message names the problem and the fix."""


class NonFiniteError(TwinActError):
    """Training diverged (a non-finite loss or gradient); the run stops before anything non-finite is saved."""
