# Two commands do all set-up on a fresh machine:
#   make demo [DATA_DIR=../shared/data/mnist-10k]   train (then export and evaluate)
#   make test                                       run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MODEL ?= mlp
DATASET ?= mnist
EPOCHS ?= 5
DATA_DIR ?=
DATA_FLAG := $(if $(DATA_DIR),--data-dir $(DATA_DIR),)

.PHONY: demo test install clean

$(BIN)/graph-models: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/graph-models

demo: install
	$(BIN)/graph-models train --model $(MODEL) --dataset $(DATASET) --epochs $(EPOCHS) \
		$(DATA_FLAG) --overwrite

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
