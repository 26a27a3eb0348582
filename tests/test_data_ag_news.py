"""AG News reading and loading: tiny CSV files in tmp_path, tfds mocked, real data as integration."""

import collections
import logging
import os
import time

import tfnlp  # noqa: F401  (selects Keras 2 before TensorFlow is imported)

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tfnlp.utils import network
from tfnlp.data import (
    AG_NEWS_CLASS_NAMES,
    DATA_DIR_ENV,
    DataFormatError,
    DataSourceUnavailableError,
    load_ag_news,
    read_ag_news_csv,
)


def _csv_line(label, title, description):
    return f'"{label}","{title}","{description}"\n'


def _write(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


TRAIN_ROWS = [(i % 4 + 1, f"Title {i}", f"Description {i}.") for i in range(20)]
TEST_ROWS = [(i % 4 + 1, f"Test title {i}", f"Test description {i}.") for i in range(8)]


@pytest.fixture
def ag_root(tmp_path, monkeypatch):
    """A data root holding ``ag_news/`` with 20 train rows, 8 test rows and classes.txt."""
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    folder = tmp_path / "ag_news"
    _write(folder / "train.csv", "".join(_csv_line(*row) for row in TRAIN_ROWS))
    _write(folder / "test.csv", "".join(_csv_line(*row) for row in TEST_ROWS))
    _write(folder / "classes.txt", "\n".join(AG_NEWS_CLASS_NAMES) + "\n")
    return tmp_path


def _materialize(dataset):
    texts, labels = [], []
    for text, label in dataset:
        texts.append(text.numpy().decode("utf-8"))
        labels.append(int(label))
    return texts, labels


def _expected(rows):
    return [f"{title} {description}" for _, title, description in rows], [label - 1 for label, _, _ in rows]


# --- read_ag_news_csv ---------------------------------------------------------------------------


def test_read_keeps_text_verbatim_and_shifts_labels(tmp_path):
    path = _write(tmp_path / "train.csv", (
        '"3","Oil #36;50 (Reuters)","Reuters - Crude rose\\again, ""sharply""."\n'
        '"4","Mars","Water found."\n'))
    examples = read_ag_news_csv(path)
    assert examples.texts == ['Oil #36;50 (Reuters) Reuters - Crude rose\\again, "sharply".', "Mars Water found."]
    assert examples.labels.dtype == np.int32
    assert examples.labels.tolist() == [2, 3]
    assert examples.skipped == 0
    assert examples.path == str(path)


def test_read_empty_title_or_description(tmp_path):
    path = _write(tmp_path / "train.csv", '"1","","Only description."\n"2","Only title",""\n"3","",""\n')
    assert read_ag_news_csv(path).texts == [" Only description.", "Only title ", " "]


@pytest.mark.parametrize("content, line, problem", [
    ('"1","a","b"\n"2","only two fields"\n', 2, "expected 3 fields (class, title, description), found 2"),
    ('"1","a","b"\n"2","a","b","c"\n', 2, "expected 3 fields (class, title, description), found 4"),
    ('"1","a","b"\n\n', 2, "expected 3 fields (class, title, description), found 0"),
    ('"5","a","b"\n', 1, "class must be an integer in 1..4, found '5'"),
    ('"1","a","b"\n"0","a","b"\n', 2, "class must be an integer in 1..4, found '0'"),
    ('"1","a","b"\n"1","a","b"\n"World","a","b"\n', 3, "class must be an integer in 1..4, found 'World'"),
    (b'"1","a","b"\n"1","caf\xe9","b"\n', 2, "bytes are not valid UTF-8 (byte 9 of the line)"),
])
def test_read_bad_row_names_file_line_and_problem(tmp_path, content, line, problem):
    path = _write(tmp_path / "bad.csv", content)
    with pytest.raises(DataFormatError) as info:
        read_ag_news_csv(path)
    assert (info.value.path, info.value.line, info.value.problem) == (str(path), line, problem)
    assert str(info.value) == f"{path}, line {line}: {problem}"


def test_read_line_numbers_count_physical_lines(tmp_path):
    path = _write(tmp_path / "train.csv", '"1","multi\nline title","b"\n"2","a","b"\n"7","a","b"\n')
    with pytest.raises(DataFormatError, match=r"train\.csv, line 4: class must be an integer in 1\.\.4"):
        read_ag_news_csv(path)


def test_read_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(DataFormatError) as info:
        read_ag_news_csv(path)
    assert (info.value.path, info.value.line, info.value.problem) == (str(path), None, "file not found")
    assert "nope.csv" in str(info.value)


def test_read_skip_bad_rows_counts_and_warns_once(tmp_path, caplog):
    path = _write(tmp_path / "train.csv", (
        b'"1","Good","one."\n'
        b'"9","Bad","class."\n'
        b'"2","two fields"\n'
        b'"3","caf\xe9","latin-1."\n'
        b'"4","Good","two."\n'))
    with caplog.at_level(logging.WARNING):
        examples = read_ag_news_csv(path, skip_bad_rows=True)
    assert examples.texts == ["Good one.", "Good two."]
    assert examples.labels.tolist() == [0, 3]
    assert examples.skipped == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"{path}: skipped 3 bad row(s)"]


