"""NER features: label alignment (against the lesson's function on HF's word ids), windows, casing, tf.data batches."""

import itertools

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import pytest
import tensorflow as tf
from transformers import BertTokenizerFast

from conftest import TINY_VOCAB
from tfnlp.data import CONLL2003_LABELS, ConllExamples, load_conll2003_examples
from tfnlp.data.ner_features import IGNORE_INDEX, NerPreprocessor, NerSequences, conll_sequences
from tfnlp.tagging.iob import inside_label_ids
from tfnlp.text import casing, token_windows

ID = {tag: i for i, tag in enumerate(CONLL2003_LABELS)}
SENTENCES = [
    (["John", "lives", "in", "New", "York", "."], ["B-PER", "O", "O", "B-LOC", "I-LOC", "O"]),
    (["Unaffable", "dogs", "running", "!"], ["B-MISC", "O", "O", "O"]),
    (["the", "Cat", "sat", "on", "the", "Mat"], ["O", "B-ORG", "O", "O", "O", "B-ORG"]),
    (["Ünaffable", "東京", "hello", "world", "😀", "X-Men"], ["B-LOC", "B-LOC", "O", "O", "O", "B-MISC"]),
]


def align_labels_with_tokens(labels, word_ids, inside=True):
    """The lesson's function (HF course, chapter 7), with the "ignore" variant of HF's run_ner."""
    new_labels, current_word = [], None
    for word_id in word_ids:
        if word_id != current_word:
            current_word = word_id
            new_labels.append(-100 if word_id is None else labels[word_id])
        elif word_id is None:
            new_labels.append(-100)
        else:
            label = labels[word_id]
            if not inside:
                new_labels.append(-100)
                continue
            if label % 2 == 1:
                label += 1
            new_labels.append(label)
    return new_labels


@pytest.fixture(scope="module")
def hf_tokenizer(tiny_vocab_file):
    return BertTokenizerFast(vocab_file=tiny_vocab_file, do_lower_case=True)


def ragged_words(sentences):
    return tf.ragged.constant([words for words, _ in sentences])


def ragged_tags(sentences):
    return tf.ragged.constant([[ID[tag] for tag in tags] for _, tags in sentences], tf.int32)


def test_inside_label_ids_of_conll():
    assert inside_label_ids(CONLL2003_LABELS) == [0, 2, 2, 4, 4, 6, 6, 8, 8]


@pytest.mark.parametrize("subword_labels", ["inside", "ignore"])
def test_labels_match_the_lessons_alignment_on_hf_word_ids(tiny_vocab_file, hf_tokenizer, subword_labels):
    preprocessor = NerPreprocessor(tiny_vocab_file, max_length=64, subword_labels=subword_labels)
    pieces = preprocessor.words_to_pieces(ragged_words(SENTENCES))
    labels = preprocessor.align_labels(pieces["word_ids"], ragged_tags(SENTENCES)).to_list()
    for row, (words, tags) in enumerate(SENTENCES):
        encoding = hf_tokenizer(words, is_split_into_words=True)
        expected = align_labels_with_tokens([ID[t] for t in tags], encoding.word_ids(), subword_labels == "inside")
        assert [-100] + labels[row] + [-100] == expected, words
        assert [101 * 0 + i for i in encoding["input_ids"][1:-1]] == pieces["input_ids"].to_list()[row]


@pytest.mark.integration
def test_labels_match_the_lesson_on_conll_validation(data_dir):
    """All 3,250 validation sentences with the packaged MiniLM vocabulary: ids and labels as the lesson's code."""
    from tfnlp import pretrained

    examples = load_conll2003_examples("validation", data_dir=data_dir)
    vocab_file, lower_case = pretrained.tokenizer_files()
    hf_tokenizer = BertTokenizerFast(vocab_file=vocab_file, do_lower_case=lower_case)
    preprocessor = NerPreprocessor(vocab_file, lower_case=lower_case, max_length=512)
    words = tf.ragged.constant(examples.tokens)
    pieces = preprocessor.words_to_pieces(words)
    labels = preprocessor.align_labels(pieces["word_ids"], tf.ragged.constant(examples.tag_ids, tf.int32)).to_list()
    ids = pieces["input_ids"].to_list()
    encodings = hf_tokenizer(examples.tokens, is_split_into_words=True)
    for row, tags in enumerate(examples.tag_ids):
        assert ids[row] == encodings["input_ids"][row][1:-1], examples.tokens[row]
        assert [-100] + labels[row] + [-100] == align_labels_with_tokens(tags, encodings.word_ids(row))


