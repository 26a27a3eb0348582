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


def fit_model(model, runtime, batches, *, epochs, num_train, restore_best=True, monitor="val_accuracy", mode="max"):
    """The training loop every fit script runs: fit with the shared callbacks, then restore the best epoch.

    Fits on ``batches["train"]`` with the callbacks of ``runtime``
    (`tfnlp.training.Runtime.callbacks`: resume, best checkpoint, logs),
    validating on ``batches["validation"]``; then loads the epoch with the best
    ``monitor`` unless ``restore_best`` is false (the last epoch stays).
    Evaluation is the caller's: `fit_and_evaluate` for classifiers.

    Args:
        model: compiled tf_keras.Model.
        runtime: tfnlp.training.Runtime.
        batches: dict with ``train`` and ``validation`` datasets of ``(inputs, label)`` batches.
        epochs: int. Training epochs (a resumed run continues from its last completed one).
        num_train: int. Training examples per epoch (for the throughput figure).
        restore_best: bool. Leave the epoch with the best ``monitor`` in ``model``; if false, the last epoch.
        monitor: str. The validation figure that picks the best epoch.
        mode: str. ``"max"`` or ``"min"`` for ``monitor``.

    Returns:
        (metrics, throughput): a dict with ``train_examples``, ``train_wall_seconds``,
        ``train_examples_per_second`` (median over epochs), ``epochs_run_this_session`` and ``weights``
        (``"best_validation_epoch"`` or ``"last_epoch"``); and the `tfnlp.training.Throughput` callback with
        per-epoch figures.
    """
    callbacks = runtime.callbacks(num_train, monitor=monitor, mode=mode)
    throughput = callbacks[0]
    start = time.perf_counter()
    model.fit(batches["train"], validation_data=batches["validation"], epochs=epochs, callbacks=callbacks,
              verbose=2)
    seconds = time.perf_counter() - start
    restored = restore_best and runtime.restore_best(model)
    metrics = {
        "train_examples": num_train,
        "train_wall_seconds": seconds,
        "train_examples_per_second": float(np.nanmedian(throughput.examples_per_second))
        if throughput.examples_per_second else None,
        "epochs_run_this_session": len(throughput.train_seconds),
        "weights": "best_validation_epoch" if restored else "last_epoch",
    }
    return metrics, throughput


def fit_and_evaluate(model, runtime, batches, *, epochs, num_train, class_names, restore_best=True):
    """`fit_model`, then the classifier's `classification_report` on test and its validation accuracy.

    Args:
        model: compiled tf_keras.Model (a classifier: logits ``[batch, classes]``).
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
        (metrics, throughput): `fit_model`'s metrics plus ``test`` (`classification_report`) and
        ``validation_accuracy``; and the `tfnlp.training.Throughput` callback.
    """
    fit_metrics, throughput = fit_model(model, runtime, batches, epochs=epochs, num_train=num_train,
                                        restore_best=restore_best)
    metrics = {
        "test": evaluate_classifier(model, batches["test"], class_names),
        "validation_accuracy": evaluate_classifier(model, batches["validation"], class_names)["accuracy"],
        **fit_metrics,
    }
    return metrics, throughput
