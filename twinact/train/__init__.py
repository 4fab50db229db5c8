"""`train(cfg)`: the fit loop that builds every piece, trains with Lightning (callbacks, atomic checkpoints), then
exports, renders and evaluates.

May import: every other subpackage."""
