"""The lesson's TF-Hub BERT classifier: preprocess layer + encoder layer + dropout + dense.

`build_hub_bert_classifier` is the lesson's model, on raw strings. Training
goes faster on token ids batched by length (texts padded to their batch's
longest, not to the preprocessor's fixed 128), so the model is two parts: the
preprocessor, and `build_encoder_classifier` on encoder inputs. For the frozen
stage, `pooled_output_model` and `classifier_head` split the latter once more:
the encoder's pooled outputs can then be computed once and cached.
"""

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf
import tensorflow_hub as hub
import tensorflow_text  # noqa: F401  (registers the ops TF Hub BERT preprocessors use)
import tf_keras

from tfnlp.hub.bert_encoder import ENCODER_INPUTS
from tfnlp.layers import MaskedMeanPooling

# The lesson's handles (tfhub.dev redirects to Kaggle Models; both need the network).
LESSON_PREPROCESS_HANDLE = "https://tfhub.dev/tensorflow/bert_en_uncased_preprocess/3"
LESSON_ENCODER_HANDLE = "https://tfhub.dev/tensorflow/small_bert/bert_en_uncased_L-4_H-128_A-2/1"


POOLINGS = ("pooled_output", "mean")


def build_encoder_classifier(encoder, num_classes, *, trainable=False, dropout=0.1, pooling="pooled_output",
                             name="bert_classifier"):
    """Encoder inputs to class logits: TF-Hub BERT encoder, pooling, dropout, dense.

    Args:
        encoder: str or hub.KerasLayer. A TF-Hub BERT encoder: a tfhub.dev or Kaggle
            URL, a local SavedModel folder (`tfnlp.hub.export_hub_bert`), or a layer.
        num_classes: int. Output classes.
        trainable: bool. Fine-tune the encoder (False: a frozen feature extractor).
            Can be changed later with ``model.get_layer("encoder").trainable``.
        dropout: float. Dropout rate on the pooled output, in [0, 1).
        pooling: str. ``"pooled_output"``: the encoder's ``pooled_output`` (the ``[CLS]``
            vector through BERT's pooler, as in the lesson); ``"mean"``: the mean of
            ``sequence_output`` over the real tokens (`tfnlp.layers.MaskedMeanPooling`),
            the sentence embedding of sentence-transformers models such as all-MiniLM-L6-v2.
        name: str. Model name.

    Returns:
        tf_keras.Model. Inputs: dict of int32 ``[batch, seq]`` ``input_word_ids``,
        ``input_mask`` and ``input_type_ids`` (any ``seq`` up to the encoder's
        maximum); output: float32 logits ``[batch, num_classes]``. Layers
        ``encoder``, ``dropout`` and ``classifier``.

    Example:
    >>> model = build_encoder_classifier("saved_models/hub/all-MiniLM-L6-v2_encoder", 4)  # doctest: +SKIP
    >>> ids = tf.constant([[101, 7592, 102]])  # doctest: +SKIP
    >>> model({"input_word_ids": ids, "input_mask": tf.ones_like(ids),
    ...        "input_type_ids": tf.zeros_like(ids)}).shape  # doctest: +SKIP
    TensorShape([1, 4])
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if not isinstance(encoder, hub.KerasLayer):
        encoder = hub.KerasLayer(encoder, trainable=trainable, name="encoder")
    inputs = {key: tf_keras.Input(shape=(None,), dtype=tf.int32, name=key) for key in ENCODER_INPUTS}
    outputs = encoder(inputs)
    if pooling == "mean":
        pooled = MaskedMeanPooling(name="mean_pooling")(outputs["sequence_output"],
                                                        padding_mask=inputs["input_mask"])
    else:
        pooled = outputs["pooled_output"]
    features = tf_keras.layers.Dropout(dropout, name="dropout")(pooled)
    # float32 logits even under a mixed-precision policy (a stable softmax and loss).
    logits = tf_keras.layers.Dense(num_classes, name="classifier", dtype="float32")(features)
    return tf_keras.Model(inputs, logits, name=name)


def build_hub_bert_classifier(preprocess=LESSON_PREPROCESS_HANDLE, encoder=LESSON_ENCODER_HANDLE, num_classes=None, *,
                              seq_length=None, trainable=False, dropout=0.1, pooling="pooled_output",
                              return_truncated=False, name="hub_bert_classifier"):
    """The lesson's model: raw strings to logits through a TF-Hub preprocessor and encoder.

    Args:
        preprocess: str. A TF-Hub BERT preprocessor (URL or local folder) matching the encoder's
            vocabulary. Default: the lesson's ``bert_en_uncased_preprocess/3`` (online).
        encoder: str, hub.KerasLayer or tf_keras.Model. An encoder handle or layer (see
            `build_encoder_classifier`), or a model built by `build_encoder_classifier`.
            Default: the lesson's ``small_bert/bert_en_uncased_L-4_H-128_A-2`` (online).
        num_classes: int. Output classes (required unless ``encoder`` is such a model).
        seq_length: int or None. Tokens per text. None: the preprocessor's default (the lesson's
            ``hub.KerasLayer(preprocess)``, 128 for TF Hub's); an int packs with
            ``bert_pack_inputs(..., seq_length=seq_length)``. Either way the packed
            inputs are then cut to the batch's longest text, so short texts cost less.
        trainable: bool. Fine-tune the encoder.
        dropout: float. Dropout rate on the pooled output.
        pooling: str. As in `build_encoder_classifier`.
        return_truncated: bool. Output ``{"logits": ..., "truncated": ...}``, ``truncated`` (bool ``[batch]``)
            being True for a text with more word pieces than fit in ``seq_length`` (with ``[CLS]`` and
            ``[SEP]``), counted from the same ``tokenize`` output (what `tfnlp.serving.TextClassifierModule`
            serves as its ``truncated`` output). Needs ``seq_length``.
        name: str. Model name.

    Returns:
        tf_keras.Model from a `tf.string` ``[batch]`` input ``text`` to logits (or the dict above).

    Examples:
    >>> model = build_hub_bert_classifier(num_classes=4)  # The lesson's small BERT (online).  # doctest: +SKIP
    >>> model(tf.constant(["I love transformers"])).shape  # doctest: +SKIP
    TensorShape([1, 4])
    >>> model = build_hub_bert_classifier("saved_models/hub/all-MiniLM-L6-v2_preprocess",
    ...                                   "saved_models/hub/all-MiniLM-L6-v2_encoder", 4)  # doctest: +SKIP
    """
    if isinstance(encoder, tf_keras.Model):
        core = encoder
    elif num_classes is None:
        raise ValueError("num_classes is required unless encoder is a model from build_encoder_classifier")
    else:
        core = build_encoder_classifier(encoder, num_classes, trainable=trainable, dropout=dropout, pooling=pooling)
    if return_truncated and seq_length is None:
        raise ValueError("return_truncated needs seq_length (the packed length the pieces are counted against)")
    text = tf_keras.Input(shape=(), dtype=tf.string, name="text")
    if seq_length is None:
        encoder_inputs = hub.KerasLayer(preprocess, name="preprocess")(text)
    else:
        preprocessor = hub.load(preprocess)
        tokens = hub.KerasLayer(preprocessor.tokenize, name="tokenize")(text)
        encoder_inputs = hub.KerasLayer(preprocessor.bert_pack_inputs, arguments={"seq_length": seq_length},
                                        name="bert_pack_inputs")([tokens])
    encoder_inputs = tf_keras.layers.Lambda(_trim_padding, name="trim_padding")(
        {key: encoder_inputs[key] for key in ENCODER_INPUTS})
    logits = core(encoder_inputs)
    if not return_truncated:
        return tf_keras.Model(text, logits, name=name)
    truncated = tf_keras.layers.Lambda(_truncated, arguments={"capacity": seq_length - 2}, name="truncated")(tokens)
    return tf_keras.Model(text, {"logits": logits, "truncated": truncated}, name=name)


def _truncated(tokens, capacity):
    """True for each text of a ``tokenize`` output ``[batch, (words), (pieces)]`` with more than ``capacity`` pieces."""
    return tokens.merge_dims(1, 2).row_lengths() > capacity


def _trim_padding(inputs):
    """Cuts the packed encoder inputs to the longest text of the batch (padding columns change nothing)."""
    length = tf.reduce_max(tf.reduce_sum(inputs["input_mask"], axis=1))
    return {key: value[:, :length] for key, value in inputs.items()}


def pooled_output_model(classifier):
    """The frozen feature extractor of a `build_encoder_classifier` model: encoder inputs to the pooled vector."""
    return tf_keras.Model(classifier.inputs, classifier.get_layer("dropout").input, name="pooled_output")


def classifier_head(classifier):
    """The head of a `build_encoder_classifier` model (dropout + dense) on pooled vectors, sharing its weights.

    Training the head trains the classifier's own ``dropout``/``classifier`` layers,
    so after the frozen stage the full model holds the trained head.
    """
    width = classifier.get_layer("dropout").input.shape[-1]
    pooled = tf_keras.Input(shape=(width,), name="pooled_output")
    logits = classifier.get_layer("classifier")(classifier.get_layer("dropout")(pooled))
    return tf_keras.Model(pooled, logits, name="classifier_head")