def test_read_clean_file_logs_nothing(tmp_path, caplog):
    path = _write(tmp_path / "train.csv", '"1","a","b"\n')
    with caplog.at_level(logging.WARNING):
        assert read_ag_news_csv(path, skip_bad_rows=True).skipped == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# --- load_ag_news from local files --------------------------------------------------------------


def test_load_test_split_types_and_values(ag_root):
    dataset, class_names = load_ag_news("test", data_dir=ag_root)
    assert class_names == AG_NEWS_CLASS_NAMES
    assert dataset.element_spec == (tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.int32))
    assert _materialize(dataset) == _expected(TEST_ROWS)


@pytest.mark.parametrize("validation_size, num_validation", [(0.25, 5), (0.1, 2), (0.33, 7), (3, 3), (1, 1)])
def test_validation_is_the_last_slice_of_train(ag_root, validation_size, num_validation):
    train = _materialize(load_ag_news("train", data_dir=ag_root, validation_size=validation_size)[0])
    validation = _materialize(load_ag_news("validation", data_dir=ag_root, validation_size=validation_size)[0])
    full = _materialize(load_ag_news("train_full", data_dir=ag_root)[0])
    assert full == _expected(TRAIN_ROWS)
    assert validation == _expected(TRAIN_ROWS[-num_validation:])
    assert train == _expected(TRAIN_ROWS[:-num_validation])
    assert not set(train[0]) & set(validation[0])
    again = _materialize(load_ag_news("validation", data_dir=ag_root, validation_size=validation_size)[0])
    assert again == validation


def test_validation_size_zero_keeps_all_of_train(ag_root):
    train = _materialize(load_ag_news("train", data_dir=ag_root, validation_size=0)[0])
    assert train == _expected(TRAIN_ROWS)
    with pytest.raises(ValueError, match="validation_size > 0"):
        load_ag_news("validation", data_dir=ag_root, validation_size=0)


@pytest.mark.parametrize("split, rows", [
    ("train", TRAIN_ROWS[:4]), ("validation", TRAIN_ROWS[15:19]), ("test", TEST_ROWS[:4]),
    ("train_full", TRAIN_ROWS[:4]),
])
def test_max_examples_takes_the_first_of_the_split(ag_root, split, rows):
    dataset, _ = load_ag_news(split, data_dir=ag_root, validation_size=5, max_examples=4)
    assert _materialize(dataset) == _expected(rows)


def test_max_examples_larger_than_split(ag_root):
    dataset, _ = load_ag_news("test", data_dir=ag_root, max_examples=1000)
    assert len(_materialize(dataset)[0]) == len(TEST_ROWS)


def test_data_dir_may_be_the_ag_news_folder_or_come_from_the_env(ag_root, monkeypatch):
    expected = _expected(TEST_ROWS)
    assert _materialize(load_ag_news("test", data_dir=ag_root / "ag_news")[0]) == expected
    monkeypatch.setenv(DATA_DIR_ENV, str(ag_root))
    assert _materialize(load_ag_news("test")[0]) == expected


