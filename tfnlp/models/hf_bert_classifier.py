"""HuggingFace ``TFBertForSequenceClassification`` as a Keras classifier fed by the in-graph tokenizer.

The lesson feeds the HF model with ``tf.py_function(tokenizer.encode)``, every
text padded to 128. Here the model is the same HF class, but its inputs come
from `tfnlp.text.BertTokenizer` inside ``tf.data`` (cached, batched by length,
each batch padded to its own longest text), and for training and serving it is
wrapped in plain functional Keras models:

- `ids_classifier`: ``input_ids``/``attention_mask``/``token_type_ids`` -> logits
  (standard Keras ``compile``/``fit``, checkpoints and distribution);
- `text_classifier`: raw strings -> logits (and which texts were cut), the tokenizer in front (serving);
- `frozen_feature_extractor` / `frozen_head`: the lesson's frozen stage split in
  two, so the frozen encoder's vectors can be computed once and cached.

All of them share the weights of the one HF model, so `save_pretrained` on it
gives a folder that HF's ``from_pretrained`` reloads.
"""

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf
import tf_keras

from tfnlp import pretrained

HF_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def build_hf_bert_classifier(name_or_path=None, *, class_names, **kwargs):
    """``TFBertForSequenceClassification`` with pretrained weights and the classes' ``id2label``/``label2id``.

    Args:
        name_or_path: str or None. None for the packaged all-MiniLM-L6-v2, a local HF
            BERT folder (resolved by `tfnlp.pretrained.resolve_pretrained`), or a hub name online.
        class_names: list of str. Class ``i`` is ``class_names[i]``.
        **kwargs: config overrides for ``from_pretrained`` (``classifier_dropout``, ...).

    Returns:
        transformers.TFBertForSequenceClassification, built (its weights exist).

    Example:
    >>> model = build_hf_bert_classifier(class_names=["World", "Sports", "Business", "Sci/Tech"])  # doctest: +SKIP
    >>> model.config.id2label[1]  # doctest: +SKIP
    'Sports'
    """
    model = pretrained.load_bert_for_sequence_classification(name_or_path, labels=class_names, **kwargs)
    model(model.dummy_inputs, training=False)  # Builds the new classifier head eagerly.
    return model


def hf_inputs(input_ids):
    """Token ids padded with 0 -> the HF input dict (mask 1 on real tokens; one segment).

    Example:
    >>> hf_inputs(tf.constant([[101, 7, 102, 0]]))["attention_mask"].numpy().tolist()
    [[1, 1, 1, 0]]
    """
    input_ids = tf.cast(input_ids, tf.int32)
    return {"input_ids": input_ids, "attention_mask": tf.cast(input_ids != 0, tf.int32),
            "token_type_ids": tf.zeros_like(input_ids)}


def ids_inputs():
    """Keras inputs named as HF's: int32 ``[batch, length]`` ``input_ids``, ``attention_mask``, ``token_type_ids``."""
    return {key: tf_keras.Input(shape=(None,), dtype=tf.int32, name=key) for key in HF_INPUTS}


def ids_classifier(bert_classifier, name="hf_bert_classifier"):
    """A functional model from HF inputs to the logits of ``bert_classifier`` (shares its weights).

    Args:
        bert_classifier: transformers.TFBertForSequenceClassification.
        name: str. Model name.

    Returns:
        tf_keras.Model. Inputs: dict of int32 ``[batch, length]`` ``input_ids``,
        ``attention_mask``, ``token_type_ids``; output: float32 logits ``[batch, classes]``.
    """
    inputs = ids_inputs()
    logits = bert_classifier(inputs).logits
    return tf_keras.Model(inputs, tf_keras.layers.Activation("linear", dtype="float32", name="logits")(logits),
                          name=name)


def text_classifier(bert_classifier, tokenizer, name="hf_bert_text_classifier"):
    """A functional model from raw strings ``[batch]`` to logits: ``tokenizer`` then ``bert_classifier``.

    Args:
        bert_classifier: transformers.TFBertForSequenceClassification.
        tokenizer: tfnlp.text.BertTokenizer with ``padding="longest"`` (each batch padded to its longest text).
            With ``return_num_truncated_tokens=True`` the model outputs ``{"logits": ..., "truncated": ...}``,
            ``truncated`` (bool ``[batch]``) being True for a text cut to the tokenizer's ``sequence_length``
            (what `tfnlp.serving.TextClassifierModule` serves as its ``truncated`` output).
        name: str. Model name.
    """
    text = tf_keras.Input(shape=(), dtype=tf.string, name="text")
    features = tokenizer(text)
    logits = bert_classifier({key: features[key] for key in HF_INPUTS}).logits
    logits = tf_keras.layers.Activation("linear", dtype="float32", name="logits")(logits)
    if not tokenizer.return_num_truncated_tokens:
        return tf_keras.Model(text, logits, name=name)
    return tf_keras.Model(text, {"logits": logits, "truncated": features["num_truncated_tokens"] > 0}, name=name)


def frozen_feature_extractor(bert_classifier, train_pooler=False):
    """The frozen part of the lesson's stage 1: HF inputs -> the vectors the trainable head reads.

    Args:
        bert_classifier: transformers.TFBertForSequenceClassification.
        train_pooler: bool. False: the encoder's ``pooler_output`` (the lesson freezes all of
            ``bert``, pooler included). True: the last hidden state of ``[CLS]``, so that the
            pooler (dense + tanh) trains with the classifier.

    Returns:
        tf_keras.Model from HF inputs to float32 ``[batch, hidden]``.
    """
    inputs = ids_inputs()
    outputs = bert_classifier.bert(inputs, training=False)
    vectors = outputs.last_hidden_state[:, 0] if train_pooler else outputs.pooler_output
    return tf_keras.Model(inputs, vectors, name="frozen_features")


def frozen_head(bert_classifier, train_pooler=False):
    """The trainable part of stage 1, on `frozen_feature_extractor`'s vectors; shares the classifier's layers.

    Args:
        bert_classifier: transformers.TFBertForSequenceClassification.
        train_pooler: bool. As in `frozen_feature_extractor`: with True the head is the pooler's
            dense + tanh, dropout and the classifier; with False, dropout and the classifier.

    Returns:
        tf_keras.Model from float32 ``[batch, hidden]`` to logits.
    """
    vectors = tf_keras.Input(shape=(bert_classifier.config.hidden_size,), name="frozen_features")
    hidden = bert_classifier.bert.pooler.dense(vectors) if train_pooler else vectors
    logits = bert_classifier.classifier(bert_classifier.dropout(hidden))
    return tf_keras.Model(vectors, logits, name="frozen_head")
