"""A trained action outside training: the export files (diffusers, web UIs) and their checks, the model card, rendering
through a plain diffusers pipeline, and composing or adjusting exported actions in the space.

May import: `config`, `runs`, `model`, `space`, `method`."""