def brute_force_merge(lengths, window_length, stride):
    """For each token of each sequence, the index of the window it should be predicted from (Python reference)."""
    step = window_length - stride
    choice, window = [], 0
    for length in lengths:
        starts = [0] if length <= window_length else sorted(
            {min(k * step, length - window_length) for k in range(-(-(length - window_length) // step) + 1)})
        windows = [(window + i, start, min(window_length, length - start)) for i, start in enumerate(starts)]
        window += len(starts)
        row = []
        for position in range(length):
            best = None
            for index, start, size in windows:
                if start <= position < start + size:
                    left = float("inf") if start == 0 else position - start
                    right = float("inf") if start + size == length else start + size - 1 - position
                    score = min(left, right)
                    if best is None or score > best[0]:
                        best = (score, index)
            row.append(best[1])
        choice.append(row)
    return choice, window


@pytest.mark.parametrize("window_length,stride", [(4, 0), (4, 2), (5, 3), (1, 0), (8, 7)])
def test_windows_cover_every_token_and_merge_from_the_best_window(window_length, stride):
    lengths = [0, 1, 3, 4, 5, 9, 17, 30]
    windows = token_windows.split_windows(tf.constant(lengths), window_length, stride)
    expected_choice, expected_count = brute_force_merge(lengths, window_length, stride)
    assert int(tf.size(windows.sequence)) == expected_count
    assert (windows.length.numpy() <= window_length).all()
    # Each window's values say which window they are: the merge must pick the reference's window for each token.
    values = tf.RaggedTensor.from_row_lengths(
        tf.repeat(tf.range(expected_count, dtype=tf.int64), windows.length), windows.length)
    assert token_windows.merge_windows(values, windows).to_list() == expected_choice
    # Windows hold exactly the tokens of their span.
    tokens = tf.ragged.range(tf.constant(lengths, tf.int64))
    for window, span in enumerate(token_windows.gather_windows(tokens, windows).to_list()):
        start = int(windows.start[window])
        assert span == list(range(start, start + int(windows.length[window])))


def test_split_windows_rejects_bad_settings():
    with pytest.raises(ValueError, match="stride"):
        token_windows.split_windows(tf.constant([3]), 4, 4)
    with pytest.raises(ValueError, match="window_length"):
        token_windows.split_windows(tf.constant([3]), 0)


@pytest.mark.parametrize("text,expected", [
    ("Moscow", ["title"]), ("IBM", ["upper"]), ("iPhone", ["mixed"]), ("apple", ["lower"]), ("42", ["uncased"]),
    ("A", ["title"]), ("É", ["title"]), ("ÉCOLE", ["upper"]), ("東京", ["uncased"]), ("Ǆ", ["title"]),
    ("😀", ["uncased"]), ("McDonald", ["mixed"]), ("", ["none"]),
])
def test_piece_casing(text, expected):
    chars = tf.strings.unicode_decode(tf.constant([text]), "UTF-8")
    ids = casing.piece_casing(chars, tf.constant([0]), tf.constant([0]), tf.constant([len(text)]))
    assert [casing.CASING_NAMES[i] for i in ids.numpy()] == expected


def test_casing_of_word_and_text_pieces_agree(tiny_vocab_file):
    """The casing of a piece is the same whether it comes from words or from the text those words make."""
    preprocessor = NerPreprocessor(tiny_vocab_file, max_length=64, casing=True)
    words = [words for words, _ in SENTENCES]
    from_words = preprocessor.words_to_pieces(tf.ragged.constant(words))["casing_ids"].to_list()
    from_text, _ = preprocessor.texts_to_pieces(tf.constant([" ".join(w) for w in words]))
    assert from_words == from_text["casing_ids"].to_list()
    assert from_words[0][:2] == [casing.TITLE, casing.LOWER]  # "John", "lives"


def check_batches(batches, preprocessor):
    """Every batch: padded to its own longest window; [CLS]/[SEP]/padding labelled -100; casing 0 there."""
    windows = 0
    for inputs, labels in batches:
        mask = inputs["attention_mask"].numpy()
        lengths = mask.sum(axis=1)
        assert lengths.max() == mask.shape[1] and lengths.max() <= preprocessor.max_length
        ids, labels = inputs["input_ids"].numpy(), labels.numpy()
        for row, length in enumerate(lengths):
            assert ids[row, 0] == preprocessor.cls_id and ids[row, length - 1] == preprocessor.sep_id
            assert (ids[row, length:] == preprocessor.pad_id).all()
            assert labels[row, 0] == IGNORE_INDEX and (labels[row, length - 1:] == IGNORE_INDEX).all()
            types = inputs["token_type_ids"].numpy()[row]
            assert types[0] == 0 and (types[length - 1:] == 0).all()  # Casing "none" on [CLS], [SEP], padding.
            if preprocessor.casing:
                assert set(types[1:length - 1]) <= set(range(1, casing.NUM_CASING_IDS))
            else:
                assert (types == 0).all()
        windows += len(lengths)
    return windows


def test_training_batches_window_long_sentences_instead_of_cutting(tiny_vocab_file):
    """A sentence longer than the window becomes overlapping windows; every word's first piece gets its label."""
    long_words = ["the", "cat", "sat", "on", "the", "mat"] * 5 + ["John", "lives", "in", "New", "York"]
    long_tags = [0] * 30 + [ID["B-PER"], 0, 0, ID["B-LOC"], ID["I-LOC"]]
    sequences = NerSequences(words=[long_words, ["John"]], tags=[long_tags, [ID["B-PER"]]], sentences=[])
    preprocessor = NerPreprocessor(tiny_vocab_file, max_length=10, stride=0, casing=True)
    batches = preprocessor.training_batches(sequences, batch_size=3, shuffle=True, seed=1)
    windows = check_batches(batches, preprocessor)
    assert windows == int(tf.size(token_windows.split_windows(tf.constant([35, 1]), 8).sequence)) == 6
    labelled = sorted(int(v) for _, labels in batches for v in labels.numpy().ravel() if v != IGNORE_INDEX)
    # 35 pieces, windows of 8 at 0, 8, 16, 24 and 27 (the last one aligned to the end): "John" (piece 30) is in
    # two windows, "New" (piece 33) in one; plus the short sentence's "John".
    assert labelled.count(ID["B-PER"]) == 3 and labelled.count(ID["B-LOC"]) == 1
    assert labelled.count(ID["I-LOC"]) == 1 and len(labelled) == 5 * 8 + 1


def test_predict_word_logits_gives_every_word_its_first_piece(tiny_vocab_file):
    """With a model whose logits encode each piece's id, every word (also past the window) gets its first piece's."""
    preprocessor = NerPreprocessor(tiny_vocab_file, labels=[f"L{i}" for i in range(len(TINY_VOCAB))], max_length=6,
                                   stride=2)

    def id_model(inputs, training=False):
        return tf.one_hot(inputs["input_ids"], len(TINY_VOCAB)) * 10.0

    words = [["unaffable", "dogs", "running", "the", "cat", "sat", "on", "the", "mat", "\u00ad", "hello"], [], ["new"]]
    outputs = preprocessor.predict_word_logits(id_model, words, words_per_call=5)
    vocabulary = {token: i for i, token in enumerate(TINY_VOCAB)}
    expected = [[vocabulary[t] for t in ("un", "dog", "run", "the", "cat", "sat", "on", "the", "mat")]
                + [0, vocabulary["hello"]], [], [vocabulary["new"]]]
    assert [list(o.argmax(axis=-1)) for o in outputs] == expected  # The soft hyphen has no piece: label 0.


def test_conll_sequences_join_documents_and_split_back():
    examples = ConllExamples("x", [["A", "b"], ["C"], ["D", "e", "f"]], [[1, 0], [0], [3, 4, 0]], document_ids=[1, 1, 2])
    documents = conll_sequences(examples, "document")
    assert documents.words == [["A", "b", "C"], ["D", "e", "f"]]
    assert documents.sentence_values(documents.tags) == examples.tag_ids
    sentences = conll_sequences(examples, "sentence")
    assert sentences.words == examples.tokens and sentences.sentence_values(sentences.words) == examples.tokens


def test_conll_sequences_without_documents_fall_back_to_sentences(caplog):
    examples = ConllExamples("hf:validation", [["A"], ["B"]], [[1], [0]])
    assert conll_sequences(examples, "document").words == [["A"], ["B"]]
    assert "no document boundaries" in caplog.text


def test_preprocessor_rejects_bad_settings(tiny_vocab_file):
    with pytest.raises(ValueError, match="max_length"):
        NerPreprocessor(tiny_vocab_file, max_length=2)
    with pytest.raises(ValueError, match="stride"):
        NerPreprocessor(tiny_vocab_file, max_length=10, stride=8)
    with pytest.raises(ValueError, match="subword_labels"):
        NerPreprocessor(tiny_vocab_file, subword_labels="first")


def test_document_ids_from_docstart_lines(tmp_path):
    from tfnlp.data import read_conll

    path = tmp_path / "train.txt"
    path.write_text("-DOCSTART- -X- -X- O\n\nA NNP B-NP B-PER\n\nB NNP B-NP O\n-DOCSTART- -X- -X- O\n\nC NNP B-NP O\n")
    examples = read_conll(path)
    assert examples.tokens == [["A"], ["B"], ["C"]]
    groups = [list(g) for _, g in itertools.groupby(range(3), key=lambda i: examples.document_ids[i])]
    assert groups == [[0, 1], [2]]
    assert np.all(np.diff(examples.document_ids) >= 0)


@pytest.mark.parametrize("name", ["tfnlp.data.ner_features", "tfnlp.text.casing", "tfnlp.text.token_windows",
                                  "tfnlp.tagging.entity_grouping", "tfnlp.tagging.iob", "tfnlp.tagging.iob_decoding",
                                  "tfnlp.training.ner_metrics",
                                  "tfnlp.training.losses", "tfnlp.training.weight_averaging",
                                  "tfnlp.serving.ner_predictor"])
def test_docstring_examples_of_the_ner_modules(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
