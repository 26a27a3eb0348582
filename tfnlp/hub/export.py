"""Writing a local BERT as the two TF-Hub SavedModels: a preprocessor and an encoder.

The pair has the interface of TF Hub's BERTs (``bert_en_uncased_preprocess/3`` +
``small_bert/...``), so ``hub.KerasLayer`` and every TF Hub BERT recipe use them
as they are, with no network. Each SavedModel is written to a temporary folder
and renamed when complete.
"""

import collections
import logging
import os

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf

from tfnlp import pretrained
from tfnlp.hub.bert_encoder import bert_encoder_from_pretrained, encoder_model
from tfnlp.hub.bert_preprocessor import BertPreprocessor
from tfnlp.text import BertTokenizer
from tfnlp.utils import atomic_directory
from tfnlp.utils.model_folders import is_saved_model

logger = logging.getLogger(__name__)

DEFAULT_HUB_DIR = os.path.join("saved_models", "hub")

HubArtifacts = collections.namedtuple("HubArtifacts", ["preprocess", "encoder"])


def hub_artifact_dirs(name_or_path=None, hub_dir=DEFAULT_HUB_DIR):
    """Where `export_hub_bert` puts a BERT's SavedModels: ``<hub_dir>/<model>_preprocess`` and ``..._encoder``.

    Example:
    >>> hub_artifact_dirs(hub_dir="saved_models/hub")
    HubArtifacts(preprocess='saved_models/hub/all-MiniLM-L6-v2_preprocess', encoder='saved_models/hub/all-MiniLM-L6-v2_encoder')
    """
    slug = pretrained.model_slug(name_or_path)
    return HubArtifacts(os.path.join(hub_dir, f"{slug}_preprocess"), os.path.join(hub_dir, f"{slug}_encoder"))


def export_preprocessor(path, name_or_path=None, *, seq_length=128, overwrite=False):
    """Writes a BERT's preprocessing SavedModel (`BertPreprocessor`) to ``path``.

    Args:
        path: str. Target folder.
        name_or_path: str or None. The BERT whose ``vocab.txt`` and casing to use
            (see `tfnlp.pretrained.tokenizer_files`).
        seq_length: int. Default output length.
        overwrite: bool. Replace an existing folder.

    Returns:
        str. ``path``.
    """
    tokenizer = BertTokenizer.from_pretrained(name_or_path, name="tokenizer")
    preprocessor = BertPreprocessor(tokenizer, seq_length=seq_length)
    with atomic_directory(path, overwrite=overwrite) as tmp:
        tf.saved_model.save(preprocessor, tmp)
    logger.info("wrote the preprocessing SavedModel to %s", path)
    return path


def export_encoder(path, name_or_path=None, *, overwrite=False, cache_dir=None):
    """Writes a BERT's encoder SavedModel (tf-models-official ``BertEncoderV2``, converted weights) to ``path``.

    As tf-models-official's ``export_tfhub_lib.export_model``: a Keras SavedModel
    (so ``hub.KerasLayer(..., trainable=True)`` can fine-tune it, with dropout
    following ``training``) taking ``input_word_ids`` / ``input_mask`` /
    ``input_type_ids`` and returning ``pooled_output``, ``sequence_output``,
    ``encoder_outputs`` and ``default``; ``vocab_file`` (an asset) and
    ``do_lower_case`` ride along for users who preprocess themselves.

    Args:
        path: str. Target folder.
        name_or_path: str or None. The BERT (see `tfnlp.pretrained.resolve_pretrained`).
        overwrite: bool. Replace an existing folder.
        cache_dir: str or None. Conversion cache root.

    Returns:
        str. ``path``.
    """
    encoder, _ = bert_encoder_from_pretrained(name_or_path, cache_dir=cache_dir)
    model = encoder_model(encoder)
    vocab_file, do_lower_case = pretrained.tokenizer_files(name_or_path)
    model.vocab_file = tf.saved_model.Asset(vocab_file)
    model.do_lower_case = tf.Variable(do_lower_case, trainable=False, name="do_lower_case")
    with atomic_directory(path, overwrite=overwrite) as tmp:
        model.save(tmp, include_optimizer=False, save_format="tf")
    logger.info("wrote the encoder SavedModel to %s", path)
    return path


def export_hub_bert(name_or_path=None, hub_dir=DEFAULT_HUB_DIR, *, seq_length=128, overwrite=False,
                    cache_dir=None):
    """Writes a BERT's preprocessing and encoder SavedModels under ``hub_dir`` (see `hub_artifact_dirs`).

    Artifacts already there are kept unless ``overwrite``.

    Args:
        name_or_path: str or None. None for the packaged all-MiniLM-L6-v2, or a local HF BERT folder.
        hub_dir: str. Base folder.
        seq_length: int. The preprocessor's default sequence length.
        overwrite: bool. Rebuild existing artifacts.
        cache_dir: str or None. Conversion cache root.

    Returns:
        HubArtifacts. ``(preprocess, encoder)`` folders.

    Example:
    >>> artifacts = export_hub_bert(hub_dir="saved_models/hub")  # doctest: +SKIP
    >>> import tensorflow_hub as hub  # doctest: +SKIP
    >>> encoder_inputs = hub.KerasLayer(artifacts.preprocess)(tf.constant(["I love transformers"]))  # doctest: +SKIP
    >>> hub.KerasLayer(artifacts.encoder)(encoder_inputs)["pooled_output"].shape  # doctest: +SKIP
    TensorShape([1, 384])
    """
    artifacts = hub_artifact_dirs(name_or_path, hub_dir)
    if overwrite or not is_saved_model(artifacts.preprocess):
        export_preprocessor(artifacts.preprocess, name_or_path, seq_length=seq_length, overwrite=overwrite)
    if overwrite or not is_saved_model(artifacts.encoder):
        export_encoder(artifacts.encoder, name_or_path, overwrite=overwrite, cache_dir=cache_dir)
    return artifacts
