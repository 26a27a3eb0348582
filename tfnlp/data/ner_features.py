"""Token-classification features for BERT: words and IOB2 tags to sub-word windows, in ``tf.data``.

`NerPreprocessor` does, in the graph (inside ``tf.data.Dataset.map``, a
``tf.function`` or a SavedModel):

1. **Tokenization** with `tfnlp.text.BertTokenizer` (HF ``BertTokenizerFast``'s
   ids, word ids and character offsets), from words (``is_split_into_words``,
   training and evaluation) or from raw text (serving);
2. **Label alignment** (the lesson's ``align_labels_with_tokens``): the first
   piece of a word takes the word's tag; the later pieces take its ``I-`` form
   (``subword_labels="inside"``) or -100, ignored by the loss
   (``subword_labels="ignore"``); ``[CLS]``, ``[SEP]`` and padding take -100;
3. **Windows** (`tfnlp.text.token_windows`): a sequence longer than
   ``max_length - 2`` pieces becomes overlapping windows instead of being cut,
   and predictions are merged back so that every piece, hence every word, gets
   one;
4. optionally the **casing** of each piece (`tfnlp.text.casing`), which an
   uncased BERT's ids no longer carry.

A "sequence" is whatever the model reads as one text: a sentence, or with
``context="document"`` (`conll_sequences`) a whole CoNLL document, so that the
windows give each sentence its neighbours as context (the BERT paper's NER
set-up). Evaluation maps the predictions back to sentences.

Example:
>>> preprocessor = NerPreprocessor(
...     ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "john", "lives", "in", "new", "york", "##er"],
...     labels=["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], max_length=8)
>>> pieces = preprocessor.words_to_pieces(tf.ragged.constant([["John", "lives", "in", "New", "Yorker"]]))
>>> pieces["input_ids"].to_list(), pieces["word_ids"].to_list()
([[4, 5, 6, 7, 8, 9]], [[0, 1, 2, 3, 4, 4]])
>>> preprocessor.align_labels(pieces["word_ids"], tf.ragged.constant([[1, 0, 0, 3, 3]])).to_list()
[[1, 0, 0, 3, 3, 4]]
"""

import dataclasses
import logging

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import tensorflow as tf

from tfnlp import pretrained
from tfnlp.data.batching import disable_autotuning, length_boundaries, with_known_cardinality
from tfnlp.data.conll2003 import CONLL2003_LABELS
from tfnlp.tagging.iob import inside_label_ids
from tfnlp.text import casing as casing_lib
from tfnlp.text import token_windows
from tfnlp.text.bert_tokenizer import BertTokenizer

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100  # Label of pieces the loss and the metrics skip (HF's and PyTorch's convention).
SUBWORD_LABELS = ("inside", "ignore")
CONTEXTS = ("sentence", "document")


