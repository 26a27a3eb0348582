"""A Hugging Face BERT's weights in tf-models-official's ``BertEncoderV2``, with TF Hub's encoder interface."""

import logging

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import tensorflow as tf
import tf_keras
from official.nlp.modeling import networks

from tfnlp import pretrained

logger = logging.getLogger(__name__)

ENCODER_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")

# HF ``hidden_act`` -> Keras activation. HF's "gelu" is the exact (erf) GELU; official's "gelu" is the tanh one.
_ACTIVATIONS = {
    "gelu": lambda x: tf_keras.activations.gelu(x, approximate=False),
    "gelu_new": lambda x: tf_keras.activations.gelu(x, approximate=True),
    "gelu_pytorch_tanh": lambda x: tf_keras.activations.gelu(x, approximate=True),
    "relu": tf_keras.activations.relu,
}


def build_bert_encoder(config, *, dropout=None):
    """Builds an (untrained) tf-models-official ``BertEncoderV2`` for an HF BERT config.

    Args:
        config: `transformers.BertConfig` (or any object with its attributes).
        dropout: float or None. Overrides the config's hidden and attention dropout.

    Returns:
        official.nlp.modeling.networks.BertEncoderV2 returning a dict with
        ``sequence_output``, ``pooled_output`` and ``encoder_outputs``.

    Raises:
        ValueError: a config this encoder cannot reproduce (activation, position embeddings, LayerNorm epsilon).
    """
    activation = _ACTIVATIONS.get(config.hidden_act)
    if activation is None:
        raise ValueError(f"hidden_act {config.hidden_act!r} is not supported; expected one of {sorted(_ACTIVATIONS)}")
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"position_embedding_type {config.position_embedding_type!r} is not supported (absolute only)")
    if not np.isclose(getattr(config, "layer_norm_eps", 1e-12), 1e-12):
        raise ValueError(f"layer_norm_eps {config.layer_norm_eps} is not supported: BertEncoderV2 uses 1e-12")
    return networks.BertEncoderV2(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        max_sequence_length=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size,
        inner_dim=config.intermediate_size,
        inner_activation=activation,
        output_dropout=config.hidden_dropout_prob if dropout is None else dropout,
        attention_dropout=config.attention_probs_dropout_prob if dropout is None else dropout,
        initializer=tf_keras.initializers.TruncatedNormal(stddev=config.initializer_range),
        name="bert_encoder",
    )


def bert_encoder_from_pretrained(name_or_path=None, *, cache_dir=None, dropout=None):
    """A ``BertEncoderV2`` holding a pretrained Hugging Face BERT's weights.

    The weights are read from `tfnlp.pretrained.load_bert_model` (the packaged
    all-MiniLM-L6-v2 by default) and copied tensor by tensor; the pooler comes
    along, so ``pooled_output`` is BERT's ``pooler_output``.

    Args:
        name_or_path: str or None. As in `tfnlp.pretrained.resolve_pretrained`.
        cache_dir: str or None. Conversion cache root.
        dropout: float or None. Overrides the config's dropout rates.

    Returns:
        (encoder, config): the built ``BertEncoderV2`` and the HF config.

    Example:
    >>> encoder, config = bert_encoder_from_pretrained()  # doctest: +SKIP
    >>> inputs = {name: tf.ones([1, 5], tf.int32) for name in ENCODER_INPUTS}  # doctest: +SKIP
    >>> encoder(inputs)["pooled_output"].shape  # doctest: +SKIP
    TensorShape([1, 384])
    """
    hf_model = pretrained.load_bert_model(name_or_path, cache_dir=cache_dir)
    config = hf_model.config
    encoder = build_bert_encoder(config, dropout=dropout)
    encoder({name: tf.zeros([1, 2], tf.int32) for name in ENCODER_INPUTS})  # Creates the variables.
    copy_hf_weights(hf_model, encoder)
    return encoder, config


