"""CoNLL-2003 English named-entity recognition: sentences of tokens with IOB2 tags.

Local files are the column files ``train.txt``, ``valid.txt`` and ``test.txt``
(``token POS chunk NER`` per line, blank lines between sentences,
``-DOCSTART-`` lines between documents). The online source is the HF Hub
data set ``eriktks/conll2003`` (formerly ``conll2003``) read from its parquet
export: ``datasets`` 4 and later refuse the repository's loading script, so
``load_dataset("conll2003")`` no longer works there.

Tag ids follow `CONLL2003_LABELS`, the order of the HF ``ner_tags`` feature.

Example:
>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "train.txt")
>>> with open(path, "w") as f:
...     _ = f.write("-DOCSTART- -X- -X- O\\n\\nJohn NNP B-NP I-PER\\nlives VBZ B-VP O\\n")
>>> examples = read_conll(path)  # IOB1 "I-PER" opening an entity becomes "B-PER"
>>> examples.tokens, examples.tag_ids
([['John', 'lives']], [[1, 0]])
"""

import contextlib
import dataclasses
import logging
import numbers
import os

import tensorflow as tf

from tfnlp.data.errors import DataFormatError
from tfnlp.data.sources import DataSourceUnavailableError, resolve_data_dir, unavailable_message, use_local_files
from tfnlp.utils import network

logger = logging.getLogger(__name__)

CONLL2003_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
SPLITS = ("train", "validation", "test")

_SUBDIR = "conll2003"
_SPLIT_FILES = {"train": "train.txt", "validation": "valid.txt", "test": "test.txt"}
_DOCSTART = "-DOCSTART-"
_HF_PATH = "eriktks/conll2003"
_HF_REVISION = "refs/convert/parquet"


@dataclasses.dataclass
class ConllExamples:
    """Sentences read from a CoNLL file (or from HF datasets), as Python lists.

    Attributes:
        path: str. Where the sentences came from.
        tokens: list of list of str. The words of each sentence.
        tag_ids: list of list of int. One IOB2 tag id per word, indexing the labels.
        skipped: int. Sentences dropped because of a bad line (only with
            ``skip_bad_rows=True``).
        document_ids: list of int, or None. For each sentence, the number of
            ``-DOCSTART-`` lines before it: sentences with equal ids form one
            document (NER models read neighbouring sentences as context). None
            when the source keeps no document boundaries (HF datasets).
    """

    path: str
    tokens: list
    tag_ids: list
    skipped: int = 0
    document_ids: list = None

    def __len__(self):
        return len(self.tokens)

    def to_dataset(self):
        """Returns a `tf.data.Dataset` of ``{"tokens": tf.string [None], "ner_tags": tf.int32 [None]}``.

        Example:
        >>> ConllExamples("x", [["Hi", "Bob"]], [[0, 1]]).to_dataset().element_spec["tokens"]
        TensorSpec(shape=(None,), dtype=tf.string, name=None)
        """
        lengths = tf.constant([len(words) for words in self.tokens], tf.int64)
        words = tf.constant([word for sentence in self.tokens for word in sentence], tf.string)
        ids = tf.constant([i for sentence in self.tag_ids for i in sentence], tf.int32)
        tokens = tf.RaggedTensor.from_row_lengths(words, lengths)
        ner_tags = tf.RaggedTensor.from_row_lengths(ids, lengths)
        # Indexing one row of a ragged tensor gives a dense Tensor, so `padded_batch` works downstream.
        return tf.data.Dataset.range(len(self.tokens)).map(lambda i: {"tokens": tokens[i], "ner_tags": ner_tags[i]})


