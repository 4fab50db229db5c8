# twinact: `make demo` runs the StickWorld CPU demo, `make test` the test suite; both install what they need first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.twinact-installed
# The CPU wheel here; a GPU user installs their own torch into .venv first and it is kept.
TORCH_SPEC ?= torch==2.13.0
export HF_HUB_OFFLINE ?= 1

.PHONY: help install assets demo demo-tiny test test-rest test-all lint clean-cache bench stickworld stickworld-compare \
	stickworld-lr-grid stickworld-benchmark stickworld-curves

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
	$(PY) -m twinact.model.assets
	$(PY) -m twinact.space.pose_assets

# Learn the held-out test action superhero_flight (never named in pretraining) on the StickWorld base model with
# TwinAct and TI+LoRA at the paper's budget (200 + 600 optimizer steps, effective batch 8) and the rates the dev grid
# chose (experiments/stickworld_lr_grid), side by side on one thread each, render it with eight actors the exemplars
# do not show, print the judges' scores, write the grid (~4 min on 2 cores once installed).
DEMO_DIR ?= runs/demo/$(shell date +%Y-%m-%d_%H-%M-%S)
demo: install  ## learn a held-out StickWorld action with TwinAct and TI+LoRA (~4 min)
	WANDB_MODE=$${WANDB_MODE:-offline} $(PY) -m stickworld.protocol.compare_methods --out $(DEMO_DIR) \
		--actions superhero_flight --methods twinact ti_lora --steps 800 --jobs 2 --grid-actions superhero_flight \
		--rates experiments/stickworld_lr_grid/rates.json -- data.batch_size=4 trainer.accumulate_grad_batches=2

# The whole recipe (two stages, LoRA, similarity loss) on the random tiny SD-shaped model: checks the plumbing only.
demo-tiny: install  ## the whole recipe on the random tiny model (plumbing only, < 1 min)
	WANDB_MODE=$${WANDB_MODE:-offline} $(PY) train.py experiment=demo

# Rebuild the shipped StickWorld base model by its record: every pretraining run in stickworld/data/base/pretrain.json,
# oldest first, each continuing the one before (stickworld/pretraining/replay.py), then its gates. Resumable (rerun
# it). On a GPU: make stickworld SW_RUNTIME="--device cuda --workers 14". The cost of each run is on
# experiments/stickworld_gpu_base: hours of one CPU thread, minutes of a GPU.
SW ?= runs/stickworld
SW_RUNTIME ?= --device cpu --workers 1 --threads 1
stickworld: $(SW)/model/quality.json  ## rebuild the shipped StickWorld base model from its record, read its gates
$(SW)/model/model_index.json: | install
	OMP_NUM_THREADS=1 $(PY) -m stickworld.pretraining.replay --record stickworld/data/base/pretrain.json \
		--root $(SW)/runs --out $(SW)/model $(SW_RUNTIME)
$(SW)/model/quality.json: $(SW)/model/model_index.json
	$(PY) -m stickworld.gates.quality --model $(SW)/model --sheet $(SW)/model/sheet.png

# Every held-out action x twinact, textual_inversion, lora, ti_lora (resumable); table and grid into experiments/.
stickworld-compare: install  ## every held-out action x 4 methods (resumable)
	WANDB_MODE=$${WANDB_MODE:-offline} $(PY) -m stickworld.protocol.compare_methods --out experiments/stickworld_comparison

# The learning-rate grid on the dev actions (each method's rates x 1/3, 1, 3; resumable), then the benchmark protocol
# at the chosen rates: the trained rows and the upper bound x the test actions, and the positive control, x training
# seeds 0-2 at 800 optimizer steps, effective batch 8 (resumable, seed by seed; about 2 min a point on each of 2
# one-thread workers here; on a GPU add trainer.accelerator=gpu and JOBS=1). Both keep their finished points.
JOBS ?= 2
LR_GRID ?= experiments/stickworld_lr_grid
BENCH_OUT ?= experiments/stickworld_benchmark
stickworld-lr-grid: install  ## the learning-rate grid on the dev actions into $(LR_GRID) (resumable)
	WANDB_MODE=$${WANDB_MODE:-offline} OMP_NUM_THREADS=1 $(PY) -m stickworld.protocol.lr_grid --out $(LR_GRID) \
		--actions cartwheel drawing_a_bow --jobs $(JOBS)
stickworld-benchmark: install  ## the full StickWorld benchmark at the grid's rates into $(BENCH_OUT) (resumable)
	WANDB_MODE=$${WANDB_MODE:-offline} OMP_NUM_THREADS=1 $(PY) -m stickworld.protocol.benchmark --out $(BENCH_OUT) \
		--rates $(LR_GRID)/rates.json --jobs $(JOBS)
# The accuracy/leakage curves: the four methods and the appearance-free space on the dev actions at 100-1,600 steps,
# training seed 0 (resumable; about 5.6 min of two workers per row and action).
CURVES_OUT ?= experiments/stickworld_curves
stickworld-curves: install  ## accuracy vs leakage over budgets on the dev actions into $(CURVES_OUT) (resumable)
	WANDB_MODE=$${WANDB_MODE:-offline} OMP_NUM_THREADS=1 $(PY) -m stickworld.protocol.benchmark --out $(CURVES_OUT) \
		--split dev --rows twinact textual_inversion lora ti_lora twinact_appearance_free --seeds 0 \
		--curve-steps 100 200 400 1600 --rates $(LR_GRID)/rates.json --jobs $(JOBS)

# Test tiers (markers in pyproject.toml; tests/test_tiers.py checks them): `make test` runs the unit tests and a few
# end-to-end smoke runs (marked smoke), everything no tier marker names; test-rest the e2e, faults, stickworld and slow
# tiers, the rest; test-all both. .ci/run runs test then test-rest, so every test once.
FAST_TIER := not (e2e or faults or stickworld or slow)
test: install  ## the fast tier: unit tests and a few end-to-end smoke runs
	WANDB_MODE=offline $(PY) -m pytest -q -m "$(FAST_TIER)"

test-rest: install  ## the end-to-end, fault, StickWorld and slow tiers (what test leaves out)
	WANDB_MODE=offline $(PY) -m pytest -q -m "not ($(FAST_TIER))"

lint: install  ## ruff
	$(PY) -m ruff check twinact stickworld hydra_plugins benchmarks conf tests *.py

test-all: install  ## every tier: test and test-rest in one run
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
