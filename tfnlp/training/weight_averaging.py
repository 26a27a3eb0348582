"""Checkpoint averaging: weight snapshots over the end of training, averaged into the model afterwards.

Averaging the weights of a few checkpoints taken near the end of training (as
in "Attention is all you need" and stochastic weight averaging) smooths out the
last steps' noise at no training cost. `WeightSnapshots` saves the weights
``count`` times, evenly over the last ``fraction`` of the optimizer steps (the
last snapshot at the very end), to files, so a run resumed after a kill keeps
the snapshots it had; `average_snapshots` then loads their mean into the model.

Example:
>>> snapshots = WeightSnapshots("/tmp/run/checkpoints/snapshots", total_steps=1000, count=4, fraction=0.25)
>>> snapshots.steps
[750, 833, 917, 1000]
"""

import logging
import os

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import tensorflow as tf
import tf_keras

logger = logging.getLogger(__name__)


class WeightSnapshots(tf_keras.callbacks.Callback):
    """Saves the model's weights at ``count`` optimizer steps spread over the last ``fraction`` of training.

    With ``steps_per_execution`` above 1, Keras reports progress every that
    many steps, so a snapshot is taken at the first report at or after its step.

    Args:
        directory: str. Folder of the snapshots (``step-<n>`` weight files).
        total_steps: int. Optimizer steps of the whole training.
        count: int. Snapshots, at least 1 (the last one at ``total_steps``).
        fraction: float in (0, 1]. Part of the training, at its end, that the snapshots span.
    """

    def __init__(self, directory, total_steps, count=4, fraction=0.25):
        super().__init__()
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
        self.directory = directory
        self.total_steps = int(total_steps)
        first = self.total_steps * (1 - fraction)
        spacing = (self.total_steps - first) / (count - 1) if count > 1 else 0.0
        self.steps = sorted({max(1, int(round(first + i * spacing))) for i in range(count)} | {self.total_steps})
        self.steps = self.steps[-count:]

    def path(self, step):
        return os.path.join(self.directory, f"step-{step}")

    def saved(self):
        """Paths of the snapshots written so far (by this run or a resumed earlier session)."""
        return [self.path(step) for step in self.steps if os.path.exists(self.path(step) + ".index")]

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        for target in self.steps:
            if step >= target and not os.path.exists(self.path(target) + ".index"):
                os.makedirs(self.directory, exist_ok=True)
                self.model.save_weights(self.path(target))
                logger.info("weight snapshot at step %d of %d: %s", step, self.total_steps, self.path(target))


def weight_snapshots(args, runtime, total_steps):
    """The `WeightSnapshots` callback a fit script's ``--average-snapshots``/``--average-fraction`` ask for.

    Args:
        args: the argument group holding ``average_snapshots`` and ``average_fraction``.
        runtime: tfnlp.training.Runtime. The snapshots go to its ``folder.snapshots_dir``.
        total_steps: int. Optimizer steps of the whole training.

    Returns:
        WeightSnapshots, or None when ``args.average_snapshots`` is 0.
    """
    if not args.average_snapshots:
        return None
    return WeightSnapshots(runtime.folder.snapshots_dir, total_steps, count=args.average_snapshots,
                           fraction=args.average_fraction)


def average_snapshots(model, paths):
    """Loads the mean of the weight snapshots ``paths`` into ``model`` (trainable and other weights alike).

    Args:
        model: tf_keras.Model. Built, with the snapshots' architecture.
        paths: list of str. Weight files written by `WeightSnapshots` (``model.save_weights``).

    Returns:
        int. The number of snapshots averaged.
    """
    if not paths:
        raise ValueError("no weight snapshots to average")
    total = None
    for path in paths:
        model.load_weights(path).expect_partial()
        values = [np.asarray(weight.numpy(), np.float64) for weight in model.weights]
        total = values if total is None else [t + v for t, v in zip(total, values)]
    for weight, value in zip(model.weights, total):
        if weight.dtype.is_floating:
            weight.assign(tf.cast(value / len(paths), weight.dtype))
    return len(paths)
