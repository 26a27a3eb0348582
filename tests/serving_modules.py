"""Tiny serving modules for the serving tests: the signatures of the real exports on toy models.

- `TwoSignatureClassifier`: a classifier with ``serving_default`` (text, tokenized in
  the graph by `tfnlp.text.BertTokenizer`) and ``serving_ids`` (token ids), as the
  HF BERT classifier export has them.
- `TinyNerModule`: the NER export's ``serving_default`` outputs (grouped entities
  and per-token labels) from a rule: a whitespace-separated word that starts
  with a capital letter is a person.
- `PyFunctionModule`: a classifier that calls Python (``tf.py_function``), which no
  model server can run.
"""

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text
import tf_keras

from tfnlp.text import BertTokenizer

CLASS_NAMES = ["World", "Sports", "Business", "Sci/Tech"]
IDS_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class TwoSignatureClassifier(tf.Module):
    """Mean of token embeddings -> dense, on text (``serving_default``) or on ids (``serving_ids``)."""

    def __init__(self, vocabulary, max_length=16):
        super().__init__()
        tf_keras.utils.set_random_seed(3)
        self.tokenizer = BertTokenizer(list(vocabulary), sequence_length=max_length)
        self.embedding = tf_keras.layers.Embedding(len(vocabulary), 8)
        self.dense = tf_keras.layers.Dense(len(CLASS_NAMES))
        self.class_names = tf.constant(CLASS_NAMES)
        self.vocab_size = len(vocabulary)
        self.max_length = max_length

    def _classify(self, input_ids, attention_mask):
        mask = tf.cast(attention_mask, tf.float32)[..., None]
        pooled = tf.reduce_sum(self.embedding(input_ids) * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1)
        probabilities = tf.nn.softmax(self.dense(pooled))
        label_id = tf.argmax(probabilities, axis=-1)
        return {"probabilities": probabilities, "label_id": label_id, "label": tf.gather(self.class_names, label_id)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serving_default(self, text):
        features = self.tokenizer(text)
        return self._classify(features["input_ids"], features["attention_mask"])

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name=name) for name in IDS_INPUTS])
    def serving_ids(self, input_ids, attention_mask, token_type_ids):
        return self._classify(input_ids, attention_mask)

    def signatures(self):
        return {"serving_default": self.serving_default.get_concrete_function(),
                "serving_ids": self.serving_ids.get_concrete_function()}


class TinyNerModule(tf.Module):
    """The NER signature: words starting with a capital letter are ``PER`` entities (offsets in characters)."""

    def __init__(self):
        super().__init__()
        self.tokenizer = tf_text.WhitespaceTokenizer()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serving_default(self, text):
        words, starts, ends = self.tokenizer.tokenize_with_offsets(text)
        starts, ends = self._characters(text, starts), self._characters(text, ends)
        is_entity = tf.ragged.map_flat_values(tf.strings.regex_full_match, words, r"\p{Lu}.*")
        labels = tf.ragged.map_flat_values(lambda flags: tf.where(flags, "B-PER", "O"), is_entity)
        scores = tf.ragged.map_flat_values(lambda flags: tf.where(flags, 0.875, 0.5), is_entity)
        entity_words = tf.ragged.boolean_mask(words, is_entity)

        def dense(ragged, default):
            return ragged.to_tensor(default)

        return {
            "entity_group": dense(tf.ragged.map_flat_values(lambda w: tf.fill(tf.shape(w), "PER"), entity_words), ""),
            "score": dense(tf.ragged.boolean_mask(scores, is_entity), 0.0),
            "word": dense(entity_words, ""),
            "start": dense(tf.ragged.boolean_mask(starts, is_entity), tf.constant(0, tf.int64)),
            "end": dense(tf.ragged.boolean_mask(ends, is_entity), tf.constant(0, tf.int64)),
            "num_entities": entity_words.row_lengths(),
            "token_label": dense(labels, ""),
            "token_score": dense(scores, 0.0),
            "token_start": dense(starts, tf.constant(0, tf.int64)),
            "token_end": dense(ends, tf.constant(0, tf.int64)),
            "num_tokens": words.row_lengths(),
        }

    @staticmethod
    def _characters(text, byte_offsets):
        """Byte offsets into each text -> character (code point) offsets."""
        _, char_starts = tf.strings.unicode_decode_with_offsets(text, "UTF-8", errors="replace")
        bound = tf.cast(tf.reduce_max(tf.strings.length(text)) + 1, tf.int64)
        positions = tf.searchsorted(char_starts.to_tensor(bound), tf.cast(byte_offsets.to_tensor(), tf.int64))
        return tf.RaggedTensor.from_tensor(tf.cast(positions, tf.int64), lengths=byte_offsets.row_lengths())

    def signatures(self):
        return {"serving_default": self.serving_default.get_concrete_function()}


class PyFunctionModule(tf.Module):
    """A classifier whose features come from Python (``tf.py_function``: the ``EagerPyFunc`` op)."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serving_default(self, text):
        lengths = tf.py_function(lambda t: np.array([len(x) for x in t.numpy()], np.float32), [text], tf.float32)
        probabilities = tf.nn.softmax(tf.stack([lengths, -lengths], axis=-1))
        return {"probabilities": probabilities, "label_id": tf.argmax(probabilities, axis=-1),
                "label": tf.gather(tf.constant(["long", "short"]), tf.argmax(probabilities, axis=-1))}

    def signatures(self):
        return {"serving_default": self.serving_default.get_concrete_function()}
