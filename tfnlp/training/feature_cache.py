"""Frozen-encoder features computed once and cached on disk, so later head epochs skip the encoder."""

import logging
import os
import time

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import tensorflow as tf

from tfnlp.utils import atomic_file
from tfnlp.utils.progress import Progress

logger = logging.getLogger(__name__)


def cached_features(model, dataset, path, key, total=None, name=None):
    """Runs a frozen ``model`` over a dataset once and caches its outputs with the labels in ``path`` (.npz).

    A later call with the same ``path`` and ``key`` loads the file instead of
    running the model (a resumed or repeated run skips the encoder too). A file
    with another key (other encoder, data or length) is recomputed; the file
    is written atomically, so an interrupted pass leaves nothing half-written.

    Args:
        model: callable. Maps a batch of inputs to float features ``[batch, width]`` (``training=False``).
        dataset: iterable of ``(inputs, label)`` batches in a fixed order (a tf.data.Dataset, or a generator).
        path: str. Cache file.
        key: str. What the features depend on; stored in the file and compared on load.
        total: int or None. Examples in ``dataset``, for the progress lines (None: unknown).
        name: str or None. What the progress lines call the pass (None: "encoding into <path>").

    Returns:
        (features, labels, seconds): float32 ``[n, width]``, int ``[n]``, and the seconds spent running
        the model (0.0 when loaded from the cache).

    Example:
    >>> import tempfile
    >>> data = tf.data.Dataset.from_tensor_slices((tf.ones([3, 2]), [0, 1, 1])).batch(2)
    >>> path = os.path.join(tempfile.mkdtemp(), "train.npz")
    >>> features, labels, _ = cached_features(lambda x, training: 2 * x, data, path, key="doubling")
    >>> features.shape, labels.tolist()
    ((3, 2), [0, 1, 1])
    """
    if os.path.exists(path):
        with np.load(path, allow_pickle=False) as cached:
            if str(cached["key"]) == key:
                logger.info("%d cached vectors read from %s (no encoder pass)", len(cached["labels"]), path)
                return cached["features"], cached["labels"], 0.0
        logger.info("%s was computed for other inputs; recomputing", path)
    features, labels, seconds = compute_features(model, dataset, name=name or f"encoding into {path}", total=total)
    with atomic_file(path) as f:
        np.savez(f, features=features, labels=labels, key=np.array(key))
    return features, labels, seconds


def compute_features(model, dataset, name="computing features", total=None):
    """Runs a frozen ``model`` over a dataset of ``(inputs, label)`` batches (no cache; see `cached_features`).

    Args:
        model: callable. Maps a batch of inputs to float features ``[batch, width]`` (``training=False``).
        dataset: iterable of ``(inputs, label)`` batches (a tf.data.Dataset, or a generator of Tensors).
        name: str. Names the pass in the progress lines (`tfnlp.utils.progress.Progress`).
        total: int or None. Examples in ``dataset`` (None: unknown).

    Returns:
        (features, labels, seconds): float32 ``[n, width]``, the labels ``[n]``, and the seconds spent.

    Example:
    >>> data = tf.data.Dataset.from_tensor_slices((tf.ones([3, 2]), [0, 1, 1])).batch(2)
    >>> features, labels, _ = compute_features(lambda x, training: 2 * x, data)
    >>> features.tolist(), labels.tolist()
    ([[2.0, 2.0], [2.0, 2.0], [2.0, 2.0]], [0, 1, 1])
    """
    start = time.perf_counter()
    run = tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)
    features, labels = [], []
    with Progress(name, total=total, unit="examples", log=logger) as progress:
        for inputs, batch_labels in dataset:
            features.append(tf.cast(run(inputs), tf.float32).numpy())
            labels.append(batch_labels.numpy())
            progress.update(len(labels[-1]))
    return np.concatenate(features), np.concatenate(labels), time.perf_counter() - start
