# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build of PyTorch. On this project's machines pip takes it from a wheel on disk; elsewhere, point pip at
# PyTorch's CPU index, e.g. `make demo PIP_TORCH_ARGS="--index-url https://download.pytorch.org/whl/cpu"`.
TORCH_SPEC     ?= torch==2.13.0
PIP_TORCH_ARGS ?=

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# Install the CPU wheel first, so the range `torch>=2.10` below never pulls a multi-GB CUDA build.
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q $(PIP_TORCH_ARGS) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

demo: setup
	$(BIN)/nnsee demo

test: setup
	$(BIN)/ruff check nnsee tests benchmarks scripts
	$(BIN)/python -m pytest -q -ra

bench: setup
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache demo
