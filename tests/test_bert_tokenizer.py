"""Tests of tfnlp.text.BertTokenizer: in-graph tokenization, its outputs, saving, and parity with HF.

Unit tests use the tiny vocabulary of ``conftest.py`` (ids: [PAD] 0, [UNK] 2,
[CLS] 3, [SEP] 4, the 6, a 7, cat 8, sat 9, ##s 13, . 21, un 26, ##aff 27,
##able 28, hello 29, world 30). Integration tests compare with HuggingFace
``BertTokenizerFast`` of the packaged all-MiniLM-L6-v2 on the real data and on
every character of Unicode 3.2 (that one in the large tier, `make test-all`).
"""

import doctest
import json
import os
import random
import unicodedata

import tfnlp  # noqa: F401  (selects Keras 2 before TensorFlow is imported)

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
import transformers

from tfnlp import data, pretrained
from tfnlp.text import BertTokenizer, bert_tokenizer

PAD, UNK, CLS, SEP = 0, 2, 3, 4
THE, CAT, SAT, S, DOT, UN, AFF, ABLE, HELLO, WORLD = 6, 8, 9, 13, 21, 26, 27, 28, 29, 30


def tokenize(layer, texts):
    """Runs ``layer`` on a list of texts (or of word lists) and returns NumPy outputs."""
    inputs = tf.ragged.constant(texts) if layer.is_split_into_words else tf.constant(texts)
    return {key: value.numpy() for key, value in layer(inputs).items()}


def rows(outputs, key):
    """The unpadded rows of ``outputs[key]``, as lists."""
    return [row[mask.astype(bool)].tolist() for row, mask in zip(outputs[key], outputs["attention_mask"])]


# Outputs.

def test_outputs_are_int32_padded_to_the_longest_sequence(tiny_vocab_file):
    outputs = tokenize(BertTokenizer(tiny_vocab_file), ["The cats sat.", "Cat", "hello world"])
    assert sorted(outputs) == ["attention_mask", "input_ids", "token_type_ids"]
    np.testing.assert_array_equal(outputs["input_ids"], [[CLS, THE, CAT, S, SAT, DOT, SEP],
                                                         [CLS, CAT, SEP, PAD, PAD, PAD, PAD],
                                                         [CLS, HELLO, WORLD, SEP, PAD, PAD, PAD]])
    np.testing.assert_array_equal(outputs["attention_mask"], [[1] * 7, [1] * 3 + [0] * 4, [1] * 4 + [0] * 3])
    np.testing.assert_array_equal(outputs["token_type_ids"], np.zeros((3, 7)))
    assert all(value.dtype == np.int32 for value in outputs.values())


def test_max_length_padding_has_a_static_length(tiny_vocab_file):
    layer = BertTokenizer(tiny_vocab_file, sequence_length=10, padding="max_length")
    outputs = layer(tf.constant(["the cat"]))
    assert outputs["input_ids"].shape.as_list() == [1, 10]
    np.testing.assert_array_equal(outputs["input_ids"], [[CLS, THE, CAT, SEP] + [PAD] * 6])
    np.testing.assert_array_equal(outputs["attention_mask"], [[1] * 4 + [0] * 6])
    traced = tf.function(layer).get_concrete_function(tf.TensorSpec([None], tf.string))
    assert traced.structured_outputs["input_ids"].shape.as_list() == [None, 10]


def test_truncation_keeps_cls_and_sep(tiny_vocab_file):
    outputs = tokenize(BertTokenizer(tiny_vocab_file, sequence_length=5), ["the cat sat on the mat", "cat"])
    np.testing.assert_array_equal(outputs["input_ids"], [[CLS, THE, CAT, SAT, SEP], [CLS, CAT, SEP, PAD, PAD]])


