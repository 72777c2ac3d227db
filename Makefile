# ddapps: the two commands a fresh machine needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.ddapps-installed

.PHONY: install demo test test-fast lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -c "import torch, torchvision" 2>/dev/null || \
		$(BIN)/python -m pip install torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -e '.[all,dev]'
	touch $(STAMP)

demo: install
	$(BIN)/ddapps demo

test: install lint
	$(BIN)/python -m pytest -q -n auto --durations=20

lint: install
	$(BIN)/python -m ruff check ddapps
	$(BIN)/python -m ruff format --check ddapps
	$(BIN)/python -m mypy

test-fast: install
	$(BIN)/python -m pytest -q -n auto -m "not slow"

bench: install
	$(BIN)/ddapps bench core --dataset mnist --ipc 1,10 --methods random,herding,dm --budget small --out runs/bench-core

clean:
	rm -rf $(VENV) runs
