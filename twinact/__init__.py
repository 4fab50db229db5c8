"""twinact: customized action image synthesis in a common action space."""

from twinact import config, schema  # noqa: F401  (schemas and --help resolvers, before any config is composed)
from twinact.console import quiet_known_noise

quiet_known_noise()  # before any module imports the libraries whose import-time messages it filters

__version__ = "0.1.0"
