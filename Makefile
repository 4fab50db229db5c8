# twinact: `make demo` runs the CPU demo, `make test` the test suite; both install what they need first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.twinact-installed
# The CPU wheel here; a GPU user installs their own torch into .venv first and it is kept.
TORCH_SPEC ?= torch==2.13.0
export HF_HUB_OFFLINE ?= 1

.PHONY: install assets demo test test-all lint clean-cache bench

install: $(STAMP) assets

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Offline assets (the real CLIP tokenizer from the open-clip-torch wheel, BlazePose from the mediapipe 0.10.21 wheel) into $$TWINACT_CACHE or ~/.cache/twinact.
assets: $(STAMP)
	$(PY) -m twinact.assets
	$(PY) -m twinact.pose_assets

demo: install
	WANDB_MODE=$${WANDB_MODE:-offline} $(PY) train.py experiment=demo

test: install
	WANDB_MODE=offline $(PY) -m pytest -q -m "not slow"

lint: install
	$(PY) -m ruff check twinact tests *.py

test-all: install
	WANDB_MODE=offline $(PY) -m pytest -q

clean-cache:
	rm -rf $${TWINACT_CACHE:-$$HOME/.cache/twinact}/action_spaces

# Step time of twinact vs the same step in bare PyTorch (see benchmarks/README.md); appends to benchmarks/results.jsonl.
bench: install
	$(PY) -m twinact.benchmark --model tiny --batch-size 4 --resolution 64 --steps 40 --out benchmarks/results.jsonl
	$(PY) -m twinact.benchmark --model tiny_xl --batch-size 4 --resolution 64 --steps 40 --out benchmarks/results.jsonl
	$(PY) -m twinact.benchmark --model sd15_random --batch-size 1 --resolution 256 --steps 6 --warmup 2 \
		--out benchmarks/results.jsonl
	$(PY) -m twinact.benchmark --table benchmarks/results.jsonl
