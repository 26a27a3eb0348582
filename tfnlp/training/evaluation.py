"""Evaluating a classifier on a dataset and writing the figures."""

import time

import numpy as np

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf

from tfnlp.training.metrics import classification_report


def predict_classes(model, dataset):
    """Runs ``model`` over a dataset of ``(inputs, label)`` batches; returns (labels, predicted ids, logits)."""
    labels, logits = [], []
    predict = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    for inputs, batch_labels in dataset:
        logits.append(tf.cast(predict(inputs), tf.float32).numpy())
        labels.append(batch_labels.numpy())
    logits = np.concatenate(logits)
    return np.concatenate(labels), logits.argmax(axis=-1), logits


def evaluate_classifier(model, dataset, class_names):
    """`classification_report` of ``model`` on a dataset of ``(inputs, label)`` batches."""
    labels, predictions, _ = predict_classes(model, dataset)
    return classification_report(labels, predictions, class_names)


def fit_and_evaluate(model, runtime, batches, *, epochs, num_train, class_names, restore_best=True):
    """The training loop every fit script runs: fit, restore the best epoch (or keep the last), evaluate.

    Fits on ``batches["train"]`` with the shared callbacks of ``runtime``
    (`tfnlp.training.Runtime.callbacks`: resume, best checkpoint, logs),
    validating on ``batches["validation"]``; restores the epoch with the best
    validation accuracy unless ``restore_best`` is false; then evaluates on
    ``batches["test"]`` and ``batches["validation"]``.

    Args:
        model: compiled tf_keras.Model.
        runtime: tfnlp.training.Runtime.
        batches: dict with ``train``, ``validation`` and ``test`` datasets of ``(inputs, label)`` batches.
        epochs: int. Training epochs (a resumed run continues from its last completed one).
        num_train: int. Training examples per epoch (for the throughput figure).
        class_names: list of str.
        restore_best: bool. Evaluate (and leave in ``model``) the epoch with the
            best validation accuracy; if false, the last epoch. With a small,
            noisy validation slice and a learning rate that decays to 0, the
            last epoch can be the better estimate. Defaults to `True`.

    Returns:
        (metrics, throughput): a dict with ``test`` (`classification_report`), ``validation_accuracy``,
        ``train_examples``, ``train_wall_seconds``, ``train_examples_per_second`` (median over epochs) and
        ``epochs_run_this_session`` and ``weights`` (``"best_validation_epoch"`` or ``"last_epoch"``); and the `tfnlp.training.Throughput` callback with per-epoch figures.
    """
    callbacks = runtime.callbacks(num_train)
    throughput = callbacks[0]
    start = time.perf_counter()
    model.fit(batches["train"], validation_data=batches["validation"], epochs=epochs, callbacks=callbacks,
              verbose=2)
    seconds = time.perf_counter() - start
    restored = restore_best and runtime.restore_best(model)
    metrics = {
        "test": evaluate_classifier(model, batches["test"], class_names),
        "validation_accuracy": evaluate_classifier(model, batches["validation"], class_names)["accuracy"],
        "train_examples": num_train,
        "train_wall_seconds": seconds,
        "train_examples_per_second": float(np.nanmedian(throughput.examples_per_second))
        if throughput.examples_per_second else None,
        "epochs_run_this_session": len(throughput.train_seconds),
        "weights": "best_validation_epoch" if restored else "last_epoch",
    }
    return metrics, throughput