@pytest.mark.parametrize("padding", ["longest", "max_length"])
def test_num_truncated_tokens_counts_the_pieces_cut(tiny_vocab_file, padding):
    """HF's ``num_truncated_tokens``: 6 pieces in 5 tokens lose 3; ASCII (fast path) and other texts, words too."""
    texts = ["the cat sat on the mat", "cat", "", "the cats", "ünaffable cat sat"]  # 6, 1, 0, 3, 5 pieces.
    outputs = tokenize(BertTokenizer(tiny_vocab_file, sequence_length=5, padding=padding,
                                     return_num_truncated_tokens=True), texts)
    assert outputs["num_truncated_tokens"].tolist() == [3, 0, 0, 0, 2]
    assert outputs["num_truncated_tokens"].dtype == np.int32
    words = tokenize(BertTokenizer(tiny_vocab_file, sequence_length=4, is_split_into_words=True,
                                   return_num_truncated_tokens=True), [["the", "cats"], ["cat"]])
    assert words["num_truncated_tokens"].tolist() == [1, 0]
    uncut = tokenize(BertTokenizer(tiny_vocab_file, sequence_length=5, truncation=False,
                                   return_num_truncated_tokens=True), texts)
    assert uncut["num_truncated_tokens"].tolist() == [0] * 5


def test_without_truncation_sequences_keep_every_token(tiny_vocab_file):
    text = ["the cat sat on the mat"]
    longest = tokenize(BertTokenizer(tiny_vocab_file, sequence_length=5, truncation=False), text)
    assert longest["input_ids"].shape == (1, 8) and longest["input_ids"][0, -1] == SEP
    fixed = tokenize(BertTokenizer(tiny_vocab_file, sequence_length=5, truncation=False, padding="max_length"),
                     text + ["cat"])
    assert fixed["input_ids"].shape == (2, 8)
    short = tokenize(BertTokenizer(tiny_vocab_file, sequence_length=12, truncation=False, padding="max_length"),
                     text)
    assert short["input_ids"].shape == (1, 12)


def test_wordpieces_unknown_words_and_normalization(tiny_vocab_file):
    layer = BertTokenizer(tiny_vocab_file)
    assert rows(tokenize(layer, ["unaffable Zebra"]), "input_ids") == [[CLS, UN, AFF, ABLE, UNK, SEP]]
    # Lowercasing, accents, soft hyphen / zero-width space / control characters removed, any whitespace splits.
    variants = ["CAT\u3000sat", "càt\tsát", "ca\u00adt\u200b\nsat", "c\x01at\u2028s\ufffdat", "ca\x7ft sat"]
    assert rows(tokenize(layer, variants), "input_ids") == [[CLS, CAT, SAT, SEP]] * len(variants)
    cased = BertTokenizer(tiny_vocab_file, lower_case=False)
    assert rows(tokenize(cased, ["Cat cat càt"]), "input_ids") == [[CLS, UNK, CAT, UNK, SEP]]
    cased_stripped = BertTokenizer(tiny_vocab_file, lower_case=False, strip_accents=True)
    assert rows(tokenize(cased_stripped, ["Cat càt"]), "input_ids") == [[CLS, UNK, CAT, SEP]]


def test_cjk_characters_are_words_of_their_own(tiny_vocab_file):
    layer = BertTokenizer(tiny_vocab_file, return_word_ids=True)
    outputs = tokenize(layer, ["cat日本cat"])
    assert rows(outputs, "input_ids") == [[CLS, CAT, UNK, UNK, CAT, SEP]]
    assert rows(outputs, "word_ids") == [[-1, 0, 1, 2, 3, -1]]
    no_split = BertTokenizer(tiny_vocab_file, tokenize_chinese_chars=False)
    assert rows(tokenize(no_split, ["cat日本cat"]), "input_ids") == [[CLS, UNK, SEP]]


