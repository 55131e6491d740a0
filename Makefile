# Two commands do all set-up on a fresh machine:
#   make demo [DATA_DIR=../shared/data/mnist-10k]   train with QAT, export int8, evaluate
#   make test                                       run the test suite
#   make test-fast                                  the suite without the slow tests
#   make docs                                       build the documentation site (site/)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MODEL ?= mlp
DATASET ?= mnist
EPOCHS ?= 5
DATA_DIR ?=
DATA_FLAG := $(if $(DATA_DIR),--data-dir $(DATA_DIR),)

.PHONY: demo test test-fast docs install clean

$(BIN)/graph-models: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,keras-qat,docs]'
	$(BIN)/pip check
	touch $@

install: $(BIN)/graph-models

RUN := checkpoints/$(MODEL)-$(DATASET)-qat

demo: install
	$(BIN)/graph-models train --model $(MODEL) --dataset $(DATASET) --epochs $(EPOCHS) \
		$(DATA_FLAG) --quantize --overwrite --no-progress
	$(BIN)/graph-models export $(RUN) --quantize float
	$(BIN)/graph-models export $(RUN) --quantize int8
	$(BIN)/graph-models eval $(RUN)/model_float.tflite $(DATA_FLAG) --latency
	$(BIN)/graph-models eval $(RUN)/model_int8.tflite $(DATA_FLAG) --latency
	$(BIN)/graph-models inspect $(RUN)/model_int8.tflite --edgetpu

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

# --strict: a broken link, a missing page or a docstring mkdocstrings cannot read fails the build.
docs: install
	$(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache site
