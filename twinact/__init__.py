"""twinact: customized action image synthesis in a common action space."""

__version__ = "0.1.0"
