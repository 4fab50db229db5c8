# twinact: `make demo` runs the StickWorld CPU demo, `make test` the test suite; both install what they need first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.twinact-installed
# The CPU wheel here; a GPU user installs their own torch into .venv first and it is kept.
TORCH_SPEC ?= torch==2.13.0
export HF_HUB_OFFLINE ?= 1

.PHONY: help install assets demo demo-tiny test test-all lint clean-cache bench stickworld stickworld2 \
	stickworld-compare stickworld-benchmark

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  make \1\t\2/' | expand -t 28

install: $(STAMP) assets  ## .venv with twinact, stickworld and every extra, plus the offline assets

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[dev]'  # dev includes every extra (wandb, slurm, pose)
	touch $(STAMP)

# Offline assets (the real CLIP tokenizer from the open-clip-torch wheel, BlazePose from the mediapipe 0.10.21 wheel) into $$TWINACT_CACHE or ~/.cache/twinact.
assets: $(STAMP)  ## the CLIP tokenizer and BlazePose files, from registry wheels
	$(PY) -m twinact.assets
	$(PY) -m twinact.pose_assets

# Learn the held-out three_point_landing on the StickWorld base model with TwinAct and Textual Inversion, render it
# with eight actors the exemplars do not show, print S_Action / S_Actor / Leakage, write the grid (~3 min on 2 cores).
DEMO_DIR ?= runs/demo/$(shell date +%Y-%m-%d_%H-%M-%S)
demo: install  ## learn a held-out StickWorld action with TwinAct and Textual Inversion (~3 min)
	WANDB_MODE=$${WANDB_MODE:-offline} $(PY) -m stickworld.compare_methods --out $(DEMO_DIR) \
		--actions three_point_landing --methods twinact textual_inversion

# The whole recipe (two stages, LoRA, similarity loss) on the random tiny SD-shaped model: checks the plumbing only.
demo-tiny: install  ## the whole recipe on the random tiny model (plumbing only, < 1 min)
	WANDB_MODE=$${WANDB_MODE:-offline} $(PY) train.py experiment=demo

# Pretrain the StickWorld base model as the shipped one was made (stickworld/data/base/pretrain.json holds the
# same chain): v0 (VAE, then UNet + text encoder), continued with Min-SNR (v1), switched to v-prediction (v2),
# continued (v3), continued again at a higher peak rate (v4), once more (v5) and for longer on fresh batches
# (v6, --seed 6) and a short last one (v7, --seed 7); then measure its quality bar.
# Every step resumes after an interruption (rerun `make stickworld`); a finished step is skipped.
# About 8.5 h on 2 cores.
SW ?= runs/stickworld
PRETRAIN = $(PY) -m stickworld.pretrain
stickworld: $(SW)/v7/quality.json  ## retrain the StickWorld base model (resumable, ~8.5 h on 2 cores)
$(SW)/v0/model_index.json: | install
	$(PRETRAIN) --work $(SW)/v0_work --out $(SW)/v0 --vae-steps 3000 --vae-lr 2e-3 --unet-steps 4500 --unet-lr 8e-4
$(SW)/v1/model_index.json: $(SW)/v0/model_index.json
	$(PRETRAIN) --init $(SW)/v0 --work $(SW)/v1_work --out $(SW)/v1 --unet-steps 1000 --warmup 50 \
		--min-snr-gamma 5 --unet-lr 4e-4
$(SW)/v2/model_index.json: $(SW)/v1/model_index.json
	$(PRETRAIN) --init $(SW)/v1 --work $(SW)/v2_work --out $(SW)/v2 --unet-steps 4500 --warmup 100 --unet-lr 4e-4 \
		--prediction-type v_prediction
$(SW)/v3/model_index.json: $(SW)/v2/model_index.json
	$(PRETRAIN) --init $(SW)/v2 --work $(SW)/v3_work --out $(SW)/v3 --unet-steps 3300 --warmup 100 --unet-lr 3e-4
$(SW)/v4/model_index.json: $(SW)/v3/model_index.json
	$(PRETRAIN) --init $(SW)/v3 --work $(SW)/v4_work --out $(SW)/v4 --unet-steps 6000 --warmup 100 --unet-lr 4e-4
