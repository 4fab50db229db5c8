"""twinact's Hydra configs (the repository's top-level `conf/` links here), importable so that tools compose them
from any working directory (`twinact.config.compose`)."""
