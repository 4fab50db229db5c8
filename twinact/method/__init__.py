"""What TwinAct trains: the exemplar stream, the losses, the LightningModule, and the assembly of the trainable pieces
(space, placeholders, LoRA) around the frozen model that `method=` selects.

May import: `config`, `runs`, `model`, `space`."""
