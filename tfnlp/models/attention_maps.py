"""A text's attention matrices from a HuggingFace TF BERT: the lesson's ``output_attentions=True``, made readable.

The lesson prints the raw ``attentions`` tensors of a ``TFBertForSequenceClassification``
(``[batch, heads, 128, 128]`` per layer, mostly padding). `attention_maps` returns,
per text, its word pieces and the ``[layers, heads, tokens, tokens]`` matrices
over its real tokens only; `tfnlp.plots.plot_attention` draws them.

Example:
>>> model, tokenizer = load_attention_model()  # the packaged all-MiniLM-L6-v2  # doctest: +SKIP
>>> maps = attention_maps(model, tokenizer, "Transformers pay attention.")  # doctest: +SKIP
>>> maps.tokens, maps.attentions.shape  # doctest: +SKIP
(['[CLS]', 'transformers', 'pay', 'attention', '.', '[SEP]'], (6, 12, 6, 6))
"""

import collections
import os

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import tensorflow as tf

from tfnlp import pretrained
from tfnlp.text import BertTokenizer
from tfnlp.utils.model_folders import is_saved_model, list_versions, resolve_model_folder

AttentionMaps = collections.namedtuple("AttentionMaps", ["tokens", "attentions"])
AttentionMaps.__doc__ = """One text's attention: ``tokens`` (list of str, its word pieces with [CLS] and [SEP]) and
``attentions`` (float32 ``[layers, heads, len(tokens), len(tokens)]``; row ``i`` of a head is how token ``i``
attends to every token, and sums to 1)."""

HF_MODEL_FOLDER = "hf_model"


def attention_maps(model, tokenizer, texts):
    """Runs ``model`` with ``output_attentions=True`` and returns each text's attention over its real tokens.

    Args:
        model: a HuggingFace TF BERT (``TFBertModel``, ``TFBertForSequenceClassification``,
            ``TFBertForTokenClassification``...).
        tokenizer: tfnlp.text.BertTokenizer with the model's vocabulary.
        texts: str, or a list of str.

    Returns:
        `AttentionMaps` for a str, a list of them for a list. Padding never appears: each text's
        matrices are cut to its own tokens.
    """
    single = isinstance(texts, str)
    batch = [texts] if single else list(texts)
    features = tokenizer(tf.constant(batch))
    inputs = {key: features[key] for key in ("input_ids", "attention_mask", "token_type_ids")}
    attentions = model(inputs, output_attentions=True, training=False).attentions
    stacked = np.stack([tf.cast(layer, tf.float32).numpy() for layer in attentions], axis=1)  # [B, L, H, T, T]
    vocabulary = tokenizer.get_vocabulary()
    lengths = features["attention_mask"].numpy().sum(axis=1)
    ids = features["input_ids"].numpy()
    maps = [AttentionMaps([vocabulary[i] for i in ids[row, :length]], stacked[row, :, :, :length, :length])
            for row, length in enumerate(lengths)]
    return maps[0] if single else maps


def resolve_attention_folder(path=None):
    """The HF model folder behind ``path``, resolved once.

    Args:
        path: str or None. None or '' for the packaged all-MiniLM-L6-v2; a ``save_pretrained`` or other
            HF BERT folder; an export version folder (``saved_models/agnews_hf_bert/3``) or a model's export
            folder (``saved_models/agnews_hf_bert``, its newest version), whose ``hf_model`` folder is used.

    Returns:
        str. A folder with config.json, the tokenizer files and TF weights.

    Raises:
        FileNotFoundError: ``path`` is none of these.
    """
    if not path:
        return pretrained.resolve_pretrained(None)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: no such folder (expected a HF BERT folder or an export)")
    if is_saved_model(path) or list_versions(path):
        version = resolve_model_folder(path)  # A version folder, or a model folder's newest version.
        folder = os.path.join(version.path, HF_MODEL_FOLDER)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"{version.path}: this export has no {HF_MODEL_FOLDER}/ folder (only the HF BERT "
                                    f"classifier's exports carry one)")
        return pretrained.resolve_pretrained(folder)
    return pretrained.resolve_pretrained(path)


def load_attention_model(path=None, *, sequence_length=128):
    """The BERT encoder and tokenizer behind ``path`` (see `resolve_attention_folder`), ready for `attention_maps`.

    Only the encoder is loaded (a classifier's head does not change its attention).

    Args:
        path: str or None. As in `resolve_attention_folder`.
        sequence_length: int. Longest tokenization (texts are cut to it).

    Returns:
        (transformers.TFBertModel, tfnlp.text.BertTokenizer).
    """
    folder = resolve_attention_folder(path)
    return (pretrained.load_bert_model(folder, add_pooling_layer=False),
            BertTokenizer.from_pretrained(folder, sequence_length=sequence_length))
