"""Shared pytest fixtures and the test tiers.

Unit tests build their own tiny fixtures; the ones several files use (a tiny
vocabulary, tiny BERT folders, a tiny AG News folder) are defined here once.
Integration tests read the real data from ``TFNLP_DATA_DIR`` and are skipped
(reported as skipped, never as passed) when it is not set.

Tiers, as keras-hub's ``--run_large`` and HF's ``RUN_SLOW``: tests marked
``large`` (a kill at every stage, multi-worker clusters, long real-data runs,
a long junk load, fresh-process reloads another test already covers) are skipped
unless ``--run-large`` is given or ``TFNLP_RUN_LARGE=1`` is set; `make test`
leaves them out, `make test-all` runs everything. Tests marked ``slow`` run in
`make test` but not in `make test-fast` (everything that trains a pipeline).
"""

import os

import tfnlp  # noqa: F401  (selects Keras 2 before TensorFlow is imported)

import pytest

from helpers import TOPIC_VOCAB, ag_news_rows, write_ag_news_folder, write_tiny_bert_folder

LARGE_SKIP_REASON = "large tier: run with --run-large or TFNLP_RUN_LARGE=1 (make test-all)"
TINY_VOCAB = [
    "[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "the", "a", "cat", "sat", "on", "mat", "dog", "##s", "run", "##ning", "new", "york",
    "john", "lives", "in", ".", ",", "!", "'", "-", "un", "##aff", "##able", "hello", "world",
]


def pytest_addoption(parser):
    parser.addoption("--run-large", action="store_true", default=False,
                     help="also run the tests marked large (as TFNLP_RUN_LARGE=1; `make test-all`)")


def run_large(config):
    """Whether this session runs the large tier (``--run-large`` or ``TFNLP_RUN_LARGE=1``)."""
    return config.getoption("--run-large") or os.environ.get("TFNLP_RUN_LARGE", "") not in ("", "0")


def pytest_collection_modifyitems(config, items):
    if run_large(config):
        return
    skip_large = pytest.mark.skip(reason=LARGE_SKIP_REASON)
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip_large)


@pytest.fixture(scope="session", autouse=True)
def _hermetic_cache(tmp_path_factory):
    """Converted pretrained weights go to a per-session cache, never the user's ~/.cache/tfnlp."""
    previous = os.environ.get("TFNLP_CACHE_DIR")
    os.environ["TFNLP_CACHE_DIR"] = str(tmp_path_factory.mktemp("tfnlp_cache"))
    yield
    if previous is None:
        os.environ.pop("TFNLP_CACHE_DIR", None)
    else:
        os.environ["TFNLP_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def data_dir():
    """The real data folder (``TFNLP_DATA_DIR``); skips the test when it is not set."""
    path = os.environ.get("TFNLP_DATA_DIR")
    if not path:
        pytest.skip("TFNLP_DATA_DIR is not set (integration test)")
    if not os.path.isdir(path):
        pytest.fail(f"TFNLP_DATA_DIR={path} is not a folder")
    return path


@pytest.fixture(scope="session")
def tiny_vocab_file(tmp_path_factory):
    """A tiny WordPiece vocabulary file (one token per line, BERT special tokens first)."""
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture
def tiny_bert_dir(tmp_path):
    """A tiny random BERT (hidden 32, 2 layers, 4 heads, `TINY_VOCAB`) as a PyTorch-format HF folder of its own.

    Holds config.json, vocab.txt, tokenizer_config.json (uncased) and
    model.safetensors; see `helpers.write_tiny_bert_folder` for variants. For
    tests that change the folder; `tiny_bert` is the same model shared read-only.
    """
    return write_tiny_bert_folder(tmp_path / "tiny_bert", TINY_VOCAB)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """The `tiny_bert_dir` model (`TINY_VOCAB`, 32 positions), one folder for the session: never write into it."""
    return write_tiny_bert_folder(tmp_path_factory.mktemp("bert") / "tiny_bert", TINY_VOCAB)


@pytest.fixture(scope="session")
def topic_bert(tmp_path_factory):
    """A tiny random BERT whose vocabulary (`helpers.TOPIC_VOCAB`) covers the AG News topic words; 128 positions.

    The tiny BERT of the AG News BERT pipelines (TF-Hub and HF), one folder for the session: never write into it.
    """
    return write_tiny_bert_folder(tmp_path_factory.mktemp("bert") / "topic_bert", TOPIC_VOCAB,
                                  max_position_embeddings=128)


@pytest.fixture(scope="session")
def ag_news_root(tmp_path_factory):
    """A tiny ``ag_news`` folder (`helpers.ag_news_rows`): 48 training rows (43 train + 5 validation with the
    default 0.1, or 40 + 8 with ``--validation-size 8``), 16 test rows (4 per class) and classes.txt.

    One folder for the session: never write into it.
    """
    train, test = ag_news_rows()
    return write_ag_news_folder(tmp_path_factory.mktemp("data"), train, test)