$(SW)/v5/model_index.json: $(SW)/v4/model_index.json
	$(PRETRAIN) --init $(SW)/v4 --work $(SW)/v5_work --out $(SW)/v5 --unet-steps 1500 --warmup 100 --unet-lr 3e-4
$(SW)/v6/model_index.json: $(SW)/v5/model_index.json
	$(PRETRAIN) --init $(SW)/v5 --work $(SW)/v6_work --out $(SW)/v6 --unet-steps 8000 --warmup 100 --unet-lr 4e-4 \
		--seed 6
$(SW)/v7/model_index.json: $(SW)/v6/model_index.json
	$(PRETRAIN) --init $(SW)/v6 --work $(SW)/v7_work --out $(SW)/v7 --unet-steps 3000 --warmup 100 --unet-lr 3e-4 \
		--seed 7
$(SW)/v7/quality.json: $(SW)/v7/model_index.json
	$(PY) -m stickworld.quality --model $(SW)/v7

# Base model 2: the shipped model continued on the pose-grammar mixture (known actions by name, free poses by their
# units, actors, scenes), then its gates (experiments/stickworld2_base). Resumable; hours on 2 cores.
SW2 ?= runs/stickworld2
stickworld2: $(SW2)/v8/quality.json  ## base model 2 on the pose grammar, then its gates (resumable)
$(SW2)/v8/model_index.json: | install
	OMP_NUM_THREADS=1 $(PRETRAIN) --init stickworld/data/base --work $(SW2)/v8_work --out $(SW2)/v8 --unet-steps 6000 \
		--warmup 100 --unet-lr 4e-4 --seed 8 --captions grammar --ckpt-every 100 --log-every 25
$(SW2)/v8/quality.json: $(SW2)/v8/model_index.json
	$(PY) -m stickworld.quality --model $(SW2)/v8

# Every held-out action x twinact, textual_inversion, lora, ti_lora (resumable); table and grid into experiments/.
stickworld-compare: install  ## every held-out action x 4 methods (resumable)
	WANDB_MODE=$${WANDB_MODE:-offline} $(PY) -m stickworld.compare_methods --out experiments/stickworld_comparison

# The benchmark protocol: 10 trained rows and the upper bound x the test actions, and the positive control, x
# training seeds 0-2 at 800 optimizer steps, effective batch 8 (resumable; many CPU-hours: use a GPU, trainer.accelerator=gpu). Tune on --split dev first.
BENCH_OUT ?= runs/stickworld_benchmark
stickworld-benchmark: install  ## the full StickWorld benchmark into $(BENCH_OUT) (resumable)
	WANDB_MODE=$${WANDB_MODE:-offline} $(PY) -m stickworld.benchmark --out $(BENCH_OUT)

test: install  ## the fast test suite (what CI runs)
	WANDB_MODE=offline $(PY) -m pytest -q -m "not slow"

lint: install  ## ruff
	$(PY) -m ruff check twinact stickworld hydra_plugins benchmarks conf tests *.py

test-all: install  ## also the slow tier
	WANDB_MODE=offline $(PY) -m pytest -q

clean-cache:  ## drop cached action spaces
	rm -rf $${TWINACT_CACHE:-$$HOME/.cache/twinact}/action_spaces

# Step time of twinact vs the same step in bare PyTorch (see benchmarks/README.md); appends to benchmarks/results.jsonl.
bench: install  ## step time of twinact vs bare PyTorch (benchmarks/README.md)
	$(PY) -m benchmarks.speed --model tiny --batch-size 4 --resolution 64 --steps 40 --out benchmarks/results.jsonl
	$(PY) -m benchmarks.speed --model tiny_xl --batch-size 4 --resolution 64 --steps 40 --out benchmarks/results.jsonl
	$(PY) -m benchmarks.speed --model sd15_random --batch-size 1 --resolution 256 --steps 6 --warmup 2 \
		--out benchmarks/results.jsonl
	$(PY) -m benchmarks.speed --table benchmarks/results.jsonl
