"""The runnable examples in docstrings run and give what they show (modules not covered by their own test files)."""

import doctest
import importlib

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import pytest

MODULES = [
    "tfnlp._zipfile_seek",
    "tfnlp.data.batching",
    "tfnlp.hub.export",
    "tfnlp.models.sentence_embedding_distiller",
    "tfnlp.pretrained",
    "tfnlp.serving.export",
    "tfnlp.serving.server_config",
    "tfnlp.serving.text_classifier_module",
    "tfnlp.serving.throughput",
    "tfnlp.tasks.bert_classifier",
    "tfnlp.training.cli",
    "tfnlp.training.feature_cache",
    "tfnlp.training.optimization",
    "tfnlp.training.runtime",
    "tfnlp.utils.atomic",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no runnable example"
    assert result.failed == 0
