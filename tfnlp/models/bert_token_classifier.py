"""HuggingFace ``TFBertForTokenClassification`` for NER, as a Keras model on the preprocessor's inputs.

`build_bert_token_classifier` loads the pretrained encoder with a new
classifier head for the IOB2 tags (``id2label``/``label2id`` set, as in the
lesson). With ``casing=True`` the model also reads the casing of each piece
(`tfnlp.text.casing`) at its input: the casing id goes in ``token_type_ids``,
whose embedding table grows from BERT's 2 segment rows to one row per casing id,
each starting as a copy of the pretrained segment-A row (so training starts from
the pretrained model exactly). The casing embedding is then added to the word and
position embeddings before the first LayerNorm, where every layer can use it,
and the model stays a plain ``TFBertForTokenClassification``: ``save_pretrained``
gives a folder HF reloads (fed with casing ids as ``token_type_ids``).

`token_classifier_model` wraps it in a functional Keras model from HF's input
dict to float32 logits, for ``compile``/``fit``, checkpoints, distribution
strategies and serving; the two share their weights.
"""

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import tf_keras

from tfnlp import pretrained
from tfnlp.models.hf_bert_classifier import ids_inputs
from tfnlp.text.casing import NUM_CASING_IDS



def build_bert_token_classifier(name_or_path=None, *, labels, casing=False, **kwargs):
    """``TFBertForTokenClassification`` with a pretrained encoder, for ``labels``, built.

    Args:
        name_or_path: str or None. None for the packaged all-MiniLM-L6-v2, a local HF BERT folder,
            or a hub name such as ``bert-base-cased`` (online); see `tfnlp.pretrained.resolve_pretrained`.
        labels: sequence of str. Tag names; tag ``i`` is ``labels[i]`` (``id2label``, ``label2id``).
        casing: bool. Read casing ids as ``token_type_ids`` (a table of `NUM_CASING_IDS` rows, each
            initialized to the pretrained segment-A row).
        **kwargs: config overrides for ``from_pretrained`` (``hidden_dropout_prob``, ...).

    Returns:
        transformers.TFBertForTokenClassification.

    Example:
    >>> model = build_bert_token_classifier(labels=CONLL2003_LABELS, casing=True)  # doctest: +SKIP
    >>> model.config.type_vocab_size, model.config.id2label[1]  # doctest: +SKIP
    (6, 'B-PER')
    """
    model = pretrained.load_bert_for_token_classification(name_or_path, labels=list(labels), **kwargs)
    model(model.dummy_inputs, training=False)  # Builds the new classifier head eagerly.
    if casing:
        model = _with_type_vocabulary(model, NUM_CASING_IDS)
    return model


def _with_type_vocabulary(model, size):
    """A copy of ``model`` whose token-type table has ``size`` rows, each a copy of the pretrained row 0."""
    config = model.config.__class__.from_dict(model.config.to_dict())
    config.type_vocab_size = size
    copy = type(model)(config)
    copy(copy.dummy_inputs, training=False)
    def local_name(weight):  # Without the model's own name, which differs between the two.
        return weight.name.split("/", 1)[-1]

    sources = {local_name(weight): weight for weight in model.weights}
    if len(sources) != len(copy.weights):
        raise ValueError(f"{len(copy.weights)} weights in the new model, {len(sources)} in the pretrained one")
    for weight in copy.weights:
        value = sources[local_name(weight)].numpy()
        if "token_type_embeddings" in weight.name:
            value = np.repeat(value[:1], size, axis=0)
        weight.assign(value)
    return copy


def token_classifier_model(bert_token_classifier, name="bert_token_classifier"):
    """A functional model from HF inputs to the logits of ``bert_token_classifier`` (shares its weights).

    Args:
        bert_token_classifier: transformers.TFBertForTokenClassification.
        name: str. Model name.

    Returns:
        tf_keras.Model. Inputs: dict of int32 ``[batch, length]`` ``input_ids``, ``attention_mask``,
        ``token_type_ids``; output: float32 logits ``[batch, length, labels]`` (float32 under a
        mixed-precision policy too).

    Example:
    >>> model = token_classifier_model(build_bert_token_classifier(labels=["O", "B-X", "I-X"]))  # doctest: +SKIP
    >>> ids = tf.constant([[101, 7592, 102]])  # doctest: +SKIP
    >>> model({"input_ids": ids, "attention_mask": tf.ones_like(ids),
    ...        "token_type_ids": tf.zeros_like(ids)}).shape  # doctest: +SKIP
    TensorShape([1, 3, 3])
    """
    inputs = ids_inputs()
    logits = bert_token_classifier(inputs).logits
    return tf_keras.Model(inputs, tf_keras.layers.Activation("linear", dtype="float32", name="logits")(logits),
                          name=name)


def hf_token_classifier(model):
    """The ``TFBertForTokenClassification`` inside a `token_classifier_model`."""
    from transformers import TFBertForTokenClassification

    for layer in model.layers:
        if isinstance(layer, TFBertForTokenClassification):
            return layer
    raise ValueError(f"{model.name} holds no TFBertForTokenClassification")
