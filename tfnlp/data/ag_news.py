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

import contextlib
import csv
import dataclasses
import logging
import numbers
import os
import shutil

import numpy as np
import tensorflow as tf

from tfnlp.data.errors import DataFormatError
from tfnlp.data.sources import DataSourceUnavailableError, check_reachable, resolve_data_dir, unavailable_message

logger = logging.getLogger(__name__)

AG_NEWS_CLASS_NAMES = ("World", "Sports", "Business", "Sci/Tech")
SPLITS = ("train", "validation", "train_full", "test")

_SUBDIR = "ag_news"
_CLASSES_FILE = "classes.txt"
_SPLIT_FILES = {"train": "train.csv", "validation": "train.csv", "train_full": "train.csv", "test": "test.csv"}
_TFDS_NAME = "ag_news_subset"
# Where the tfds builder downloads ag_news_csv.tar.gz from (its _URL).
_TFDS_DOWNLOAD_URL = "https://drive.google.com/uc?export=download&id=0Bz8a_Dbh9QhbUDNpeUdjb0wxRms"
# A first row with one of these in its class field is a header (Kaggle's copy has "Class Index").
_HEADER_CLASS_FIELDS = ("class", "class index", "class_index", "label")


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
    are fine. A first row naming the columns (``"Class Index","Title",
    "Description"``, or ``class`` / ``label`` first) is a header and skipped.

    Args:
        path: str or os.PathLike. The CSV file.
        skip_bad_rows: bool. False raises on the first bad row; True skips bad
            rows, counts them in ``skipped`` and logs one warning with the count.

    Returns:
        AgNewsExamples.

    Raises:
        DataFormatError: the file is missing or holds no examples (empty,
            a header alone, or only bad rows that were skipped; line None),
            or a row is bad (the message names the file, the row's first line
            and the problem).

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
    texts, labels, skipped, header = [], [], 0, False
    for line, row, problem in _csv_rows(path):
        if line == 1 and problem is not None and row and row[0].strip().lower() in _HEADER_CLASS_FIELDS:
            header = True
        elif problem is None:
            texts.append(row[1] + " " + row[2])
            labels.append(int(row[0]) - 1)
        elif skip_bad_rows:
            skipped += 1
        else:
            raise DataFormatError(path, line, problem)
    if not texts:
        if skipped:
            problem = f"no examples: all {skipped} row(s) are bad (skipped)"
        else:
            problem = "no examples: the file holds only a header line" if header else "no examples: the file is empty"
        raise DataFormatError(path, None, problem)
    if skipped:
        logger.warning("%s: skipped %d bad row(s)", path, skipped)
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
        DataFormatError: a local file is missing, malformed or empty, or too
            small for ``validation_size``.
        DataSourceUnavailableError: no local folder and tfds failed (e.g.
            offline: then at once, after a few seconds' check of the download host).

    Example:
    >>> dataset, class_names = load_ag_news("test", data_dir="/work/shared/data")  # doctest: +SKIP
    >>> text, label = next(iter(dataset))  # doctest: +SKIP
    """
    _check_arguments(split, validation_size, max_examples)
    folder = resolve_data_dir(data_dir, _SUBDIR, [_SPLIT_FILES[split]])
    if folder is None:
        return _load_from_tfds(split, validation_size, max_examples), AG_NEWS_CLASS_NAMES
    examples = read_ag_news_csv(os.path.join(folder, _SPLIT_FILES[split]), skip_bad_rows=skip_bad_rows)
    try:
        start, stop = _split_bounds(split, len(examples), validation_size)
    except ValueError as e:
        raise DataFormatError(examples.path, None, str(e)) from None
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
    if count == 0:
        raise ValueError(f"validation_size={validation_size!r} of {num_examples} example(s) is an empty "
                         f"validation slice")
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

    source = f"AG News (tfds {_TFDS_NAME!r})"
    files = ["train.csv", "test.csv"]
    try:
        builder = tfds.builder(_TFDS_NAME)
        prepared = builder.is_prepared()
    except Exception as e:  # A missing optional dependency, a broken tfds install: all mean "use local files".
        raise DataSourceUnavailableError(unavailable_message(source, _SUBDIR, files, e)) from None
    root = os.path.dirname(os.path.dirname(builder.data_dir))  # <root>/ag_news_subset/<version>
    if not prepared:
        check_reachable("AG News", _TFDS_DOWNLOAD_URL, _SUBDIR, files,
                        tried=f"tfds {_TFDS_NAME!r} is not prepared in {root}")
    try:
        with _removing_partial_downloads(root, _TFDS_NAME):
            dataset = tfds.load(_TFDS_NAME, split=_tfds_split(split, validation_size), shuffle_files=False)
    except Exception as e:  # Offline, download failure, full disk: all mean "use local files".
        raise DataSourceUnavailableError(unavailable_message(source, _SUBDIR, files, e)) from None
    dataset = dataset.map(
        lambda example: (
            tf.strings.join([example["title"], example["description"]], separator=" "),
            tf.cast(example["label"], tf.int32),
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return dataset if max_examples is None else dataset.take(max_examples)


@contextlib.contextmanager
def _removing_partial_downloads(root, name):
    """If the block fails, removes what a failed tfds download of ``name`` left under ``root``.

    That is the ``*.tmp.*`` download folders and ``incomplete.*`` preparation
    folders created during the block, and the folders the block created that are
    left empty. What existed before is never touched.
    """
    folders = [os.path.join(root, name), os.path.join(root, "downloads", name), os.path.join(root, "downloads",
               "extracted"), os.path.join(root, "downloads"), root]
    before = {folder: set(os.listdir(folder)) if os.path.isdir(folder) else None for folder in folders}
    try:
        yield
    except BaseException:
        for folder in folders[:2]:
            if not os.path.isdir(folder):
                continue
            for entry in set(os.listdir(folder)) - (before[folder] or set()):
                if ".tmp." in entry or entry.startswith("incomplete."):
                    path = os.path.join(folder, entry)
                    shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)
        for folder in folders:  # Deepest first: a parent may become empty once its child is gone.
            if before[folder] is None and os.path.isdir(folder) and not os.listdir(folder):
                os.rmdir(folder)
        raise
