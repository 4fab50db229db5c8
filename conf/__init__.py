"""twinact's Hydra configs, importable so that tools find them through the package (`twinact.config`)."""