def test_empty_and_whitespace_only_texts_give_cls_sep(tiny_vocab_file):
    layer = BertTokenizer(tiny_vocab_file, return_word_ids=True, return_offsets=True)
    outputs = tokenize(layer, ["", " \t\n\u00a0 ", "\u200b"])
    np.testing.assert_array_equal(outputs["input_ids"], [[CLS, SEP]] * 3)
    np.testing.assert_array_equal(outputs["word_ids"], [[-1, -1]] * 3)
    np.testing.assert_array_equal(outputs["offset_mapping"], np.zeros((3, 2, 2)))
    np.testing.assert_array_equal(tokenize(BertTokenizer(tiny_vocab_file), [""])["input_ids"], [[CLS, SEP]])


def test_a_100000_character_text(tiny_vocab_file):
    layer = BertTokenizer(tiny_vocab_file, sequence_length=8, return_offsets=True)
    outputs = tokenize(layer, ["hello world " * 8333 + "cat", "a" * 100_000])
    np.testing.assert_array_equal(outputs["input_ids"], [[CLS] + [HELLO, WORLD] * 3 + [SEP],
                                                         [CLS, UNK, SEP] + [PAD] * 5])
    # A word of more than 100 characters is one unknown token spanning the word, as in HF.
    np.testing.assert_array_equal(outputs["offset_mapping"][1, 1], [0, 100_000])


def test_word_ids_of_raw_text_count_pre_tokens(tiny_vocab_file):
    layer = BertTokenizer(tiny_vocab_file, return_word_ids=True)
    outputs = tokenize(layer, ["The cats sat.", "hello"])
    np.testing.assert_array_equal(outputs["word_ids"], [[-1, 0, 1, 1, 2, 3, -1], [-1, 0, -1, -1, -1, -1, -1]])


def test_offsets_are_code_points_of_the_original_text(tiny_vocab_file):
    layer = BertTokenizer(tiny_vocab_file, return_offsets=True)
    text = "¡Thé ca\u00adts 😀!"  # 2-byte, 4-byte and removed characters before the tokens.
    outputs = tokenize(layer, [text])
    assert rows(outputs, "input_ids") == [[CLS, UNK, THE, CAT, S, UNK, 23, SEP]]
    spans = [tuple(span) for span in outputs["offset_mapping"][0]]
    assert spans == [(0, 0), (0, 1), (1, 4), (5, 9), (9, 10), (11, 12), (12, 13), (0, 0)]
    assert [text[start:end] for start, end in spans[1:-1]] == ["¡", "Thé", "ca\u00adt", "s", "😀", "!"]


def test_words_input_gives_word_ids_and_offsets_within_each_word(tiny_vocab_file):
    layer = BertTokenizer(tiny_vocab_file, is_split_into_words=True, return_word_ids=True, return_offsets=True)
    outputs = tokenize(layer, [["The", "cats.", "", "sat"], ["hello"]])
    assert rows(outputs, "input_ids") == [[CLS, THE, CAT, S, DOT, SAT, SEP], [CLS, HELLO, SEP]]
    assert rows(outputs, "word_ids") == [[-1, 0, 1, 1, 1, 3, -1], [-1, 0, -1]]
    np.testing.assert_array_equal(outputs["offset_mapping"][0], [[0, 0], [0, 3], [0, 3], [3, 4], [4, 5], [0, 3],
                                                                 [0, 0]])
    dense = {key: value.numpy() for key, value in layer(tf.constant([["The", "cats."], ["hello", ""]])).items()}
    assert rows(dense, "word_ids") == [[-1, 0, 1, 1, 1, -1], [-1, 0, -1]]


@pytest.mark.parametrize("seed", range(3))
def test_ascii_fast_path_gives_the_ids_of_the_exact_path(tiny_vocab_file, seed):
    rng = random.Random(seed)
    pieces = ["the", "cat", "sat", "un", "aff", "able", "hello", "Zebra", "s", ".", ",", "!", "'", "-", "$", "~",
              " ", "  ", "\t", "\n", "\r", "\x01", "\x7f", "a" * 99, "a" * 101, "\u00e9", "\u00ad"]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randrange(0, 40))) for _ in range(64)]
    fast = tokenize(BertTokenizer(tiny_vocab_file, truncation=False), texts)
    exact = tokenize(BertTokenizer(tiny_vocab_file, truncation=False, return_word_ids=True), texts)
    np.testing.assert_array_equal(fast["input_ids"], exact["input_ids"])


