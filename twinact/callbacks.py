"""Lightning callbacks: sample grids during training (rank 0 only)."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_only

from twinact.sampling import make_grid, make_pipeline, render


class SampleGrid(pl.Callback):
    """Every `every_n_steps` optimizer steps, render the eval prompts with the live model.

    Grids go to `<run>/samples/step_XXXXXX.png` and to the logger when it can show images (W&B).
    """

    def __init__(self, out_dir: str, prompts: list[str], every_n_steps: int = 100, num_images: int = 2,
                 steps: int = 20, guidance_scale: float = 7.5, resolution: int = 512, seed: int = 0):
        self.out_dir, self.prompts, self.every = Path(out_dir), list(prompts), every_n_steps
        self.kw = dict(num_images=num_images, steps=steps, guidance_scale=guidance_scale, resolution=resolution,
                       seed=seed, progress=False)
        self._last = -1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if self.every > 0 and step % self.every == 0 and step != self._last and step > 0:
            self._render(trainer, pl_module, step)

    @rank_zero_only
    def _render(self, trainer, pl_module, step: int) -> None:
        self._last = step
        if not self.prompts or trainer.fast_dev_run:
            return
        was_training = pl_module.training
        pl_module.eval()
        images = render(make_pipeline(pl_module.comps), self.prompts, **self.kw)
        pl_module.train(was_training)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        grid = make_grid(images, cols=self.kw["num_images"])
        path = self.out_dir / f"step_{step:06d}.png"
        grid.save(path)
        log_image = getattr(trainer.logger, "log_image", None)
        if callable(log_image):
            log_image(key="samples", images=[str(path)], caption=[" | ".join(self.prompts)], step=step)