class NerPreprocessor:
    """Words or texts to BERT token-classification inputs: pieces, aligned labels, windows.

    Model inputs are dicts of int32 ``[windows, length]`` Tensors:
    ``input_ids``, ``attention_mask`` and ``token_type_ids`` (HF names). With
    ``casing``, ``token_type_ids`` holds each piece's casing id
    (`tfnlp.text.casing`; 0 on special tokens and padding), which a model from
    `tfnlp.models.build_bert_token_classifier(..., casing=True)` embeds; else
    it is 0 (one segment). Labels are int32 ``[windows, length]`` with
    `IGNORE_INDEX` where no label applies.

    Args:
        vocabulary: str or list of str. WordPiece ``vocab.txt`` path or tokens.
        labels: sequence of str. IOB2 tag names; tag ``i`` is ``labels[i]``.
        lower_case: bool. Lowercase (and strip accents), as the vocabulary's model expects.
        max_length: int. Tokens per window, ``[CLS]`` and ``[SEP]`` included (at most the model's
            ``max_position_embeddings``).
        stride: int or None. Pieces shared by consecutive windows when predicting (HF's ``stride``).
            None: half a window.
        subword_labels: str. Label of the later pieces of a word: ``"inside"`` (the ``I-`` form of the
            word's tag, as the lesson) or ``"ignore"`` (`IGNORE_INDEX`).
        casing: bool. Give the casing ids of the pieces as ``token_type_ids``.

    Example:
    >>> preprocessor = NerPreprocessor.from_pretrained(max_length=256)  # doctest: +SKIP
    >>> batches = preprocessor.training_batches(conll_sequences(examples), batch_size=8)  # doctest: +SKIP
    """

    def __init__(self, vocabulary, *, labels=CONLL2003_LABELS, lower_case=True, max_length=128, stride=None,
                 subword_labels="inside", casing=False):
        if not isinstance(max_length, int) or max_length < 3:
            raise ValueError(f"max_length must be an int of at least 3 ([CLS], a piece, [SEP]), got {max_length!r}")
        window_length = max_length - 2
        stride = window_length // 2 if stride is None else stride
        if not 0 <= stride < window_length:
            raise ValueError(f"stride must lie in [0, max_length - 2 = {window_length}), got {stride}")
        if subword_labels not in SUBWORD_LABELS:
            raise ValueError(f"subword_labels must be one of {SUBWORD_LABELS}, got {subword_labels!r}")
        self.labels = tuple(labels)
        self.lower_case = bool(lower_case)
        self.max_length = max_length
        self.window_length = window_length
        self.stride = stride
        self.subword_labels = subword_labels
        self.casing = bool(casing)
        options = dict(lower_case=self.lower_case, truncation=False, sequence_length=max_length)
        self.word_tokenizer = BertTokenizer(vocabulary, is_split_into_words=True, return_word_ids=True,
                                            return_offsets=self.casing, name="word_tokenizer", **options)
        self.text_tokenizer = BertTokenizer(vocabulary, return_offsets=True, name="text_tokenizer", **options)
        special = self.text_tokenizer.special_token_ids()
        self.cls_id, self.sep_id, self.pad_id = (
            special["start_of_sequence_id"], special["end_of_segment_id"], special["padding_id"])
        self._inside = inside_label_ids(self.labels)

    @classmethod
    def from_pretrained(cls, name_or_path=None, **kwargs):
        """The preprocessor of a pretrained BERT: its ``vocab.txt`` and ``do_lower_case`` (`tfnlp.pretrained`)."""
        vocab_file, do_lower_case = pretrained.tokenizer_files(name_or_path)
        kwargs.setdefault("lower_case", do_lower_case)
        return cls(vocab_file, **kwargs)

    # Tokenization.

    def words_to_pieces(self, words):
        """Tokenizes sequences of words.

        Args:
            words: string RaggedTensor ``[sequences, (words)]``.

        Returns:
            dict of int32 RaggedTensors ``[sequences, (pieces)]``: ``input_ids``, ``word_ids`` (index of
            the word in its sequence) and, with ``casing``, ``casing_ids``.
        """
        features = _unpack(self.word_tokenizer(words))
        pieces = {"input_ids": features["input_ids"], "word_ids": features["word_ids"]}
        if self.casing:
            chars = tf.strings.unicode_decode(words.flat_values, "UTF-8", errors="replace")
            word_ids = features["word_ids"]
            rows = tf.gather(words.row_starts(), word_ids.value_rowids()) + tf.cast(word_ids.flat_values, tf.int64)
            pieces["casing_ids"] = word_ids.with_flat_values(casing_lib.piece_casing(
                chars, rows, features["start"].flat_values, features["end"].flat_values))
        return pieces

    def texts_to_pieces(self, texts):
        """Tokenizes raw texts.

        Args:
            texts: string Tensor ``[texts]``.

        Returns:
            (pieces, chars): a dict of RaggedTensors ``[texts, (pieces)]``: int32 ``input_ids``, int64
            ``start`` and ``end`` (character offsets, in code points of the text, as HF's
            ``offset_mapping``) and, with ``casing``, int32 ``casing_ids``; and the texts' code points,
            int32 ``[texts, (characters)]`` (invalid UTF-8 bytes read as U+FFFD, as by the tokenizer).
        """
        features = _unpack(self.text_tokenizer(texts))
        chars = tf.strings.unicode_decode(texts, "UTF-8", errors="replace")
        pieces = {"input_ids": features["input_ids"],
                  "start": tf.cast(features["start"], tf.int64), "end": tf.cast(features["end"], tf.int64)}
        if self.casing:
            ids = features["input_ids"]
            pieces["casing_ids"] = ids.with_flat_values(casing_lib.piece_casing(
                chars, ids.value_rowids(), features["start"].flat_values, features["end"].flat_values))
        return pieces, chars

    def align_labels(self, word_ids, tags):
        """Word tags to piece labels (the lesson's ``align_labels_with_tokens``, without special tokens).

        Args:
            word_ids: int RaggedTensor ``[sequences, (pieces)]``. Word of each piece (`words_to_pieces`).
            tags: int RaggedTensor ``[sequences, (words)]``. Tag id of each word.

        Returns:
            int32 RaggedTensor ``[sequences, (pieces)]``.
        """
        word_ids = tf.cast(word_ids, tf.int64)
        flat_word = tf.gather(tags.row_starts(), word_ids.value_rowids()) + word_ids.flat_values
        word_tag = tf.cast(tf.gather(tags.flat_values, flat_word), tf.int32)
        # The first piece of a word: first of its sequence, or its word differs from the previous piece's.
        previous = tf.concat([[-1], flat_word[:-1]], axis=0)
        first = tf.not_equal(flat_word, previous)
        if self.subword_labels == "inside":
            later = tf.gather(tf.constant(self._inside, tf.int32), word_tag)
        else:
            later = tf.fill(tf.shape(word_tag), IGNORE_INDEX)
        return word_ids.with_flat_values(tf.where(first, word_tag, later))

    # Windows.

    def windows(self, pieces, stride=None):
        """Windows over the pieces of each sequence (`tfnlp.text.token_windows.split_windows`).

        Args:
            pieces: dict of RaggedTensors ``[sequences, (pieces)]`` (``input_ids`` at least).
            stride: int or None. Pieces shared by consecutive windows; None: the preprocessor's.

        Returns:
            (windows, model_inputs): `tfnlp.text.token_windows.Windows`, and the model inputs of each
            window (``[CLS]`` + its pieces + ``[SEP]``, padded to the longest window), dict of int32
            ``[windows, length]``.
        """
        windows = token_windows.split_windows(pieces["input_ids"].row_lengths(), self.window_length,
                                              self.stride if stride is None else stride)
        return windows, self._pad(self._window_inputs(pieces, windows))

    def _window_inputs(self, pieces, windows):
        """The model inputs of each window as int32 RaggedTensors ``[windows, (length + 2)]``."""
        inputs = {"input_ids": _window_values(pieces["input_ids"], windows, self.cls_id, self.sep_id)}
        ids = inputs["input_ids"]
        inputs["attention_mask"] = ids.with_flat_values(tf.ones_like(ids.flat_values))
        if self.casing:  # The casing model reads casing ids as token types (`build_bert_token_classifier`).
            inputs["token_type_ids"] = _window_values(pieces["casing_ids"], windows, casing_lib.NONE, casing_lib.NONE)
        else:
            inputs["token_type_ids"] = ids.with_flat_values(tf.zeros_like(ids.flat_values))
        return inputs

    def _pad(self, inputs):
        # At least [CLS] [SEP] wide, so that an empty batch still has consistent shapes ([0, 2]).
        width = tf.maximum(inputs["input_ids"].bounding_shape(axis=1), 2)
        shape = tf.stack([inputs["input_ids"].nrows(), width])
        return {key: value.to_tensor(self.pad_id if key == "input_ids" else 0, shape=shape)
                for key, value in inputs.items()}

    def predict_logits(self, model, pieces):
        """Runs ``model`` over the windows of each sequence and merges them: logits for every piece.

        Args:
            model: callable. Model inputs (dict, see the class) to float logits ``[windows, length, labels]``.
            pieces: dict of RaggedTensors ``[sequences, (pieces)]`` (`words_to_pieces`, `texts_to_pieces`).

        Returns:
            float32 RaggedTensor ``[sequences, (pieces), labels]``.
        """
        windows, inputs = self.windows(pieces)
        logits = tf.cast(model(inputs), tf.float32)
        # Drop [CLS], keep each window's pieces (its [SEP] and padding fall outside its length).
        window_logits = tf.RaggedTensor.from_tensor(logits[:, 1:], lengths=windows.length)
        return token_windows.merge_windows(window_logits, windows)

    # Datasets.

    def training_batches(self, sequences, *, batch_size, shuffle=True, seed=None, stride=None, pad_to_boundary=False,
                         drop_remainder=False, progress=None):
        """Batches of ``(model inputs, labels)`` windows for ``fit``, bucketed by length.

        Sequences are tokenized, aligned and windowed once (cached); each batch
        holds windows of similar length, padded to its longest (or to its
        bucket's bound with ``pad_to_boundary``, for XLA and TPUs).

        Args:
            sequences: NerSequences.
            batch_size: int. Windows per batch.
            shuffle: bool. Shuffle windows, again every epoch (training).
            seed: int or None. Shuffle seed.
            stride: int or None. Pieces shared by consecutive windows; None: the preprocessor's.
            pad_to_boundary: bool. Pad to the bucket's bound instead of the batch's longest.
            drop_remainder: bool. Drop incomplete batches (static batch sizes for TPUs).
            progress: str or None. Names the counting pass in progress lines (see
                `tfnlp.data.batching.with_known_cardinality`).

        Returns:
            tf.data.Dataset with a known cardinality.
        """
        words, tags = sequences.ragged()

        def encode(index):
            batch_words, batch_tags = tf.gather(words, index), tf.gather(tags, index)
            pieces = self.words_to_pieces(batch_words)
            labels = self.align_labels(pieces["word_ids"], batch_tags)
            windows = token_windows.split_windows(pieces["input_ids"].row_lengths(), self.window_length,
                                                  self.stride if stride is None else stride)
            return (self._window_inputs(pieces, windows),
                    _window_values(labels, windows, IGNORE_INDEX, IGNORE_INDEX))

        windows = (tf.data.Dataset.range(len(sequences)).batch(64)
                   .map(encode, num_parallel_calls=tf.data.AUTOTUNE)
                   .unbatch()
                   .map(lambda inputs, labels: (inputs, labels))  # Ragged rows back to plain Tensors.
                   .cache())
        if shuffle:
            windows = windows.shuffle(4096, seed=seed, reshuffle_each_iteration=True)
        boundaries = length_boundaries(self.max_length)
        padding = ({key: tf.constant(self.pad_id if key == "input_ids" else 0, tf.int32)
                    for key in windows.element_spec[0]}, tf.constant(IGNORE_INDEX, tf.int32))
        batches = windows.bucket_by_sequence_length(
            element_length_func=lambda inputs, labels: tf.shape(labels)[0],
            bucket_boundaries=boundaries, bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
            padding_values=padding, pad_to_bucket_boundary=pad_to_boundary, drop_remainder=drop_remainder)
        return with_known_cardinality(disable_autotuning(batches.prefetch(tf.data.AUTOTUNE)), progress=progress)

    def predict_word_logits(self, model, sequences, *, words_per_call=2048):
        """Logits of every word, from its first piece, with windows merged (evaluation).

        Args:
            model: callable. As in `predict_logits` (a Keras model, called with ``training=False``).
            sequences: NerSequences or list of list of str (words).
            words_per_call: int. Consecutive sequences go through the model together (all their windows
                in one batch) up to this many words (a longer sequence goes alone).

        Returns:
            list of float32 NumPy arrays ``[words, labels]``, one per sequence. A word without pieces
            (only characters the tokenizer drops, such as a lone control character) gets logits
            that select ``O`` (label 0).
        """
        word_lists = sequences.words if isinstance(sequences, NerSequences) else sequences

        @tf.function(input_signature=[tf.RaggedTensorSpec([None, None], tf.string, ragged_rank=1)])
        def predict(batch_words):
            pieces = self.words_to_pieces(batch_words)
            logits = self.predict_logits(lambda inputs: model(inputs, training=False), pieces)
            return logits.flat_values, pieces["word_ids"].flat_values, logits.row_splits

        outputs = []
        for batch in _batches_of_words(word_lists, words_per_call):
            logits, word_ids, splits = (x.numpy() for x in predict(_ragged_words(batch)))
            for row, row_words in enumerate(batch):
                row_logits, row_ids = logits[splits[row]:splits[row + 1]], word_ids[splits[row]:splits[row + 1]]
                word_logits = np.full((len(row_words), len(self.labels)), -1e4, np.float32)
                word_logits[:, 0] = 0.0
                # The first piece of each word (pieces come in word order).
                unique, first = np.unique(row_ids, return_index=True)
                word_logits[unique] = row_logits[first]
                outputs.append(word_logits)
        return outputs


