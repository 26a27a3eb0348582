"""Training recipes the BERT classifier pipelines share: compiling a classifier, and the frozen-encoder stage.

Both the TF-Hub BERT (`pipelines.agnews_hub_bert`) and the HuggingFace BERT
(`pipelines.agnews_hf_bert`) classifiers train in two stages. The first keeps
the encoder frozen, as the lesson does; since a frozen encoder computes the same
vectors in every epoch, `train_frozen_head` runs it once over each split, caches
the vectors (`tfnlp.training.feature_cache`) and trains only the head on them.
"""

import json
import logging
import os

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import tensorflow as tf
import tf_keras

from tfnlp.data.batching import disable_autotuning
from tfnlp.training.evaluation import fit_and_evaluate
from tfnlp.training.feature_cache import cached_features
from tfnlp.training.optimization import create_optimizer
from tfnlp.utils import atomic_write_json

logger = logging.getLogger(__name__)


def compile_classifier(model, runtime, *, learning_rate, num_train_steps, warmup_ratio=0.1, weight_decay=0.01,
                       implementation="official", lazy_sparse_updates=False, global_clipnorm=None):
    """Compiles a logits classifier: AdamW with linear warm-up and decay, cross-entropy, accuracy.

    Args:
        model: tf_keras.Model. Outputs logits ``[batch, classes]``.
        runtime: tfnlp.training.Runtime. Supplies XLA and steps-per-execution options.
        learning_rate: float. Peak learning rate.
        num_train_steps: int. Optimizer steps of the whole training (epochs x steps per epoch).
        warmup_ratio: float. Fraction of the steps warming up linearly.
        weight_decay: float. Decoupled weight decay (never on LayerNorm and bias weights).
        implementation: str. ``"official"`` or ``"transformers"`` (see `tfnlp.training.optimization.create_optimizer`).
        lazy_sparse_updates: bool. Update only the embedding rows each batch uses (LazyAdam).
        global_clipnorm: float or None. ``"transformers"`` only: clip the gradient's global norm.
    """
    model.compile(
        optimizer=create_optimizer(learning_rate, num_train_steps, warmup_ratio=warmup_ratio,
                                   weight_decay=weight_decay, implementation=implementation,
                                   lazy_sparse_updates=lazy_sparse_updates, global_clipnorm=global_clipnorm),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        **runtime.compile_options())


def train_frozen_head(extractor, head, batches, class_names, runtime, *, cache_key, settings, epochs, batch_size,
                      learning_rate, implementation="official"):
    """Stage 1 of a BERT classifier: cache the frozen encoder's vectors once, then train the head on them.

    ``extractor`` maps a batch of encoder inputs to the vectors the head reads
    (a pooled output); ``head`` maps those vectors to logits and shares its layers
    with the full classifier, so training it trains the classifier's head. The
    vectors of every split are computed once and cached in
    ``<runtime output>/features/<split>.npz``; each head epoch then costs a
    fraction of a second instead of an encoder pass. A stage that already
    finished in this output folder with the same ``cache_key`` and ``settings``
    is not trained again: its best head is loaded and its metrics returned.

    Args:
        extractor: callable. Encoder inputs -> float vectors ``[batch, width]`` (``training=False``).
        head: tf_keras.Model. Vectors ``[batch, width]`` -> logits, sharing weights with the classifier.
        batches: dict of ``train``, ``validation`` and ``test`` datasets of ``(encoder inputs, label)``
            batches in a fixed order.
        class_names: list of str.
        runtime: tfnlp.training.Runtime of this stage (`Runtime.stage`).
        cache_key: str. What the vectors depend on (encoder, tokenization, data); stored with them.
        settings: dict. The stage's own settings (epochs, learning rate...); with ``cache_key``, they
            decide whether an earlier run of the stage can be reused.
        epochs: int. Head epochs.
        batch_size: int. Head batch size.
        learning_rate: float. Head AdamW learning rate (10% warm-up, then linear decay; weight decay 0.01).
        implementation: str. The optimizer implementation (`compile_classifier`).

    Returns:
        dict: the stage's metrics (`tfnlp.training.evaluation.fit_and_evaluate`'s, plus ``encoder_seconds`` per
        split, ``features_from_cache``, ``first_epoch_seconds``, ``cached_epoch_seconds`` and
        ``cache_speedup``), also written to ``<runtime output>/metrics.json``.
    """
    done = _read_json(runtime.folder.metrics_file)
    if done and done.get("inputs") == cache_key and done.get("settings") == settings:
        runtime.restore_best(head)
        logger.info("frozen stage already done in %s; reusing its head", runtime.folder.root)
        return done
    features, encoder_seconds = {}, {}
    for name, dataset in batches.items():
        vectors, labels, seconds = cached_features(extractor, dataset,
                                                   runtime.worker_path(runtime.folder.features_file(name)),
                                                   key=f"{cache_key}|{name}")
        features[name], encoder_seconds[name] = (vectors, labels), seconds

    def head_batches(name, shuffle):
        dataset = tf.data.Dataset.from_tensor_slices(features[name])
        if shuffle:
            dataset = dataset.shuffle(len(features[name][1]), seed=runtime.args.seed, reshuffle_each_iteration=True)
        return disable_autotuning(dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE))

    head_data = {"train": head_batches("train", True), "validation": head_batches("validation", False),
                 "test": head_batches("test", False)}
    with runtime.scope():
        compile_classifier(head, runtime, learning_rate=learning_rate,
                           num_train_steps=int(head_data["train"].cardinality()) * epochs,
                           warmup_ratio=0.1, weight_decay=0.01, implementation=implementation)
    metrics, throughput = fit_and_evaluate(head, runtime, head_data, epochs=epochs,
                                           num_train=len(features["train"][1]), class_names=class_names)

    head_epoch = float(np.median(throughput.train_seconds)) if throughput.train_seconds else None
    first_epoch = encoder_seconds["train"] + (throughput.train_seconds[0] if throughput.train_seconds else 0.0)
    metrics.update({
        "encoder_seconds": encoder_seconds,
        "features_from_cache": encoder_seconds["train"] == 0.0,
        "first_epoch_seconds": first_epoch,
        "cached_epoch_seconds": head_epoch,
        # An epoch through the encoder (its pass over train + a head epoch) against an epoch on the cache.
        "cache_speedup": first_epoch / head_epoch if head_epoch and encoder_seconds["train"] else None,
        "inputs": cache_key,
        "settings": settings,
    })
    if metrics["features_from_cache"]:
        logger.info("frozen stage: test accuracy %.4f; features read from %s (no encoder pass), head epoch %.3f s",
                    metrics["test"]["accuracy"], runtime.folder.features_dir, head_epoch or float("nan"))
    else:
        logger.info("frozen stage: test accuracy %.4f; encoder pass %.0f s, cached head epoch %.3f s (%.0fx)",
                    metrics["test"]["accuracy"], encoder_seconds["train"], head_epoch or float("nan"),
                    metrics["cache_speedup"] or float("nan"))
    if runtime.is_chief:
        atomic_write_json(runtime.folder.metrics_file, metrics)
    return metrics


def _read_json(path):
    """The JSON object in ``path``, or None if there is no such file."""
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)
