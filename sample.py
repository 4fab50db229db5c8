"""Render a trained action: `python sample.py run=<run dir> prompt="a polar bear <a1> <a2> <a3> ..." num_images=4`."""

import sys

import hydra
from omegaconf import ListConfig, OmegaConf

from twinact.runs.cli import check_command_line, user_errors


@hydra.main(config_path="conf", config_name="sample", version_base="1.3")
def main(cfg) -> None:
    # here, once Hydra has parsed the command line: torch and diffusers take seconds that --help need not
    from twinact.release.sampling import sample_run

    prompts = None if cfg.prompt is None else list(cfg.prompt) if isinstance(cfg.prompt, ListConfig) else [cfg.prompt]
    with user_errors():
        out = sample_run(cfg.run, prompts, num_images=cfg.num_images, seed=cfg.seed, steps=cfg.steps,
                         guidance_scale=cfg.guidance_scale, out_dir=cfg.out_dir,
                         compose=list(cfg.compose) if cfg.compose else None,
                         weights=list(cfg.weights) if cfg.weights else None,
                         adjust=OmegaConf.to_container(cfg.adjust))
    print(f"Wrote {out}/grid.png")


if __name__ == "__main__":
    check_command_line(sys.argv[1:], "sample")
    main()