def _batches_of_words(word_lists, words_per_call):
    """Consecutive runs of ``word_lists`` holding at most ``words_per_call`` words (or one longer list)."""
    batch, count = [], 0
    for words in word_lists:
        if batch and count + len(words) > words_per_call:
            yield batch
            batch, count = [], 0
        batch.append(words)
        count += len(words)
    if batch:
        yield batch


def _window_values(values, windows, first, last):
    """``first`` + the values of each window + ``last``, as a RaggedTensor ``[windows, (length + 2)]``."""
    values = token_windows.gather_windows(values, windows)
    column = tf.fill(tf.stack([values.nrows(), 1]), tf.cast(first, values.dtype))
    end = tf.fill(tf.stack([values.nrows(), 1]), tf.cast(last, values.dtype))
    return tf.concat([column, values, end], axis=1)


def _unpack(features):
    """The tokenizer's packed ``[batch, [CLS] pieces [SEP] padding]`` outputs as ragged ``[batch, (pieces)]``."""
    lengths = tf.reduce_sum(features["attention_mask"], axis=1) - 2
    unpacked = {key: tf.RaggedTensor.from_tensor(value[:, 1:], lengths=lengths)
                for key, value in features.items() if key in ("input_ids", "word_ids")}
    if "offset_mapping" in features:
        for index, key in enumerate(("start", "end")):
            unpacked[key] = tf.RaggedTensor.from_tensor(features["offset_mapping"][:, 1:, index], lengths=lengths)
    return unpacked


