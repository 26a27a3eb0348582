"""Versioned, atomic SavedModel export (``<base_dir>/<version>/``, as TF Serving expects), and the two exports of
tfnlp's models built on it: `export_text_classifier` (`TextClassifierModule`) and `export_token_classifier`
(`tfnlp.serving.TokenClassifierModule`), each reloaded and checked against the model it was made from."""

import contextlib
import logging
import os
import re

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf
import tf_keras

from tfnlp.serving import warmup
from tfnlp.serving.ner_predictor import NerPredictor, check_same_entities
from tfnlp.serving.text_classifier_module import TextClassifierModule
from tfnlp.utils import atomic_directory

logger = logging.getLogger(__name__)


def next_version(base_dir):
    """Returns the next free integer version under ``base_dir`` (1 when there is none).

    Only folders whose names are integers count, like TF Serving's own scan, so
    temporary folders of an export in progress are ignored.
    """
    if not os.path.isdir(base_dir):
        return 1
    versions = [int(name) for name in os.listdir(base_dir)
                if re.fullmatch(r"\d+", name) and os.path.isdir(os.path.join(base_dir, name))]
    return max(versions, default=0) + 1


def export_saved_model(obj, base_dir, signatures, version=None, extras=None, warmup_inputs=None):
    """Saves ``obj`` to ``<base_dir>/<version>/`` atomically and returns that path.

    The SavedModel is written to a hidden temporary sibling folder and renamed
    when complete, so TF Serving (which polls ``base_dir``) never sees a
    half-written version and a crash leaves no broken folder behind. The
    version carries TF Serving's warm-up requests,
    ``assets.extra/tf_serving_warmup_requests`` (`tfnlp.serving.warmup`): by
    default a request of one text and one of several per signature, each run
    on the signature before it is written.

    Args:
        obj: tf.Module or tf_keras.Model. What to save (its trackable state and assets).
        base_dir: str. The model's folder, e.g. ``saved_models/agnews_transformer``.
        signatures: dict of signature name to concrete function (must hold ``serving_default``).
        version: int or None. Explicit version; None takes `next_version`.
        extras: callable or None. Called with the temporary folder after the SavedModel is written, to add
            files that belong to this version (they are published with it, atomically).
        warmup_inputs: dict or None. Signature name to a list of input dicts (name to array), the warm-up
            requests; None builds them from the signatures (`warmup.default_warmup_inputs`).

    Example:
    >>> module = tf.Module()
    >>> module.f = tf.function(lambda x: {"y": x * 2}, input_signature=[tf.TensorSpec([None], tf.float32)])
    >>> import tempfile
    >>> path = export_saved_model(module, tempfile.mkdtemp(), {"serving_default": module.f.get_concrete_function()})
    >>> os.path.basename(path)
    '1'
    """
    if "serving_default" not in signatures:
        raise ValueError("signatures must include 'serving_default'")
    version = next_version(base_dir) if version is None else int(version)
    final = os.path.join(base_dir, str(version))
    requests = warmup.build_warmup_requests(signatures, warmup_inputs, module=obj,
                                            model_name=os.path.basename(os.path.abspath(base_dir)))
    with atomic_directory(final) as tmp:
        tf.saved_model.save(obj, tmp, signatures=signatures)
        warmup.write_warmup_requests(tmp, requests)
        if extras is not None:
            extras(tmp)
    logger.info("exported SavedModel version %d to %s", version, final)
    return final


def reload_smoke_check(path, texts, expected_probabilities=None, atol=1e-4):
    """Reloads an exported text classifier, replays its warm-up requests and predicts ``texts``.

    The warm-up requests run as TF Serving runs them when it loads the version
    (`warmup.replay_warmup_requests`): each on the signature it names.

    Args:
        path: str. The exported version folder.
        texts: list of str. A few inputs.
        expected_probabilities: array or None. The in-memory model's probabilities for ``texts``.
        atol: float. Largest allowed difference from ``expected_probabilities``.

    Returns:
        dict: the signature's outputs as NumPy arrays.

    Raises:
        AssertionError: the reloaded model's probabilities differ from the expected ones by more than ``atol``.
        ValueError: the version has no warm-up requests.
    """
    loaded = tf.saved_model.load(path)
    warmup.replay_warmup_requests(path, loaded.signatures)
    outputs = loaded.signatures["serving_default"](text=tf.constant(texts))
    outputs = {name: value.numpy() for name, value in outputs.items()}
    if expected_probabilities is not None:
        difference = float(abs(outputs["probabilities"] - expected_probabilities).max())
        if difference > atol:
            raise AssertionError(f"{path}: reloaded model differs from the trained one by {difference:.3g} > {atol}")
    return outputs


# Inputs of the reload check after an export: ordinary news, an empty string, non-ASCII text.
SMOKE_TEXTS = (
    "Stocks fell sharply on Wall Street as oil prices rose to a record high.",
    "The striker scored twice as the home team won the cup final.",
    "",
    "Ученые представили новый процессор с низким энергопотреблением.",
)