@pytest.mark.parametrize("seed", range(2))
def test_tokenize_groups_the_ids_of_call_by_word(tiny_vocab_file, seed):
    rng = random.Random(seed)
    pieces = ["the", "cat", "sat", "un", "aff", "able", "hello", "Zebra", "s", ".", ",", "!", " ", "  ", "\t",
              "\u00e9", "\u00ad", "\u6771", "a" * 101]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randrange(0, 30))) for _ in range(32)]
    layer = BertTokenizer(tiny_vocab_file, truncation=False, return_word_ids=True)
    by_word = layer.tokenize(tf.constant(texts))
    assert by_word.shape.rank == 3 and by_word.dtype == tf.int32
    outputs = tokenize(layer, texts)
    for row, (words, ids, word_ids) in enumerate(zip(by_word.to_list(), rows(outputs, "input_ids"),
                                                      rows(outputs, "word_ids"))):
        assert [piece for word in words for piece in word] == ids[1:-1], texts[row]
        assert [i for i, word in enumerate(words) for _ in word] == word_ids[1:-1], texts[row]


def test_tokenize_of_the_doc_example_and_special_token_ids(tiny_vocab_file):
    layer = BertTokenizer(tiny_vocab_file)
    assert layer.tokenize(tf.constant(["The cats sat.", ""])).to_list() == [[[THE], [CAT, S], [SAT], [DOT]], []]
    assert layer.special_token_ids() == {"start_of_sequence_id": CLS, "end_of_segment_id": SEP,
                                         "padding_id": PAD, "vocab_size": 31}


# Graphs, tf.data, config and saving.

def test_runs_inside_tf_data_map_on_batches(tiny_vocab_file):
    layer = BertTokenizer(tiny_vocab_file, sequence_length=6, padding="max_length")
    texts = ["the cat", "hello world", "sat", "unaffable", "dogs"]
    batches = list(tf.data.Dataset.from_tensor_slices(texts).batch(2).map(layer))
    mapped = np.concatenate([batch["input_ids"].numpy() for batch in batches])
    np.testing.assert_array_equal(mapped, tokenize(layer, texts)["input_ids"])


def test_config_round_trip_and_registration(tiny_vocab_file):
    layer = BertTokenizer(tiny_vocab_file, lower_case=False, strip_accents=True, sequence_length=16,
                          padding="max_length", truncation=False, return_word_ids=True, return_offsets=True,
                          name="tokenizer")
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config
    assert config["vocabulary"] == tiny_vocab_file and config["strip_accents"] is True
    clone = BertTokenizer.from_config(config)
    assert clone.get_config() == config
    assert tf_keras.utils.get_registered_name(BertTokenizer) == "tfnlp>BertTokenizer"
    revived = tf_keras.layers.deserialize(tf_keras.layers.serialize(layer))
    texts = ["Hello World", "the cats"]
    for key, value in tokenize(layer, texts).items():
        np.testing.assert_array_equal(tokenize(revived, texts)[key], value)


def test_list_vocabulary_is_kept_in_the_config(tiny_vocab_file):
    with open(tiny_vocab_file, encoding="utf-8") as f:
        tokens = f.read().splitlines()
    layer = BertTokenizer(tokens)
    assert layer.get_config()["vocabulary"] == tokens and layer.vocabulary_file is None
    clone = BertTokenizer.from_config(json.loads(json.dumps(layer.get_config())))
    np.testing.assert_array_equal(tokenize(clone, ["the cats"])["input_ids"], [[CLS, THE, CAT, S, SEP]])


