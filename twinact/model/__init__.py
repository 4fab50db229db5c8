"""The frozen text-to-image model: tiny ones built in code, SD1.5 / SDXL folders, the offline tokenizer assets, how
each family conditions the UNet, and UNet LoRA.

May import: `config`, `runs`."""
