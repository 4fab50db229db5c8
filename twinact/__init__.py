"""twinact: customized action image synthesis in a common action space."""

from twinact import schema  # noqa: F401  (registers the config schemas before any entry point composes a config)

__version__ = "0.1.0"