def test_class_names_come_from_classes_txt(ag_root):
    names = ("Welt", "Sport", "Wirtschaft", "Wissenschaft")
    _write(ag_root / "ag_news" / "classes.txt", "\n".join(names) + "\n")
    assert load_ag_news("test", data_dir=ag_root)[1] == names
    (ag_root / "ag_news" / "classes.txt").unlink()
    assert load_ag_news("test", data_dir=ag_root)[1] == AG_NEWS_CLASS_NAMES


def test_classes_txt_must_hold_four_names(ag_root):
    path = _write(ag_root / "ag_news" / "classes.txt", "World\nSports\nBusiness\n")
    with pytest.raises(DataFormatError) as info:
        load_ag_news("test", data_dir=ag_root)
    assert str(info.value) == f"{path}: expected 4 class names (one per line), found 3"


def test_missing_split_file_in_data_dir(ag_root):
    (ag_root / "ag_news" / "test.csv").unlink()
    with pytest.raises(DataFormatError, match=r"ag_news/test\.csv: file not found"):
        load_ag_news("test", data_dir=ag_root)


def test_skip_bad_rows_reaches_the_reader(ag_root):
    _write(ag_root / "ag_news" / "test.csv", _csv_line(1, "a", "b") + '"8","a","b"\n')
    with pytest.raises(DataFormatError, match="line 2"):
        load_ag_news("test", data_dir=ag_root)
    dataset, _ = load_ag_news("test", data_dir=ag_root, skip_bad_rows=True)
    assert _materialize(dataset) == (["a b"], [0])


