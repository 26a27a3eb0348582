"""Shared pytest fixtures.

Unit tests build their own tiny fixtures. Integration tests read the real data
from ``TFNLP_DATA_DIR`` and are skipped (reported as skipped, never as passed)
when it is not set.
"""

import os

import tfnlp  # noqa: F401  (selects Keras 2 before TensorFlow is imported)

import pytest

TINY_VOCAB = [
    "[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "the", "a", "cat", "sat", "on", "mat", "dog", "##s", "run", "##ning", "new", "york",
    "john", "lives", "in", ".", ",", "!", "'", "-", "un", "##aff", "##able", "hello", "world",
]


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
    """A tiny random BERT (hidden 32, 2 layers, 4 heads, `TINY_VOCAB`) as a PyTorch-format HF folder.

    Holds config.json, vocab.txt, tokenizer_config.json (uncased) and
    model.safetensors; see `helpers.write_tiny_bert_folder` for variants.
    """
    from helpers import write_tiny_bert_folder

    return write_tiny_bert_folder(tmp_path / "tiny_bert", TINY_VOCAB)