def test_saved_model_serves_raw_strings_and_holds_the_vocabulary(tiny_vocab_file, tmp_path):
    text = tf_keras.Input(shape=(), dtype=tf.string, name="text")
    outputs = BertTokenizer(tiny_vocab_file, sequence_length=8, padding="max_length", return_word_ids=True,
                            return_offsets=True, name="tokenizer")(text)
    model = tf_keras.Model(text, outputs)
    texts = tf.constant(["The cats sat.", "¡Hé 😀 unaffable!", ""])
    expected = model(texts)
    path = str(tmp_path / "tokenizer_model")
    serve = tf.function(lambda text: model(text), input_signature=[tf.TensorSpec([None], tf.string)])
    tf.saved_model.save(model, path, signatures={"serving_default": serve})
    assert os.listdir(os.path.join(path, "assets")) == ["vocab.txt"]
    os.rename(tiny_vocab_file, tiny_vocab_file + ".moved")  # The reloaded graph must not need the original file.
    try:
        reloaded = tf.saved_model.load(path)
        served = reloaded.signatures["serving_default"](text=texts)
    finally:
        os.rename(tiny_vocab_file + ".moved", tiny_vocab_file)
    assert sorted(served) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(served[key], value)


@pytest.mark.parametrize("save_format", ["keras", "tf"])
def test_keras_model_save_and_load_model(tiny_vocab_file, tmp_path, save_format):
    text = tf_keras.Input(shape=(), dtype=tf.string, name="text")
    layer = BertTokenizer(tiny_vocab_file, sequence_length=8, padding="max_length", return_word_ids=True)
    model = tf_keras.Model(text, layer(text))
    path = str(tmp_path / ("model.keras" if save_format == "keras" else "model"))
    model.save(path, save_format=save_format)
    reloaded = tf_keras.models.load_model(path)
    assert isinstance(reloaded.layers[-1], BertTokenizer)
    texts = tf.constant(["Hello world!", "the cats"])
    for key, value in model(texts).items():
        np.testing.assert_array_equal(reloaded(texts)[key], value)


def test_docstring_example_runs():
    result = doctest.testmod(bert_tokenizer)
    assert result.attempted > 0 and result.failed == 0


def test_from_pretrained_reads_vocab_and_casing_of_a_folder(tiny_vocab_file, tmp_path):
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "vocab.txt").write_text(open(tiny_vocab_file, encoding="utf-8").read(), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}), encoding="utf-8")
    layer = BertTokenizer.from_pretrained(str(folder), sequence_length=9)
    assert (layer.lower_case, layer.sequence_length) == (False, 9)
    assert rows(tokenize(layer, ["Cat cat"]), "input_ids") == [[CLS, UNK, CAT, SEP]]


# Errors.

