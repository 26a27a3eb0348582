"""Tiny exports for the serving tests: the real serving modules and export functions, around toy models.

The serving code (REST and gRPC conversion, ``pipelines.serving.predict``, warm-up
replay, the op audit, the serving benchmarks) is tested on what the fit
scripts export, so every export here is made by the library's own serving
module and export function; only the model inside is a toy:

- `tiny_classifier`: the HF BERT classifier export's shape. A
  `tfnlp.serving.TextClassifierModule` with ``serving_default`` (text, tokenized
  in the graph by `tfnlp.text.BertTokenizer`) and ``serving_ids`` (token ids,
  checked by the module: vocabulary, mask, segments, length) around a mean of
  token embeddings and a dense layer; `export_tiny_classifier` exports it with
  `tfnlp.serving.export_text_classifier`, as the fit scripts do.
- `tiny_ner_module`: the NER export. A `tfnlp.serving.TokenClassifierModule`
  (in-graph tokenizer, windows, entity grouping, character offsets) around a
  rule instead of a BERT: a piece written in Title case is ``B-PER``, any other
  ``O`` (the preprocessor's casing ids tell the case); `export_tiny_ner`
  exports it with `tfnlp.serving.export.export_token_classifier`.
- `copy_export`: a copy of an export as the next version of a model folder (the
  session's exports, `conftest.tiny_exports`, are made once and copied, never changed).
- `PyFunctionModule`: a classifier that calls Python (``tf.py_function``), which no
  model server can run (no fit script exports one: it is the op audit's bad case).
"""

import os
import shutil

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import tensorflow as tf
import tf_keras

from tfnlp.data.conll2003 import CONLL2003_LABELS
from tfnlp.data.ner_features import NerPreprocessor
from tfnlp.layers import MaskedMeanPooling
from tfnlp.serving import (TextClassifierModule, TokenClassifierModule, export_text_classifier, export_token_classifier,
                           next_version)
from tfnlp.text import BertTokenizer
from tfnlp.text.casing import TITLE

CLASS_NAMES = ["World", "Sports", "Business", "Sci/Tech"]
IDS_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
MAX_LENGTH = 16  # The toy classifier's longest sequence (serving_ids rejects longer ones), the NER window.
NER_SMOKE_TEXTS = ("John lives in New York .", "", "no names here")


def tiny_classifier(vocabulary, max_length=MAX_LENGTH):
    """A toy classifier in the real export's shape: ``(text_model, ids_model, tokenizer, module)``.

    ``ids_model`` maps the ids inputs to logits (embedding mean over the mask, dense); ``text_model`` is
    ``tokenizer`` then ``ids_model`` (their weights shared), as `tfnlp.models.hf_bert_classifier`'s
    ``text_classifier`` and ``ids_classifier``; ``module`` is the `TextClassifierModule` the export holds.
    Like every real export's, ``text_model`` outputs ``{"logits", "truncated"}`` (texts longer than
    ``max_length`` pieces are cut and reported).
    """
    tf_keras.utils.set_random_seed(3)
    tokenizer = BertTokenizer(list(vocabulary), sequence_length=max_length, return_num_truncated_tokens=True,
                              name="tokenizer")
    ids = {key: tf_keras.Input(shape=(None,), dtype=tf.int32, name=key) for key in IDS_INPUTS}
    embedded = tf_keras.layers.Embedding(len(vocabulary), 8, name="embedding")(ids["input_ids"])
    pooled = MaskedMeanPooling(name="pooling")(embedded, padding_mask=ids["attention_mask"])
    ids_model = tf_keras.Model(ids, tf_keras.layers.Dense(len(CLASS_NAMES), name="logits")(pooled), name="ids_model")
    text = tf_keras.Input(shape=(), dtype=tf.string, name="text")
    features = tokenizer(text)
    logits = ids_model({key: features[key] for key in IDS_INPUTS})
    text_model = tf_keras.Model(text, {"logits": logits, "truncated": features["num_truncated_tokens"] > 0},
                                name="text_model")
    module = TextClassifierModule(text_model, CLASS_NAMES, ids_model=ids_model, vocab_size=tokenizer.vocabulary_size,
                                  max_length=max_length)
    return text_model, ids_model, tokenizer, module


def export_tiny_classifier(base_dir, vocabulary):
    """Exports `tiny_classifier` to ``<base_dir>/<next version>/`` as the fit scripts export; returns the path."""
    text_model, ids_model, tokenizer, _ = tiny_classifier(vocabulary)
    return export_text_classifier(text_model, CLASS_NAMES, base_dir, ids_model=ids_model, tokenizer=tokenizer,
                                  max_length=MAX_LENGTH)["path"]


def title_case_person_model(num_labels=len(CONLL2003_LABELS)):
    """Model inputs (casing ids as ``token_type_ids``) -> logits: ``B-PER`` (id 1) on Title-case pieces, else ``O``."""
    inputs = {key: tf_keras.Input(shape=(None,), dtype=tf.int32, name=key) for key in IDS_INPUTS}

    def logits(casing_ids):
        person = tf.cast(tf.equal(casing_ids, TITLE), tf.int32)  # Label id 1 (B-PER) or 0 (O).
        return 8.0 * tf.one_hot(person, num_labels) - 4.0

    return tf_keras.Model(inputs, tf_keras.layers.Lambda(logits, name="rule")(inputs["token_type_ids"]),
                          name="title_case_person")


def tiny_ner_module(vocabulary, max_length=MAX_LENGTH):
    """The NER export's `TokenClassifierModule` around `title_case_person_model` (argmax decoding, as HF's)."""
    preprocessor = NerPreprocessor(list(vocabulary), labels=CONLL2003_LABELS, max_length=max_length, casing=True)
    return TokenClassifierModule(title_case_person_model(), preprocessor)


def export_tiny_ner(base_dir, vocabulary):
    """Exports `tiny_ner_module` to ``<base_dir>/<next version>/`` as pipelines.conll_ner does; returns the path."""
    return export_token_classifier(tiny_ner_module(vocabulary), base_dir, smoke_texts=NER_SMOKE_TEXTS)["path"]


def copy_export(version_dir, base_dir):
    """Copies an exported version folder to ``<base_dir>/<next version>/``; returns the new version folder."""
    target = os.path.join(base_dir, str(next_version(base_dir)))
    shutil.copytree(version_dir, target)
    return target


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