@pytest.mark.parametrize("kwargs, message", [
    ({"split": "dev"}, "Unknown AG News split 'dev'"),
    ({"split": "train", "validation_size": 1.0}, "validation_size must be"),
    ({"split": "train", "validation_size": -2}, "validation_size must be"),
    ({"split": "train", "validation_size": True}, "validation_size must be"),
    ({"split": "train", "validation_size": "10%"}, "validation_size must be"),
    ({"split": "train", "validation_size": 20}, "leaves no training examples out of 20"),
    ({"split": "train", "max_examples": 0}, "max_examples must be a positive int"),
])
def test_bad_arguments(ag_root, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_ag_news(data_dir=ag_root, **kwargs)


# --- empty and header-only files ---------------------------------------------------------------


@pytest.mark.parametrize("split", ["train", "validation", "train_full", "test"])
@pytest.mark.parametrize("content, problem", [
    ("", "no examples: the file is empty"),
    ('"class","title","description"\n', "no examples: the file holds only a header line"),
    ('"Class Index","Title","Description"\n', "no examples: the file holds only a header line"),
    ('"9","bad","class"\n"x","bad","class"\n', "no examples: all 2 row(s) are bad (skipped)"),
])
def test_a_split_file_without_examples_names_the_file(ag_root, split, content, problem):
    name = "test.csv" if split == "test" else "train.csv"
    path = _write(ag_root / "ag_news" / name, content)
    with pytest.raises(DataFormatError) as info:
        load_ag_news(split, data_dir=ag_root, skip_bad_rows=True)
    assert str(info.value) == f"{path}: {problem}"


def test_a_header_line_before_rows_is_skipped(tmp_path):
    path = _write(tmp_path / "train.csv", '"Class Index","Title","Description"\n' + _csv_line(3, "Oil", "Up."))
    examples = read_ag_news_csv(path)
    assert (examples.texts, examples.labels.tolist(), examples.skipped) == (["Oil Up."], [2], 0)
    # Only on the first line: elsewhere it is a bad row like any other.
    _write(path, _csv_line(3, "Oil", "Up.") + '"class","title","description"\n')
    with pytest.raises(DataFormatError, match="line 2: class must be an integer"):
        read_ag_news_csv(path)


@pytest.mark.parametrize("rows, validation_size, problem", [
    (1, 1, "validation_size=1 leaves no training examples out of 1"),
    (4, 0.1, "validation_size=0.1 of 4 example(s) is an empty validation slice"),
])
def test_a_train_file_too_small_for_the_validation_slice_names_the_file(ag_root, rows, validation_size, problem):
    path = _write(ag_root / "ag_news" / "train.csv", "".join(_csv_line(*row) for row in TRAIN_ROWS[:rows]))
    for split in ("train", "validation"):
        with pytest.raises(DataFormatError) as info:
            load_ag_news(split, data_dir=ag_root, validation_size=validation_size)
        assert str(info.value) == f"{path}: {problem}"


# --- load_ag_news from tfds (mocked, no network) ------------------------------------------------


@pytest.fixture
def tfds_dir(tmp_path, monkeypatch):
    """An empty tfds data folder (nothing prepared), and no local AG News folder."""
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(tfds.core.constants, "DATA_DIR", str(tmp_path / "tensorflow_datasets"))
    return tmp_path / "tensorflow_datasets"


@pytest.fixture
def online(monkeypatch):
    """The download hosts answer (as far as the quick probe can tell); tfds itself is mocked by the test."""
    probed = []
    monkeypatch.setattr(network, "unreachable_reason", lambda url, timeout=None: probed.append(url))
    return probed


@pytest.fixture
def offline(monkeypatch):
    """The download hosts do not answer; tfds.load must not even be called."""
    probed = []

    def unreachable(url, timeout=None):
        probed.append(url)
        return "drive.google.com:443: Name or service not known"

    def no_load(*args, **kwargs):
        raise AssertionError("tfds.load was called although the download host is unreachable")

    monkeypatch.setattr(network, "unreachable_reason", unreachable)
    monkeypatch.setattr(tfds, "load", no_load)
    return probed


def _fake_tfds_as_dataset(rows_by_split, requested):
    """A tfds ``as_dataset`` that slices ``rows_by_split`` exactly as tfds slices a real split."""
    split_infos = {
        name: tfds.core.SplitInfo(name=name, shard_lengths=[len(rows)], num_bytes=0)
        for name, rows in rows_by_split.items()}

    def as_dataset(builder, split, **kwargs):
        del builder, kwargs
        requested.append(split)
        instruction = tfds.core.ReadInstruction(split) if isinstance(split, str) else split
        (absolute,) = instruction.to_absolute(split_infos)
        rows = rows_by_split[absolute.splitname][absolute.from_:absolute.to]
        return tf.data.Dataset.from_tensor_slices({
            "label": tf.constant([label - 1 for label, _, _ in rows], tf.int64),
            "title": tf.constant([title for _, title, _ in rows], tf.string),
            "description": tf.constant([description for _, _, description in rows], tf.string),
        })

    return as_dataset


@pytest.mark.parametrize("split, kwargs", [
    ("train", {"validation_size": 0.33}),
    ("validation", {"validation_size": 0.33}),
    ("train", {"validation_size": 3}),
    ("validation", {"validation_size": 3}),
    ("train", {"validation_size": 0}),
    ("train_full", {}),
    ("test", {"max_examples": 3}),
])
def test_tfds_source_matches_local_files(ag_root, online, split, kwargs):
    rows = {"train": [(1, "", "Empty title."), (2, "Empty description", "")] + TRAIN_ROWS, "test": TEST_ROWS}
    _write(ag_root / "ag_news" / "train.csv", "".join(_csv_line(*row) for row in rows["train"]))
    local = _materialize(load_ag_news(split, data_dir=ag_root, **kwargs)[0])
    requested = []
    with tfds.testing.mock_data(as_dataset_fn=_fake_tfds_as_dataset(rows, requested)):
        dataset, class_names = load_ag_news(split, **kwargs)
        from_tfds = _materialize(dataset)
    assert requested, "tfds.load was not called"
    assert class_names == AG_NEWS_CLASS_NAMES
    assert dataset.element_spec == (tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.int32))
    assert from_tfds == local


