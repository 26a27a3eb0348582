"""Data sets: AG News (text classification) and CoNLL-2003 (named-entity recognition).

Each loader reads local files when ``data_dir`` or ``$TFNLP_DATA_DIR`` is set,
else the online catalogue (tfds, HF datasets), and returns a `tf.data.Dataset`
with the class or tag names. Malformed files raise `DataFormatError` naming
file, line and problem; an unreachable online source raises
`DataSourceUnavailableError` saying how to point at local files.

Example:
>>> from tfnlp import data
>>> dataset, class_names = data.load_ag_news("validation", data_dir="/work/shared/data")  # doctest: +SKIP
>>> dataset, label_names = data.load_conll2003("test", data_dir="/work/shared/data")  # doctest: +SKIP
"""

from tfnlp.data.ag_news import AG_NEWS_CLASS_NAMES, AgNewsExamples, load_ag_news, read_ag_news_csv
from tfnlp.data.conll2003 import (
    CONLL2003_LABELS,
    ConllExamples,
    load_conll2003,
    load_conll2003_examples,
    read_conll,
)
from tfnlp.data.errors import DataFormatError
from tfnlp.data.sources import DATA_DIR_ENV, DataSourceUnavailableError, resolve_data_dir

__all__ = [
    "AG_NEWS_CLASS_NAMES",
    "CONLL2003_LABELS",
    "DATA_DIR_ENV",
    "AgNewsExamples",
    "ConllExamples",
    "DataFormatError",
    "DataSourceUnavailableError",
    "load_ag_news",
    "load_conll2003",
    "load_conll2003_examples",
    "read_ag_news_csv",
    "read_conll",
    "resolve_data_dir",
]