def read_conll(path, *, skip_bad_rows=False, labels=CONLL2003_LABELS):
    """Reads a CoNLL column file into sentences of (token, tag id).

    ``-DOCSTART-`` lines are dropped, and they and blank lines end sentences.
    The token is the first column and the tag the last. IOB1 tags are
    converted to IOB2 (an ``I-X`` that begins an entity becomes ``B-X``); IOB2
    input is unchanged. A line is bad when it has fewer than 2 columns, its
    tag is not in ``labels``, or its bytes are not UTF-8.

    Args:
        path: str or os.PathLike. The column file.
        skip_bad_rows: bool. False raises on the first bad line; True drops the
            whole sentence holding a bad line, counts the dropped sentences in
            ``skipped`` and logs one warning with the count.
        labels: sequence of str. The IOB2 tag names; a tag's id is its index.

    Returns:
        ConllExamples.

    Raises:
        DataFormatError: the file is missing or holds no sentence (empty, only
            ``-DOCSTART-`` lines, or only sentences dropped for a bad line;
            line None), or a line is bad (the message names the file, the
            line number and the problem).

    Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "valid.txt")
    >>> with open(path, "w") as f:
    ...     _ = f.write("Paris B-LOC\\n\\nOops\\nsays O\\n\\nRome NNP B-LOC\\n")
    >>> examples = read_conll(path, skip_bad_rows=True)
    >>> examples.tokens, examples.tag_ids, examples.skipped
    ([['Paris'], ['Rome']], [[5], [5]], 1)
    """
    path = os.fspath(path)
    tag_to_id = {tag: i for i, tag in enumerate(labels)}
    examples = ConllExamples(path=path, tokens=[], tag_ids=[], document_ids=[])
    words, ids, previous, bad, docstarts = [], [], "O", False, 0
    for line, columns, problem in _conll_lines(path):
        if columns is None:  # Sentence boundary.
            if bad:
                examples.skipped += 1
            elif words:
                examples.tokens.append(words)
                examples.tag_ids.append(ids)
                examples.document_ids.append(docstarts)
            docstarts += problem == _DOCSTART
            words, ids, previous, bad = [], [], "O", False
            continue
        tag = None if problem else _to_iob2(columns[-1], previous)
        if problem is None and tag not in tag_to_id:
            problem = f"unknown tag {columns[-1]!r}; expected one of {', '.join(labels)}"
        if problem is None:
            words.append(columns[0])
            ids.append(tag_to_id[tag])
            previous = tag
        elif skip_bad_rows:
            bad = True
        else:
            raise DataFormatError(path, line, problem)
    if not examples.tokens:
        if examples.skipped:
            problem = f"no sentences: all {examples.skipped} sentence(s) hold a bad line (skipped)"
        elif docstarts:
            problem = f"no sentences: the file holds only {_DOCSTART} lines"
        else:
            problem = "no sentences: the file is empty"
        raise DataFormatError(path, None, problem)
    if examples.skipped:
        logger.warning("%s: skipped %d sentence(s) holding a bad line", path, examples.skipped)
    return examples