def test_bad_arguments_raise_clear_errors(tiny_vocab_file, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        BertTokenizer(str(tmp_path / "missing.txt"))
    no_cls = tmp_path / "vocab.txt"
    no_cls.write_text("[PAD]\n[UNK]\n[SEP]\ncat\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"vocab.txt: special token '\[CLS\]' is not in the vocabulary"):
        BertTokenizer(str(no_cls))
    with pytest.raises(ValueError, match="padding must be"):
        BertTokenizer(tiny_vocab_file, padding="max")
    with pytest.raises(ValueError, match="sequence_length must be"):
        BertTokenizer(tiny_vocab_file, sequence_length=1)
    with pytest.raises(ValueError, match="is_split_into_words=True"):
        BertTokenizer(tiny_vocab_file)(tf.ragged.constant([["the", "cat"]]))
    with pytest.raises(ValueError, match="expected a batch of texts"):
        BertTokenizer(tiny_vocab_file)(tf.constant([[1, 2]]))


# Parity with HF BertTokenizerFast (integration).

@pytest.fixture(scope="module")
def hf_tokenizer():
    return transformers.BertTokenizerFast.from_pretrained(pretrained.packaged_model_dir(), local_files_only=True)


@pytest.fixture(scope="module")
def vocab_file():
    return pretrained.tokenizer_files().vocab_file


def mismatches(layer, hf_tokenizer, inputs, batch_size=1024):
    """Counts the inputs whose ids, word ids or offsets differ from HF's (untruncated, unpadded)."""
    words = layer.is_split_into_words
    expected = hf_tokenizer(inputs, is_split_into_words=words, return_offsets_mapping=layer.return_offsets)
    counts = {"input_ids": 0, "word_ids": 0, "offset_mapping": 0}
    for start in range(0, len(inputs), batch_size):
        outputs = tokenize(layer, inputs[start:start + batch_size])
        for key in [key for key in counts if key in outputs]:
            for i, row in enumerate(rows(outputs, key), start):
                if key == "word_ids":
                    want = [-1 if w is None else w for w in expected.word_ids(i)]
                else:
                    want = [list(item) if isinstance(item, tuple) else item for item in expected[key][i]]
                counts[key] += row != want
    return {key: count for key, count in counts.items() if key in outputs}


@pytest.mark.large  # All 7,600 test texts; make test checks the CoNLL validation words.
@pytest.mark.integration
def test_parity_with_hf_on_every_ag_news_test_text(data_dir, hf_tokenizer, vocab_file):
    texts = data.read_ag_news_csv(os.path.join(data_dir, "ag_news", "test.csv")).texts
    assert len(texts) == 7600
    ids_only = BertTokenizer.from_pretrained(truncation=False)  # The packaged MiniLM's vocab.txt, uncased.
    assert ids_only.lower_case and ids_only.vocabulary_size == 30522
    assert mismatches(ids_only, hf_tokenizer, texts) == {"input_ids": 0}
    exact = BertTokenizer(vocab_file, truncation=False, return_word_ids=True, return_offsets=True)
    assert mismatches(exact, hf_tokenizer, texts) == {"input_ids": 0, "word_ids": 0, "offset_mapping": 0}

    truncated = tokenize(BertTokenizer(vocab_file, sequence_length=128, padding="max_length"), texts)
    expected = hf_tokenizer(texts, padding="max_length", truncation=True, max_length=128, return_tensors="np")
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert (truncated[key] != expected[key]).any(axis=1).sum() == 0, key


@pytest.mark.integration
def test_parity_with_hf_on_conll_validation_words(data_dir, hf_tokenizer, vocab_file):
    sentences = data.read_conll(os.path.join(data_dir, "conll2003", "valid.txt")).tokens
    assert len(sentences) == 3250
    layer = BertTokenizer(vocab_file, truncation=False, is_split_into_words=True, return_word_ids=True,
                          return_offsets=True)
    assert mismatches(layer, hf_tokenizer, sentences) == {"input_ids": 0, "word_ids": 0, "offset_mapping": 0}


# Characters whose Unicode category changed after the version of HF's tables (Po->So, Lo->Mn, Mn->Mc).
HF_OLDER_UNICODE = {0x166D, 0x1734, 0x1885, 0x1886}


@pytest.mark.integration
@pytest.mark.large
def test_parity_with_hf_on_every_character_of_unicode_3_2(hf_tokenizer, vocab_file):
    code_points = [code_point for code_point in range(1, 0x110000)
                   if unicodedata.ucd_3_2_0.category(chr(code_point)) not in ("Cn", "Cs")
                   and code_point not in HF_OLDER_UNICODE]
    # Each character inside a word, before an accent, and alone at the end.
    texts = [f"ab{chr(code_point)}cd e\u00e9{chr(code_point)}" for code_point in code_points]
    layer = BertTokenizer(vocab_file, truncation=False, return_word_ids=True, return_offsets=True)
    assert mismatches(layer, hf_tokenizer, texts, batch_size=8192) == {
        "input_ids": 0, "word_ids": 0, "offset_mapping": 0}
