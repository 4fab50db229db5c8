"""twinact: customized action image synthesis in a common action space.

Subpackages by role, each importing only those before it: `config`, `runs`, `model`, `space`, `method`, `release`,
`eval`, `train` (docs/architecture.md). Importing the package loads no deep-learning library, so `--help` is fast.
"""

from twinact.config import compose, schema  # noqa: F401  (schemas and --help resolvers, before any config is composed)
from twinact.runs.noise import quiet_known_noise

quiet_known_noise()  # before any module imports the libraries whose notices it filters

__version__ = "0.1.0"
