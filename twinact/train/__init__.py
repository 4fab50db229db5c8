"""`train(cfg)`: builds every object a run uses from the composed config (`training`), then the fit loop trains with
Lightning (callbacks, atomic checkpoints), exports, renders and evaluates (`fit`).

May import: every other subpackage."""