def _ragged_words(words):
    lengths = [len(sequence) for sequence in words]
    flat = [word for sequence in words for word in sequence]
    return tf.RaggedTensor.from_row_lengths(tf.constant(flat, tf.string, shape=[len(flat)]),
                                            tf.constant(lengths, tf.int64))


@dataclasses.dataclass
class NerSequences:
    """Sequences of words that a model reads as one text, and where each sentence lies in them.

    Attributes:
        words: list of list of str. The words of each sequence.
        tags: list of list of int. Their tag ids.
        sentences: list of (sequence, first word, number of words). Where each original sentence is.
    """

    words: list
    tags: list
    sentences: list

    def __len__(self):
        return len(self.words)

    def ragged(self):
        """(words, tags) as RaggedTensors ``[sequences, (words)]`` of tf.string and int32."""
        lengths = tf.constant([len(sequence) for sequence in self.words], tf.int64)
        tags = tf.constant([tag for sequence in self.tags for tag in sequence], tf.int32)
        return _ragged_words(self.words), tf.RaggedTensor.from_row_lengths(tags, lengths)

    def sentence_values(self, per_sequence):
        """Splits per-sequence word values (``per_sequence[s][w]``) into per-sentence lists."""
        return [per_sequence[sequence][first:first + count] for sequence, first, count in self.sentences]