def test_tfds_failure_raises_one_line_unavailable_error(monkeypatch, tfds_dir, online):
    def offline_load(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'storage.googleapis.com'\nretries exhausted")

    monkeypatch.setattr(tfds, "load", offline_load)
    with pytest.raises(DataSourceUnavailableError) as info:
        load_ag_news("train")
    message = str(info.value)
    assert "\n" not in message
    assert "ConnectionError: Failed to resolve 'storage.googleapis.com'" in message
    assert f"data_dir=... or set {DATA_DIR_ENV}=..." in message
    assert "ag_news/train.csv" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert online  # The host was probed first, and answered.


def test_unreachable_tfds_host_fails_at_once_and_leaves_nothing(tfds_dir, offline):
    start = time.perf_counter()
    with pytest.raises(DataSourceUnavailableError) as info:
        load_ag_news("train")
    assert time.perf_counter() - start < 10
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"AG News: no local folder is set (data_dir, ${DATA_DIR_ENV}), tfds 'ag_news_subset' "
                              f"is not prepared in {tfds_dir}, and https://drive.google.com/")
    assert "cannot be reached (drive.google.com:443: Name or service not known)" in message
    assert f"pass data_dir=... or set {DATA_DIR_ENV}=... to a folder holding ag_news/train.csv" in message
    assert offline == ["https://drive.google.com/uc?export=download&id=0Bz8a_Dbh9QhbUDNpeUdjb0wxRms"]
    assert not tfds_dir.exists()  # No download folders, no "incomplete" folders.


def test_prepared_tfds_data_is_read_without_probing(ag_root, monkeypatch):
    probed = []
    monkeypatch.setattr(network, "unreachable_reason", lambda url, timeout=None: probed.append(url) or "unreachable")
    monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: True)
    with tfds.testing.mock_data(as_dataset_fn=_fake_tfds_as_dataset({"train": TRAIN_ROWS, "test": TEST_ROWS}, [])):
        dataset, _ = load_ag_news("test")
        assert _materialize(dataset) == _expected(TEST_ROWS)
    assert probed == []  # Offline with the data in the tfds folder: no probe, no error.


def test_a_failed_download_leaves_no_temporary_folders(tfds_dir, online, monkeypatch):
    tfds_dir.mkdir()
    (tfds_dir / "other_dataset").mkdir()  # Not ours: stays.

    def failing_load(name, **kwargs):
        (tfds_dir / "downloads" / name / "ucexport_download.tmp.2f174c9a").mkdir(parents=True)
        (tfds_dir / "downloads" / "extracted").mkdir()
        (tfds_dir / name / "incomplete.HBRPOI_1.0.0").mkdir(parents=True)
        raise ConnectionError("connection reset by peer")

    monkeypatch.setattr(tfds, "load", failing_load)
    with pytest.raises(DataSourceUnavailableError, match="ConnectionError: connection reset by peer"):
        load_ag_news("test")
    assert sorted(os.listdir(tfds_dir)) == ["other_dataset"]


# --- real data ----------------------------------------------------------------------------------


def _labels(dataset):
    return np.concatenate([labels.numpy() for _, labels in dataset.batch(4096)])


@pytest.mark.integration
def test_real_test_split_counts(data_dir):
    dataset, class_names = load_ag_news("test", data_dir=data_dir)
    assert class_names == AG_NEWS_CLASS_NAMES
    assert collections.Counter(_labels(dataset).tolist()) == {0: 1900, 1: 1900, 2: 1900, 3: 1900}


@pytest.mark.integration
def test_real_train_and_validation_partition_train_full(data_dir):
    def texts_and_labels(split):
        batches = list(load_ag_news(split, data_dir=data_dir)[0].batch(4096))
        return (np.concatenate([texts.numpy() for texts, _ in batches]).tolist(),
                np.concatenate([labels.numpy() for _, labels in batches]).tolist())

    train, validation, full = (texts_and_labels(split) for split in ("train", "validation", "train_full"))
    assert len(full[0]) == 10_429
    assert len(validation[0]) == 1_043  # round(10% of 10,429)
    assert len(train[0]) + len(validation[0]) == 10_429
    assert (train[0] + validation[0], train[1] + validation[1]) == full
    assert collections.Counter(full[1]) == {0: 2630, 1: 2452, 2: 2594, 3: 2753}