def copy_hf_weights(hf_model, encoder):
    """Copies a `transformers.TFBertModel`'s weights into a built ``BertEncoderV2`` of the same shape.

    Raises:
        ValueError: a weight is missing or has an unexpected shape (the message names it).
    """
    source = {_hf_name(weight.name): weight.numpy() for weight in hf_model.weights}
    heads = encoder.get_config()["num_attention_heads"]
    used = set()

    def take(name, shape=None):
        if name not in source:
            raise ValueError(f"the Hugging Face model has no weight {name!r} (is it a BertModel with a pooler?)")
        used.add(name)
        value = source[name]
        return value if shape is None else value.reshape(shape)

    hidden = source["embeddings/LayerNorm/gamma"].shape[0]
    head_dim = hidden // heads
    targets = {}
    targets["word_embeddings/embeddings"] = take("embeddings/word_embeddings/weight")
    targets["position_embedding/embeddings"] = take("embeddings/position_embeddings/embeddings")
    targets["type_embeddings/embeddings"] = take("embeddings/token_type_embeddings/embeddings")
    targets["embeddings/layer_norm/gamma"] = take("embeddings/LayerNorm/gamma")
    targets["embeddings/layer_norm/beta"] = take("embeddings/LayerNorm/beta")
    for i in range(encoder.get_config()["num_layers"]):
        hf, tf_ = f"encoder/layer_._{i}/", f"transformer/layer_{i}/"
        for part in ("query", "key", "value"):
            targets[f"{tf_}self_attention/{part}/kernel"] = take(f"{hf}attention/self/{part}/kernel",
                                                                 (hidden, heads, head_dim))
            targets[f"{tf_}self_attention/{part}/bias"] = take(f"{hf}attention/self/{part}/bias", (heads, head_dim))
        targets[f"{tf_}self_attention/attention_output/kernel"] = take(f"{hf}attention/output/dense/kernel",
                                                                       (heads, head_dim, hidden))
        targets[f"{tf_}self_attention/attention_output/bias"] = take(f"{hf}attention/output/dense/bias")
        for tf_norm, hf_norm in (("self_attention_layer_norm", "attention/output/LayerNorm"),
                                 ("output_layer_norm", "output/LayerNorm")):
            targets[f"{tf_}{tf_norm}/gamma"] = take(f"{hf}{hf_norm}/gamma")
            targets[f"{tf_}{tf_norm}/beta"] = take(f"{hf}{hf_norm}/beta")
        for tf_dense, hf_dense in (("intermediate", "intermediate/dense"), ("output", "output/dense")):
            targets[f"{tf_}{tf_dense}/kernel"] = take(f"{hf}{hf_dense}/kernel")
            targets[f"{tf_}{tf_dense}/bias"] = take(f"{hf}{hf_dense}/bias")
    targets["pooler_transform/kernel"] = take("pooler/dense/kernel")
    targets["pooler_transform/bias"] = take("pooler/dense/bias")

    unused = sorted(set(source) - used)
    if unused:
        raise ValueError(f"Hugging Face weights not copied (unsupported architecture?): {unused[:5]}")
    variables = {_encoder_name(variable.name): variable for variable in encoder.weights}
    if set(variables) != set(targets):
        raise ValueError(f"encoder weights do not match the BERT: missing {sorted(set(variables) - set(targets))[:5]}, "
                         f"unexpected {sorted(set(targets) - set(variables))[:5]}")
    for name, value in targets.items():
        if tuple(variables[name].shape) != value.shape:
            raise ValueError(f"{name}: shape {value.shape} from the BERT, {tuple(variables[name].shape)} in the encoder")
        variables[name].assign(value)
    logger.info("copied %d BERT weights into %s", len(targets), encoder.name)


def _hf_name(name):
    """'tf_bert_model/bert/encoder/layer_._0/.../kernel:0' -> 'encoder/layer_._0/.../kernel'."""
    name = name.split(":")[0]
    return name.split("/bert/", 1)[1] if "/bert/" in name else name


def _encoder_name(name):
    """'bert_encoder/transformer/layer_0/.../kernel:0' (or without the prefix) -> 'transformer/layer_0/.../kernel'."""
    name = name.split(":")[0]
    return name.split("bert_encoder/", 1)[1] if name.startswith("bert_encoder/") else name


def encoder_model(encoder):
    """Wraps an encoder as TF Hub's encoder model: a dict of int32 ``[batch, seq]`` inputs to a dict of outputs.

    Outputs ``sequence_output``, ``pooled_output``, ``encoder_outputs`` (one per
    layer) and ``default`` (= ``pooled_output``), as ``export_tfhub_lib`` writes them.
    """
    inputs = {name: tf_keras.Input(shape=(None,), dtype=tf.int32, name=name) for name in ENCODER_INPUTS}
    outputs = dict(encoder(inputs))
    outputs = {key: outputs[key] for key in ("sequence_output", "pooled_output", "encoder_outputs")}
    outputs["default"] = outputs["pooled_output"]
    return tf_keras.Model(inputs, outputs, name="encoder")
