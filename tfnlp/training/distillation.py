"""Teacher sentence embeddings for distillation: a frozen pretrained BERT's mean-pooled text vectors, computed once."""

import hashlib
import os

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import tensorflow as tf

from tfnlp import pretrained
from tfnlp.text import BertTokenizer
from tfnlp.training.feature_cache import cached_features, compute_features


def sentence_embeddings(texts, pretrained_name=None, *, cache_path=None, sequence_length=128, batch_size=64):
    """Unit-length sentence embeddings of ``texts`` by a frozen pretrained BERT, in the order of ``texts``.

    Each text is tokenized with the BERT's own WordPiece vocabulary (cut to
    ``sequence_length``), encoded, and its last hidden states are averaged over
    the real tokens and scaled to unit length: the pooling that
    sentence-transformers models such as the packaged all-MiniLM-L6-v2 were
    trained with. Texts are encoded in batches of similar length (each padded
    to its longest), so short texts cost little. With ``cache_path`` the vectors
    are cached (`tfnlp.training.feature_cache.cached_features`, written
    atomically) and reused when the texts, the BERT and ``sequence_length`` are
    the same; the BERT is then not even loaded.

    Args:
        texts: sequence of str or bytes.
        pretrained_name: str or None. None for the packaged all-MiniLM-L6-v2, a
            local HF BERT folder, or a Hugging Face Hub name (as in
            `tfnlp.pretrained.load_bert_model`).
        cache_path: str or None. A ``.npz`` file to cache the vectors in.
        sequence_length: int. WordPiece ids kept per text, with [CLS] and [SEP].
        batch_size: int. Texts encoded per call.

    Returns:
        (embeddings, seconds): float32 ``[len(texts), hidden size]`` with rows of
        norm 1, and the seconds spent encoding (0.0 when read from the cache).

    Example:
    >>> vectors, _ = sentence_embeddings(["Stocks fell.", "The team won the cup."])  # doctest: +SKIP
    >>> vectors.shape, np.linalg.norm(vectors, axis=-1).round(3).tolist()  # doctest: +SKIP
    ((2, 384), [1.0, 1.0])
    """
    texts = [text.encode("utf-8") if isinstance(text, str) else bytes(text) for text in texts]
    if not texts:
        raise ValueError("sentence_embeddings needs at least one text")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, received {batch_size}")
    # Padded to `sequence_length`: rows tokenized in different chunks share one width until batched by length.
    tokenizer = BertTokenizer.from_pretrained(pretrained_name, sequence_length=sequence_length, padding="max_length")
    encoder = _MeanPooledBert(pretrained_name)
    batches = _batches_by_length(tokenizer, texts, batch_size, on_start=encoder.load)
    key = _cache_key(texts, pretrained_name, sequence_length)
    if cache_path is None:
        features, order, seconds = compute_features(encoder, batches, name="sentence embeddings", total=len(texts))
    else:
        os.makedirs(os.path.dirname(os.path.abspath(cache_path)), exist_ok=True)
        features, order, seconds = cached_features(encoder, batches, cache_path, key, total=len(texts),
                                                   name=f"teacher sentence embeddings into {cache_path}")
    embeddings = np.empty_like(features)
    embeddings[order] = features  # Back from length order to the order of `texts`.
    return embeddings, seconds


class _MeanPooledBert:
    """``(input_ids, attention_mask) -> unit-length mean of last_hidden_state``, once `load` has built the BERT."""

    def __init__(self, pretrained_name):
        self.pretrained_name = pretrained_name
        self.bert = None

    def load(self):
        """Builds the BERT (eagerly: never inside the `tf.function` that runs it)."""
        if self.bert is None:
            self.bert = pretrained.load_bert_model(self.pretrained_name, add_pooling_layer=False)

    def __call__(self, inputs, training=False):
        input_ids, attention_mask = inputs
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, training=training).last_hidden_state
        weights = tf.cast(attention_mask, hidden.dtype)[:, :, tf.newaxis]
        mean = tf.reduce_sum(hidden * weights, axis=1) / tf.maximum(tf.reduce_sum(weights, axis=1), 1.0)
        return tf.math.l2_normalize(mean, axis=-1)


def _batches_by_length(tokenizer, texts, batch_size, on_start):
    """``((input_ids, attention_mask), positions)`` batches of texts sorted by length, each cut to its longest.

    A generator: nothing is tokenized, and ``on_start`` (loading the encoder) is not called, unless the
    batches are drawn, which a cache hit never does.
    """
    on_start()
    input_ids, attention_mask = [], []
    for start in range(0, len(texts), 1024):
        features = tokenizer(tf.constant(texts[start:start + 1024]))
        ids, mask = features["input_ids"].numpy(), features["attention_mask"].numpy()
        input_ids.extend(ids)
        attention_mask.extend(mask)
    lengths = np.array([int(mask.sum()) for mask in attention_mask])
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(texts), batch_size):
        positions = order[start:start + batch_size]
        length = int(lengths[positions].max())
        yield ((tf.constant(np.stack([input_ids[i][:length] for i in positions])),
                tf.constant(np.stack([attention_mask[i][:length] for i in positions]))),
               tf.constant(positions))


def _cache_key(texts, pretrained_name, sequence_length):
    """What the vectors depend on: the BERT (its local path made absolute), the length, and every text."""
    source = pretrained_name
    if source is None:
        source = "packaged:" + pretrained.model_slug()
    elif os.path.isdir(source):
        source = os.path.abspath(source)
    digest = hashlib.sha256()
    for text in texts:
        digest.update(len(text).to_bytes(8, "little"))
        digest.update(text)
    return f"mean-pooled sentence embeddings|{source}|sequence_length={sequence_length}|{len(texts)} texts|" \
           f"sha256={digest.hexdigest()}"
