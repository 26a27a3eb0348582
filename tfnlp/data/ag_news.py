r"""AG News (Zhang, Zhao & LeCun 2015): news topic classification into 4 classes.

Local files are the original ``ag_news_csv`` release: ``train.csv`` and
``test.csv`` with rows ``"class","title","description"`` (class 1..4) and an
optional ``classes.txt`` with one class name per line.

The text of an example is ``title + " " + description``, exactly what users of
tfds ``ag_news_subset`` build with ``tf.strings.join([title, description],
separator=" ")``. The tfds builder (``tensorflow_datasets/datasets/
ag_news_subset/ag_news_subset_dataset_builder.py``) reads the CSV with
``csv.reader`` in the default dialect and stores ``row[1]`` and ``row[2]``
verbatim: it does not unescape anything. The backslashes that stand for line
breaks and the ``#36;``-style entities of the original files are therefore
kept as they are here too, so local files and tfds give identical strings.
An empty title gives a text starting with a space, as in tfds.

Example:
>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "test.csv")
>>> with open(path, "w") as f:
...     _ = f.write('"3","Oil Up","Crude rose\\again."\n')
>>> examples = read_ag_news_csv(path)
>>> examples.texts, examples.labels.tolist()
(['Oil Up Crude rose\\again.'], [2])
"""

import csv
import dataclasses
import numbers
import os

from absl import logging
import numpy as np
import tensorflow as tf

from tfnlp.data.errors import DataFormatError
from tfnlp.data.sources import DataSourceUnavailableError, resolve_data_dir, unavailable_message

AG_NEWS_CLASS_NAMES = ("World", "Sports", "Business", "Sci/Tech")
SPLITS = ("train", "validation", "train_full", "test")

_SUBDIR = "ag_news"
_CLASSES_FILE = "classes.txt"
_SPLIT_FILES = {"train": "train.csv", "validation": "train.csv", "train_full": "train.csv", "test": "test.csv"}
_TFDS_NAME = "ag_news_subset"


@dataclasses.dataclass
class AgNewsExamples:
    """The examples of one AG News CSV file.

    Attributes:
        path: str. The file read.
        texts: list of str. ``title + " " + description`` per row.
        labels: np.ndarray of int32, shape ``[len(texts)]``. Class ids 0..3
            (the file's class minus one), indexing `AG_NEWS_CLASS_NAMES`.
        skipped: int. Bad rows skipped (only with ``skip_bad_rows=True``).
    """

    path: str
    texts: list
    labels: np.ndarray
    skipped: int = 0

    def __len__(self):
        return len(self.texts)

    def to_dataset(self):
        """Returns a `tf.data.Dataset` of ``(text, label)`` pairs (``tf.string``, ``tf.int32`` scalars).

        Example:
        >>> AgNewsExamples("x", ["A b"], np.array([1], np.int32)).to_dataset().element_spec
        (TensorSpec(shape=(), dtype=tf.string, name=None), TensorSpec(shape=(), dtype=tf.int32, name=None))
        """
        texts = tf.constant(self.texts, dtype=tf.string)
        return tf.data.Dataset.from_tensor_slices((texts, tf.constant(self.labels, dtype=tf.int32)))


def read_ag_news_csv(path, *, skip_bad_rows=False):
    """Reads an ``ag_news_csv`` file (``"class","title","description"`` rows, class 1..4).

    A row is bad when it does not have exactly 3 fields, its class is not an
    integer in 1..4, or its bytes are not UTF-8. Empty titles or descriptions
    are fine.

    Args:
        path: str or os.PathLike. The CSV file.
        skip_bad_rows: bool. False raises on the first bad row; True skips bad
            rows, counts them in ``skipped`` and logs one warning with the count.

    Returns:
        AgNewsExamples.

    Raises:
        DataFormatError: the file is missing (line None) or a row is bad (the
            message names the file, the row's first line and the problem).

    Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "train.csv")
    >>> with open(path, "w") as f:
    ...     _ = f.write('"2","Goal","Late winner."\\n"9","Bad","class"\\n')
    >>> examples = read_ag_news_csv(path, skip_bad_rows=True)
    >>> examples.texts, examples.labels.tolist(), examples.skipped
    (['Goal Late winner.'], [1], 1)
    """
    path = os.fspath(path)
    texts, labels, skipped = [], [], 0
    for line, row, problem in _csv_rows(path):
        if problem is None:
            texts.append(row[1] + " " + row[2])
            labels.append(int(row[0]) - 1)
        elif skip_bad_rows:
            skipped += 1
        else:
            raise DataFormatError(path, line, problem)
    if skipped:
        logging.warning("%s: skipped %d bad row(s)", path, skipped)
    return AgNewsExamples(path=path, texts=texts, labels=np.asarray(labels, np.int32), skipped=skipped)