def conll_sequences(examples, context="document"):
    """The sequences a model reads: each sentence alone, or each document's sentences joined.

    Args:
        examples: tfnlp.data.ConllExamples.
        context: str. ``"sentence"`` (one sequence per sentence) or ``"document"`` (one per document, so
            that windows give sentences their neighbours as context). Without document boundaries
            (``examples.document_ids`` is None: HF datasets), ``"document"`` falls back to sentences,
            with a warning.

    Returns:
        NerSequences.

    Example:
    >>> from tfnlp.data import ConllExamples
    >>> examples = ConllExamples("x", [["A", "b"], ["C"], ["D"]], [[1, 0], [0], [3]], document_ids=[1, 1, 2])
    >>> conll_sequences(examples).words, conll_sequences(examples).sentences
    ([['A', 'b', 'C'], ['D']], [(0, 0, 2), (0, 2, 1), (1, 0, 1)])
    """
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {CONTEXTS}, got {context!r}")
    document_ids = examples.document_ids
    if context == "document" and document_ids is None:
        logger.warning("%s has no document boundaries: each sentence is read alone (context='sentence')",
                       examples.path)
    if context == "sentence" or document_ids is None:
        document_ids = range(len(examples.tokens))
    sequences = NerSequences(words=[], tags=[], sentences=[])
    previous = object()
    for words, tags, document in zip(examples.tokens, examples.tag_ids, document_ids):
        if document != previous:
            sequences.words.append([])
            sequences.tags.append([])
            previous = document
        sequences.sentences.append((len(sequences.words) - 1, len(sequences.words[-1]), len(words)))
        sequences.words[-1].extend(words)
        sequences.tags[-1].extend(tags)
    return sequences
