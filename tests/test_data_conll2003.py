"""CoNLL-2003 reading and loading: tiny column files in tmp_path, HF datasets mocked, real data as integration."""

import logging
import time

import tfnlp  # noqa: F401  (selects Keras 2 before TensorFlow is imported)

import datasets
import huggingface_hub
import pytest
import tensorflow as tf

from tfnlp.utils import network

from tfnlp.data import (
    CONLL2003_LABELS,
    DATA_DIR_ENV,
    ConllExamples,
    DataFormatError,
    DataSourceUnavailableError,
    load_conll2003,
    load_conll2003_examples,
    read_conll,
)

ID = {tag: i for i, tag in enumerate(CONLL2003_LABELS)}

TRAIN_TEXT = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
1996-08-22 CD I-NP O
"""
TRAIN_TOKENS = [["EU", "rejects", "German", "call", "."], ["Peter", "Blackburn"], ["BRUSSELS", "1996-08-22"]]
TRAIN_TAGS = [["B-ORG", "O", "B-MISC", "O", "O"], ["B-PER", "I-PER"], ["B-LOC", "O"]]
VALID_TEXT = "Rome NNP B-NP B-LOC\n\nHi UH O O\nAnn NNP B-NP B-PER\n"
TEST_TEXT = "-DOCSTART- -X- -X- O\n\nSOCCER NN B-NP O\n- : O O\nJAPAN NNP B-NP B-LOC\n"


def _write(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def _tags(examples):
    return [[CONLL2003_LABELS[i] for i in ids] for ids in examples.tag_ids]


@pytest.fixture
def conll_root(tmp_path, monkeypatch):
    """A data root holding ``conll2003/`` with tiny train, valid and test files."""
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    for name, text in (("train.txt", TRAIN_TEXT), ("valid.txt", VALID_TEXT), ("test.txt", TEST_TEXT)):
        _write(tmp_path / "conll2003" / name, text)
    return tmp_path


# --- read_conll ---------------------------------------------------------------------------------


def test_read_sentences_tokens_and_tags(tmp_path):
    path = _write(tmp_path / "train.txt", TRAIN_TEXT)
    examples = read_conll(path)
    assert examples.path == str(path)
    assert examples.tokens == TRAIN_TOKENS
    assert _tags(examples) == TRAIN_TAGS
    assert examples.skipped == 0
    assert len(examples) == 3


def test_read_boundaries_without_trailing_newline_or_extra_blank_lines(tmp_path):
    path = _write(tmp_path / "t.txt", "\n\nA x O\n\n\n\nB x B-PER\n-DOCSTART- -X- -X- O\nC\tx\tB-LOC")
    examples = read_conll(path)
    assert examples.tokens == [["A"], ["B"], ["C"]]
    assert _tags(examples) == [["O"], ["B-PER"], ["B-LOC"]]


def test_read_two_columns_token_first_tag_last(tmp_path):
    path = _write(tmp_path / "t.txt", "Obama B-PER\nspoke O\n")
    examples = read_conll(path)
    assert (examples.tokens, _tags(examples)) == ([["Obama", "spoke"]], [["B-PER", "O"]])


def test_read_converts_iob1_to_iob2(tmp_path):
    iob1 = [("U.N.", "I-ORG"), ("official", "O"), ("Ekeus", "I-PER"), ("Rolf", "I-PER"), ("Ann", "B-PER"),
            ("Lee", "I-PER"), ("in", "O"), ("Paris", "I-LOC"), ("Texas", "I-MISC"), ("Cup", "I-MISC")]
    path = _write(tmp_path / "iob1.txt", "".join(f"{word} NN I-NP {tag}\n" for word, tag in iob1))
    assert _tags(read_conll(path)) == [
        ["B-ORG", "O", "B-PER", "I-PER", "B-PER", "I-PER", "O", "B-LOC", "B-MISC", "I-MISC"]]


def test_read_leaves_iob2_unchanged(tmp_path):
    tags = ["B-PER", "I-PER", "B-PER", "O", "B-ORG", "I-ORG", "I-ORG", "B-LOC", "B-MISC", "I-MISC"]
    path = _write(tmp_path / "iob2.txt", "".join(f"w{i} {tag}\n" for i, tag in enumerate(tags)))
    assert _tags(read_conll(path)) == [tags]


def test_read_custom_labels(tmp_path):
    path = _write(tmp_path / "t.txt", "a O\nb I-X\nc I-X\n")
    assert read_conll(path, labels=("O", "B-X", "I-X")).tag_ids == [[0, 1, 2]]


@pytest.mark.parametrize("content, line, problem", [
    ("EU NNP B-NP B-ORG\n\nlonely\n", 3, "expected at least 2 columns (token ... tag), found 1"),
    ("EU NNP B-NP B-ORG\nrejects VBZ B-VP B-FOO\n", 2,
     "unknown tag 'B-FOO'; expected one of O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC, B-MISC, I-MISC"),
    ("EU NNP B-NP b-org\n", 1, "unknown tag 'b-org'; expected one of " + ", ".join(CONLL2003_LABELS)),
    (b"EU NNP B-NP B-ORG\n\nK\xf6ln NNP B-NP B-LOC\n", 3, "bytes are not valid UTF-8 (byte 2 of the line)"),
])
def test_read_bad_line_names_file_line_and_problem(tmp_path, content, line, problem):
    path = _write(tmp_path / "bad.txt", content)
    with pytest.raises(DataFormatError) as info:
        read_conll(path)
    assert (info.value.path, info.value.line, info.value.problem) == (str(path), line, problem)
    assert str(info.value) == f"{path}, line {line}: {problem}"


def test_read_missing_file(tmp_path):
    path = tmp_path / "train.txt"
    with pytest.raises(DataFormatError) as info:
        read_conll(path)
    assert (info.value.path, info.value.line, info.value.problem) == (str(path), None, "file not found")


def test_read_skip_bad_rows_drops_whole_sentences(tmp_path, caplog):
    path = _write(tmp_path / "t.txt", (
        b"Good x B-PER\n\n"
        b"Bad x B-FOO\nrest x O\nlonely\n\n"  # Two bad lines, one sentence dropped.
        b"K\xf6ln x B-LOC\n\n"
        b"Also x O\ngood x O\n"))
    with caplog.at_level(logging.WARNING):
        examples = read_conll(path, skip_bad_rows=True)
    assert examples.tokens == [["Good"], ["Also", "good"]]
    assert _tags(examples) == [["B-PER"], ["O", "O"]]
    assert examples.skipped == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"{path}: skipped 2 sentence(s) holding a bad line"]


# --- ConllExamples.to_dataset and load_conll2003 from local files -------------------------------


def _materialize(dataset):
    return [([w.decode("utf-8") for w in ex["tokens"].numpy()], [CONLL2003_LABELS[i] for i in ex["ner_tags"].numpy()])
            for ex in dataset]


def test_to_dataset_specs_and_padded_batch():
    dataset = ConllExamples("x", [["a", "b", "c"], ["d"]], [[1, 2, 0], [5]]).to_dataset()
    assert dataset.element_spec == {
        "tokens": tf.TensorSpec([None], tf.string), "ner_tags": tf.TensorSpec([None], tf.int32)}
    batch = next(iter(dataset.padded_batch(2)))
    assert batch["tokens"].numpy().tolist() == [[b"a", b"b", b"c"], [b"d", b"", b""]]
    assert batch["ner_tags"].numpy().tolist() == [[1, 2, 0], [5, 0, 0]]


def test_to_dataset_of_no_sentences():
    assert list(ConllExamples("x", [], []).to_dataset()) == []


def test_load_local_splits(conll_root):
    dataset, label_names = load_conll2003("train", data_dir=conll_root)
    assert label_names == CONLL2003_LABELS
    assert _materialize(dataset) == list(zip(TRAIN_TOKENS, TRAIN_TAGS))
    validation, _ = load_conll2003("validation", data_dir=conll_root)
    assert _materialize(validation) == [(["Rome"], ["B-LOC"]), (["Hi", "Ann"], ["O", "B-PER"])]
    test, _ = load_conll2003("test", data_dir=conll_root)
    assert _materialize(test) == [(["SOCCER", "-", "JAPAN"], ["O", "O", "B-LOC"])]


def test_load_max_examples(conll_root):
    dataset, _ = load_conll2003("train", data_dir=conll_root, max_examples=2)
    assert _materialize(dataset) == list(zip(TRAIN_TOKENS[:2], TRAIN_TAGS[:2]))
    assert load_conll2003_examples("train", data_dir=conll_root, max_examples=99).tokens == TRAIN_TOKENS


def test_data_dir_may_be_the_folder_or_come_from_the_env(conll_root, monkeypatch):
    assert load_conll2003_examples("train", data_dir=conll_root / "conll2003").tokens == TRAIN_TOKENS
    monkeypatch.setenv(DATA_DIR_ENV, str(conll_root))
    assert load_conll2003_examples("train").tokens == TRAIN_TOKENS


def test_load_skip_bad_rows_reaches_the_reader(conll_root):
    _write(conll_root / "conll2003" / "test.txt", "a O\n\nb B-BAD\n")
    with pytest.raises(DataFormatError, match="line 3: unknown tag 'B-BAD'"):
        load_conll2003("test", data_dir=conll_root)
    examples = load_conll2003_examples("test", data_dir=conll_root, skip_bad_rows=True)
    assert (examples.tokens, examples.skipped) == ([["a"]], 1)


def test_missing_split_file_in_data_dir(conll_root):
    (conll_root / "conll2003" / "valid.txt").unlink()
    with pytest.raises(DataFormatError, match=r"conll2003/valid\.txt: file not found"):
        load_conll2003("validation", data_dir=conll_root)


@pytest.mark.parametrize("kwargs, message", [
    ({"split": "dev"}, "Unknown CoNLL-2003 split 'dev'"),
    ({"split": "train", "max_examples": 0}, "max_examples must be a positive int"),
    ({"split": "train", "max_examples": 2.5}, "max_examples must be a positive int"),
])
def test_bad_arguments(conll_root, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_conll2003(data_dir=conll_root, **kwargs)


# --- load_conll2003 from HF datasets (mocked, no network) ---------------------------------------


def _hf_split(label_names=CONLL2003_LABELS):
    features = datasets.Features({
        "tokens": datasets.List(datasets.Value("string")),
        "ner_tags": datasets.List(datasets.ClassLabel(names=list(label_names))),
    })
    return datasets.Dataset.from_dict(
        {"tokens": TRAIN_TOKENS, "ner_tags": [[ID[t] for t in tags] for tags in TRAIN_TAGS]}, features=features)


@pytest.fixture
def online(monkeypatch):
    """The Hub answers the quick probe; HF datasets itself is mocked by the test."""
    probed = []
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(network, "unreachable_reason", lambda url, timeout=None: probed.append(url))
    return probed


@pytest.fixture
def hub_unreachable(monkeypatch):
    """The Hub does not answer the quick probe."""
    probed = []
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)

    def unreachable(url, timeout=None):
        probed.append(url)
        return "huggingface.co:443: Name or service not known"

    monkeypatch.setattr(network, "unreachable_reason", unreachable)
    return probed


def _offline_flags():
    return datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE


def test_hf_source(monkeypatch, online):
    calls = []

    def fake_load_dataset(path, **kwargs):
        calls.append((path, kwargs))
        return _hf_split()

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    dataset, label_names = load_conll2003("validation", max_examples=2)
    assert calls == [("eriktks/conll2003", {"revision": "refs/convert/parquet", "split": "validation"})]
    assert label_names == CONLL2003_LABELS
    assert _materialize(dataset) == list(zip(TRAIN_TOKENS[:2], TRAIN_TAGS[:2]))


def test_hf_source_with_another_label_order_is_refused(monkeypatch, online):
    monkeypatch.setattr(datasets, "load_dataset", lambda path, **kwargs: _hf_split(sorted(CONLL2003_LABELS)))
    with pytest.raises(ValueError, match="ner_tags are"):
        load_conll2003("train")


def test_hf_failure_raises_one_line_unavailable_error(monkeypatch, online):

    def offline_load_dataset(path, **kwargs):
        raise ConnectionError(f"Couldn't reach '{path}' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline_load_dataset)
    with pytest.raises(DataSourceUnavailableError) as info:
        load_conll2003("test")
    message = str(info.value)
    assert "\n" not in message
    assert "ConnectionError: Couldn't reach 'eriktks/conll2003' on the Hub" in message
    assert f"data_dir=... or set {DATA_DIR_ENV}=..." in message
    assert "conll2003/train.txt, conll2003/valid.txt, conll2003/test.txt" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert online == ["https://huggingface.co"]  # Probed first; it answered, so load_dataset went online.


def test_unreachable_hub_reads_only_the_hf_cache_and_fails_at_once(monkeypatch, hub_unreachable):
    flags = []

    def cache_miss(path, **kwargs):
        flags.append(_offline_flags())
        raise FileNotFoundError(f"Dataset {path} is not cached")

    monkeypatch.setattr(datasets, "load_dataset", cache_miss)
    before = _offline_flags()
    start = time.perf_counter()
    with pytest.raises(DataSourceUnavailableError) as info:
        load_conll2003("train")
    assert time.perf_counter() - start < 10
    assert flags == [(True, True)] and _offline_flags() == before  # Cache only during the call, restored after.
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"CoNLL-2003: no local folder is set (data_dir, ${DATA_DIR_ENV}), HF datasets "
                              f"'eriktks/conll2003' is not in the cache {datasets.config.HF_DATASETS_CACHE}, and "
                              f"https://huggingface.co cannot be reached (huggingface.co:443: Name or service not "
                              f"known).")
    assert f"pass data_dir=... or set {DATA_DIR_ENV}=... to a folder holding conll2003/train.txt" in message


def test_unreachable_hub_still_loads_a_cached_copy(monkeypatch, hub_unreachable):
    flags = []
    monkeypatch.setattr(datasets, "load_dataset", lambda path, **kwargs: flags.append(_offline_flags()) or _hf_split())
    dataset, _ = load_conll2003("validation", max_examples=1)
    assert _materialize(dataset) == list(zip(TRAIN_TOKENS[:1], TRAIN_TAGS[:1]))
    assert flags == [(True, True)] and hub_unreachable == ["https://huggingface.co"]


def test_hf_offline_mode_is_honoured_without_probing(monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # As HF_HUB_OFFLINE=1 / HF_DATASETS_OFFLINE=1 set.
    monkeypatch.setattr(network, "unreachable_reason", lambda url, timeout=None: pytest.fail("probed"))
    monkeypatch.setattr(datasets, "load_dataset", lambda path, **kwargs: _hf_split())
    dataset, _ = load_conll2003("test", max_examples=2)
    assert _materialize(dataset) == list(zip(TRAIN_TOKENS[:2], TRAIN_TAGS[:2]))


# --- empty files --------------------------------------------------------------------------------


@pytest.mark.parametrize("split, name", [("train", "train.txt"), ("validation", "valid.txt"), ("test", "test.txt")])
@pytest.mark.parametrize("content, problem", [
    ("", "no sentences: the file is empty"),
    ("\n\n  \n", "no sentences: the file is empty"),
    ("-DOCSTART- -X- -X- O\n\n-DOCSTART- -X- -X- O\n", "no sentences: the file holds only -DOCSTART- lines"),
    ("Oops\n\nBad B-WHAT\n", "no sentences: all 2 sentence(s) hold a bad line (skipped)"),
])
def test_a_split_file_without_sentences_names_the_file(conll_root, split, name, content, problem):
    path = _write(conll_root / "conll2003" / name, content)
    with pytest.raises(DataFormatError) as info:
        load_conll2003(split, data_dir=conll_root, skip_bad_rows=True)
    assert str(info.value) == f"{path}: {problem}"


# --- real data ----------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("split, sentences, tokens", [
    ("train", 14_041, 203_621), ("validation", 3_250, 51_362), ("test", 3_453, 46_435)])
def test_real_counts(data_dir, split, sentences, tokens):
    examples = load_conll2003_examples(split, data_dir=data_dir)
    assert (len(examples), sum(map(len, examples.tokens)), examples.skipped) == (sentences, tokens, 0)
    dataset, _ = load_conll2003(split, data_dir=data_dir)
    lengths = dataset.map(lambda ex: tf.size(ex["tokens"])).batch(100_000)
    assert [(int(tf.size(b)), int(tf.reduce_sum(b))) for b in lengths] == [(sentences, tokens)]