def load_conll2003_examples(split, *, data_dir=None, max_examples=None, skip_bad_rows=False):
    """Loads one CoNLL-2003 split as Python lists (`ConllExamples`).

    Sources, in order: ``data_dir``, else ``$TFNLP_DATA_DIR`` (a root holding
    ``conll2003/`` or that folder itself, see `resolve_data_dir`), else HF
    datasets (``eriktks/conll2003``).

    Args:
        split: str. ``"train"``, ``"validation"`` (``valid.txt``) or ``"test"``.
        data_dir: str, os.PathLike or None. Local data folder.
        max_examples: int or None. Keep only the first ``max_examples`` sentences.
        skip_bad_rows: bool. Local files only: drop sentences holding a bad
            line instead of raising (see `read_conll`).

    Returns:
        ConllExamples, tag ids indexing `CONLL2003_LABELS`.

    Raises:
        ValueError: unknown split or bad ``max_examples``.
        DataFormatError: a local file is missing or malformed.
        DataSourceUnavailableError: no local folder and HF datasets failed (e.g. offline).

    Example:
    >>> examples = load_conll2003_examples("test", data_dir="/work/shared/data")  # doctest: +SKIP
    >>> examples.tokens[0]  # doctest: +SKIP
    ['SOCCER', '-', 'JAPAN', 'GET', 'LUCKY', 'WIN', ',', 'CHINA', 'IN', 'SURPRISE', 'DEFEAT', '.']
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown CoNLL-2003 split {split!r}; expected one of {SPLITS}")
    if max_examples is not None and (not isinstance(max_examples, numbers.Integral) or max_examples < 1):
        raise ValueError(f"max_examples must be a positive int or None; got {max_examples!r}")
    folder = resolve_data_dir(data_dir, _SUBDIR, [_SPLIT_FILES[split]])
    if folder is None:
        examples = _load_from_hf(split)
    else:
        examples = read_conll(os.path.join(folder, _SPLIT_FILES[split]), skip_bad_rows=skip_bad_rows)
    if max_examples is not None:
        examples = dataclasses.replace(
            examples, tokens=examples.tokens[:max_examples], tag_ids=examples.tag_ids[:max_examples],
            document_ids=None if examples.document_ids is None else examples.document_ids[:max_examples])
    return examples


def load_conll2003(split, *, data_dir=None, max_examples=None, skip_bad_rows=False):
    """Loads one CoNLL-2003 split as a `tf.data.Dataset` of token and tag sequences.

    Same arguments and sources as `load_conll2003_examples`.

    Returns:
        ``(dataset, label_names)``: a dataset of ``{"tokens": tf.string [None],
        "ner_tags": tf.int32 [None]}`` in file order, and `CONLL2003_LABELS`.

    Example:
    >>> dataset, label_names = load_conll2003("validation", data_dir="/work/shared/data")  # doctest: +SKIP
    >>> dataset = dataset.padded_batch(32)  # doctest: +SKIP
    """
    examples = load_conll2003_examples(
        split, data_dir=data_dir, max_examples=max_examples, skip_bad_rows=skip_bad_rows)
    return examples.to_dataset(), CONLL2003_LABELS


def _conll_lines(path):
    """Yields ``(line, columns, problem)``; ``columns`` is None at a sentence boundary (and at the end).

    A ``-DOCSTART-`` boundary comes with ``problem`` set to ``"-DOCSTART-"`` (it is not an error).
    """
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise DataFormatError(path, None, "file not found") from None
    with f:
        for number, raw in enumerate(f, start=1):
            try:
                columns = raw.decode("utf-8").split()
            except UnicodeDecodeError as e:
                yield number, [], f"bytes are not valid UTF-8 (byte {e.start + 1} of the line)"
                continue
            if not columns or columns[0] == _DOCSTART:
                yield number, None, columns[0] if columns else None
            elif len(columns) < 2:
                yield number, columns, "expected at least 2 columns (token ... tag), found 1"
            else:
                yield number, columns, None
    yield None, None, None


def _to_iob2(tag, previous):
    """IOB1 -> IOB2: an ``I-X`` that does not continue an ``X`` entity begins one, so becomes ``B-X``."""
    if tag.startswith("I-") and previous[2:] != tag[2:]:
        return "B-" + tag[2:]
    return tag


def _load_from_hf(split):
    """The split from HF datasets; offline (the Hub does not answer within seconds), from the HF cache only."""
    import datasets

    source = f"CoNLL-2003 (HF datasets {_HF_PATH!r})"
    files = list(_SPLIT_FILES.values())
    # HF_HUB_OFFLINE / HF_DATASETS_OFFLINE: the user chose the cache; else check the Hub answers before the
    # minutes of retries that load_dataset spends on an unreachable host.
    reason = None if datasets.config.HF_HUB_OFFLINE else network.unreachable_reason(datasets.config.HF_ENDPOINT)
    try:
        with _hf_offline(reason is not None):
            hf_split = datasets.load_dataset(_HF_PATH, revision=_HF_REVISION, split=split)
    except Exception as e:  # Offline, hub error, missing cache: all mean "use local files".
        if reason is None:
            message = unavailable_message(source, _SUBDIR, files, e)
        else:
            message = (f"CoNLL-2003: no local folder is set (data_dir, $TFNLP_DATA_DIR), HF datasets {_HF_PATH!r} "
                       f"is not in the cache {datasets.config.HF_DATASETS_CACHE}, and {datasets.config.HF_ENDPOINT} "
                       f"cannot be reached ({reason}). {use_local_files(_SUBDIR, files)}")
        raise DataSourceUnavailableError(message) from None
    names = getattr(hf_split.features["ner_tags"].feature, "names", None)
    if names is not None and tuple(names) != CONLL2003_LABELS:
        raise ValueError(f"{_HF_PATH} ner_tags are {names}; expected {CONLL2003_LABELS}")
    return ConllExamples(
        path=f"{_HF_PATH}@{_HF_REVISION}:{split}",
        tokens=[list(words) for words in hf_split["tokens"]],
        tag_ids=[list(ids) for ids in hf_split["ner_tags"]])


@contextlib.contextmanager
def _hf_offline(offline):
    """Within the block, HF datasets and the Hub client read only their caches (as with ``HF_HUB_OFFLINE=1``)."""
    if not offline:
        yield
        return
    import datasets
    from huggingface_hub import constants

    previous = datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE = previous
