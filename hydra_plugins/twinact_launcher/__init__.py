"""twinact's Hydra plugins: the local sweep launcher that runs at most `max_parallel` points at once."""