def load_ag_news(split, *, data_dir=None, validation_size=0.1, max_examples=None, skip_bad_rows=False):
    """Loads one AG News split as a `tf.data.Dataset` of ``(text, label)``.

    Sources, in order: ``data_dir``, else ``$TFNLP_DATA_DIR`` (a root holding
    ``ag_news/`` or that folder itself, see `resolve_data_dir`), else tfds
    ``ag_news_subset``. The validation slice is the last ``validation_size`` of
    train, taken the same way from both sources (tfds percent slicing rounds
    to the closest example, and so does the local path).

    Args:
        split: str. ``"train"`` (train minus the validation slice),
            ``"validation"`` (the last ``validation_size`` of train),
            ``"train_full"`` (all of train) or ``"test"``.
        data_dir: str, os.PathLike or None. Local data folder.
        validation_size: float in (0, 1) (a fraction of train), int (a number
            of examples) or 0 (no validation slice).
        max_examples: int or None. Keep only the first ``max_examples`` of the
            split (for quick runs).
        skip_bad_rows: bool. Local files only: skip bad CSV rows instead of
            raising (see `read_ag_news_csv`). Slicing counts the rows kept.

    Returns:
        ``(dataset, class_names)``: a dataset of ``(text, label)`` pairs
        (``tf.string`` and ``tf.int32`` scalars, in file order) and the tuple
        of the 4 class names (from ``classes.txt`` when present).

    Raises:
        ValueError: unknown split, or a bad ``validation_size``/``max_examples``.
        DataFormatError: a local file is missing or malformed.
        DataSourceUnavailableError: no local folder and tfds failed (e.g. offline).

    Example:
    >>> dataset, class_names = load_ag_news("test", data_dir="/work/shared/data")  # doctest: +SKIP
    >>> text, label = next(iter(dataset))  # doctest: +SKIP
    """
    _check_arguments(split, validation_size, max_examples)
    folder = resolve_data_dir(data_dir, _SUBDIR, [_SPLIT_FILES[split]])
    if folder is None:
        return _load_from_tfds(split, validation_size, max_examples), AG_NEWS_CLASS_NAMES
    examples = read_ag_news_csv(os.path.join(folder, _SPLIT_FILES[split]), skip_bad_rows=skip_bad_rows)
    start, stop = _split_bounds(split, len(examples), validation_size)
    if max_examples is not None:
        stop = min(stop, start + max_examples)
    examples = dataclasses.replace(examples, texts=examples.texts[start:stop], labels=examples.labels[start:stop])
    return examples.to_dataset(), _read_class_names(folder)


def _csv_rows(path):
    """Yields ``(line, row, problem)`` per CSV record; ``problem`` is None for a good row."""
    bad_bytes = {}
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise DataFormatError(path, None, "file not found") from None
    with f:
        reader = csv.reader(_decoded_lines(f, bad_bytes))
        first_line = 1
        while True:
            try:
                row, problem = next(reader), None
            except StopIteration:
                return
            except csv.Error as e:
                row, problem = None, f"malformed CSV record ({e})"
            lines = range(first_line, reader.line_num + 1)
            problem = problem or next((bad_bytes[n] for n in lines if n in bad_bytes), None) or _row_problem(row)
            yield first_line, row, problem
            first_line = reader.line_num + 1


