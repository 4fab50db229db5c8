"""Run directories and the command line around them: allocating and locking run dirs, the commands printed for a user
to paste, checking overrides before Hydra runs, one-line user errors, how a stopped run ends, what a run prints and
which library notices it drops.

May import: `config` (and the shared `errors`, `paths`)."""