@contextlib.contextmanager
def optimizers_untracked(model):
    """Within the block, the optimizers of ``model`` and of the Keras models inside it are not saved.

    A compiled Keras model tracks its optimizer, so a SavedModel of it also
    holds the optimizer's slots (Adam's two moments per weight), which serving
    never reads. The optimizers stay attached and are tracked again on exit, so
    training and checkpoints afterwards are unaffected.
    """
    untracked = []
    for module in [model, *model.submodules]:
        optimizer = getattr(module, "optimizer", None) if isinstance(module, tf_keras.Model) else None
        if optimizer is not None and any(dependency.name == "optimizer"
                                         for dependency in module._checkpoint_dependencies):
            module._delete_tracking("optimizer")  # tf_keras has no public way to save without it.
            untracked.append((module, optimizer))
    try:
        yield
    finally:
        for module, optimizer in untracked:
            module._track_trackable(optimizer, name="optimizer", overwrite=True)


def export_text_classifier(model, class_names, base_dir, *, outputs_logits=True, smoke_texts=SMOKE_TEXTS,
                           ids_model=None, tokenizer=None, max_length=None, extras=None):
    """Exports a raw-text classifier with `TextClassifierModule`'s signatures, then reloads and checks it.

    Args:
        model: tf_keras.Model. `tf.string` ``[batch]`` to logits (or probabilities), or to a dict of them
            (``"logits"``) and ``"truncated"`` (bool ``[batch]``, the texts it read only the beginning of),
            which the signatures then output (see `TextClassifierModule`; the fit scripts' exports all do).
        class_names: list of str. In label-id order.
        base_dir: str. The model's folder; the export goes to ``<base_dir>/<next version>/``.
        outputs_logits: bool. As in `TextClassifierModule`.
        smoke_texts: sequence of str. Texts predicted before the export and after reloading it.
        ids_model: tf_keras.Model or None. The same classifier on token ids: adds the ``serving_ids``
            signature (see `TextClassifierModule`).
        tokenizer: tfnlp.text.BertTokenizer or None. The tokenizer inside ``model`` (required with
            ``ids_model``): it gives the vocabulary size that ``serving_ids`` checks ids against, and the ids
            of ``smoke_texts`` with which the reloaded ``serving_ids`` must give ``serving_default``'s
            probabilities (within 1e-5).
        max_length: int or None. Longest sequence ``serving_ids`` accepts (the model's position embeddings).
        extras: callable or None. As in `export_saved_model` (files published with the version).

    Returns:
        dict: ``path`` of the export and ``smoke_labels``, the reloaded model's labels for ``smoke_texts``.

    Raises:
        AssertionError: the reloaded SavedModel's probabilities differ from the model's, or its two
            signatures disagree.
    """
    if ids_model is not None and tokenizer is None:
        raise ValueError("ids_model needs the tokenizer that feeds model (its vocabulary and smoke-test ids)")
    module = TextClassifierModule(model, class_names, outputs_logits=outputs_logits, ids_model=ids_model,
                                  vocab_size=tokenizer.vocabulary_size if tokenizer is not None else None,
                                  max_length=max_length)
    if not module.reports_truncation:
        logger.warning("%s: the model does not output 'truncated': its signatures cannot say which texts were "
                       "cut to its sequence length", base_dir)
    expected = module.serving_default(tf.constant(list(smoke_texts)))["probabilities"].numpy()
    with optimizers_untracked(model):  # Serving needs the weights, not the Adam moments (twice their size).
        path = export_saved_model(module, base_dir, module.signatures(), extras=extras)
    outputs = reload_smoke_check(path, list(smoke_texts), expected)
    if ids_model is not None:
        features = tokenizer(tf.constant(list(smoke_texts)))
        ids_outputs = tf.saved_model.load(path).signatures["serving_ids"](
            **{key: features[key] for key in ("input_ids", "attention_mask", "token_type_ids")})
        difference = float(abs(ids_outputs["probabilities"].numpy() - outputs["probabilities"]).max())
        if difference > 1e-5:
            raise AssertionError(f"{path}: serving_ids differs from serving_default by {difference:.3g} > 1e-5")
    labels = [label.decode() for label in outputs["label"]]
    logger.info("exported %s; reloaded predictions %s", path, labels)
    return {"path": path, "smoke_labels": labels}


def export_token_classifier(module, base_dir, *, smoke_texts, extras=None):
    """Exports a `tfnlp.serving.TokenClassifierModule` to ``<base_dir>/<next version>/``, then reloads it and checks it.

    Args:
        module: tfnlp.serving.TokenClassifierModule.
        base_dir: str. The model's folder (TF Serving layout).
        smoke_texts: sequence of str. Predicted before the export and after reloading it; the entities
            must be the same (scores within 1e-5).
        extras: callable or None. As in `export_saved_model` (files published with the version).

    Returns:
        dict: ``path`` of the export and ``smoke_entities``, the reloaded model's entities for ``smoke_texts``.

    Raises:
        AssertionError: the reloaded SavedModel's entities differ from the module's.
    """
    expected = NerPredictor(module.serving_default)(list(smoke_texts))
    with optimizers_untracked(module.model):  # Serving needs the weights, not the Adam moments.
        path = export_saved_model(module, base_dir, module.signatures(), extras=extras)
    reloaded = NerPredictor.load(path)(list(smoke_texts))
    check_same_entities(reloaded, expected, atol=1e-5, context=f"{path} reloaded vs the trained model")
    logger.info("exported %s; reloaded entities match the trained model on %d texts", path, len(smoke_texts))
    return {"path": path, "smoke_entities": reloaded}