def _decoded_lines(binary_file, bad_bytes):
    """Yields the file's lines as str; a line that is not UTF-8 is recorded in ``bad_bytes`` by number."""
    for number, raw in enumerate(binary_file, start=1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as e:
            bad_bytes[number] = f"bytes are not valid UTF-8 (byte {e.start + 1} of the line)"
            yield raw.decode("utf-8", errors="replace")


def _row_problem(row):
    if len(row) != 3:
        return f"expected 3 fields (class, title, description), found {len(row)}"
    try:
        label = int(row[0])
    except ValueError:
        label = None
    if label not in (1, 2, 3, 4):
        return f"class must be an integer in 1..4, found {row[0]!r}"
    return None


def _read_class_names(folder):
    path = os.path.join(folder, _CLASSES_FILE)
    if not os.path.isfile(path):
        return AG_NEWS_CLASS_NAMES
    with open(path, encoding="utf-8") as f:
        names = tuple(line.strip() for line in f if line.strip())
    if len(names) != len(AG_NEWS_CLASS_NAMES):
        raise DataFormatError(path, None, f"expected 4 class names (one per line), found {len(names)}")
    return names


def _check_arguments(split, validation_size, max_examples):
    if split not in SPLITS:
        raise ValueError(f"Unknown AG News split {split!r}; expected one of {SPLITS}")
    is_fraction = isinstance(validation_size, float) and 0.0 < validation_size < 1.0
    is_count = isinstance(validation_size, numbers.Integral) and not isinstance(validation_size, bool)
    if not (is_fraction or is_count or validation_size == 0) or validation_size < 0:
        raise ValueError(
            f"validation_size must be a fraction in (0, 1), a number of examples or 0; got {validation_size!r}")
    if split == "validation" and validation_size == 0:
        raise ValueError('split="validation" needs validation_size > 0')
    if max_examples is not None and (not isinstance(max_examples, numbers.Integral) or max_examples < 1):
        raise ValueError(f"max_examples must be a positive int or None; got {max_examples!r}")


def _validation_count(validation_size, num_examples):
    """The size of the validation slice, rounded like tfds percent slicing ("closest")."""
    if isinstance(validation_size, float):
        count = int(round(validation_size * 100 * num_examples / 100.0))
    else:
        count = int(validation_size)
    if count >= num_examples:
        raise ValueError(
            f"validation_size={validation_size!r} leaves no training examples out of {num_examples}")
    return count


def _split_bounds(split, num_examples, validation_size):
    """``(start, stop)`` of ``split`` within its file's examples."""
    if split in ("train_full", "test") or validation_size == 0:
        return 0, num_examples
    boundary = num_examples - _validation_count(validation_size, num_examples)
    return (0, boundary) if split == "train" else (boundary, num_examples)


def _tfds_split(split, validation_size):
    """The tfds split (string or ReadInstruction) matching `_split_bounds`."""
    import tensorflow_datasets as tfds

    if split == "test":
        return "test"
    if split == "train_full" or validation_size == 0:
        return "train"
    size, unit = (validation_size * 100, "%") if isinstance(validation_size, float) else (int(validation_size), "abs")
    if split == "train":
        return tfds.core.ReadInstruction("train", to=-size, unit=unit)
    return tfds.core.ReadInstruction("train", from_=-size, unit=unit)


def _load_from_tfds(split, validation_size, max_examples):
    import tensorflow_datasets as tfds

    try:
        dataset = tfds.load(_TFDS_NAME, split=_tfds_split(split, validation_size), shuffle_files=False)
    except Exception as e:  # Offline, missing optional dependency, download failure: all mean "use local files".
        message = unavailable_message(f"AG News (tfds {_TFDS_NAME!r})", _SUBDIR, ["train.csv", "test.csv"], e)
        raise DataSourceUnavailableError(message) from None
    dataset = dataset.map(
        lambda example: (
            tf.strings.join([example["title"], example["description"]], separator=" "),
            tf.cast(example["label"], tf.int32),
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return dataset if max_examples is None else dataset.take(max_examples)
