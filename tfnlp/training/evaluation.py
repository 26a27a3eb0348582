"""The shared training loop (resumable across kills at any stage), and evaluating a classifier."""

import csv
import json
import logging
import os
import shutil
import tempfile
import time

import numpy as np

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf
import tf_keras

from tfnlp.training import report
from tfnlp.training.metrics import classification_report
from tfnlp.training.runtime import EpochLog, EpochProgress, ResumeNotice, Throughput
from tfnlp.training.weight_averaging import average_snapshots
from tfnlp.utils import atomic_write_json

logger = logging.getLogger(__name__)


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


def fit_model(model, runtime, batches, *, epochs, num_train, restore_best=True, monitor="val_accuracy", mode="max",
              extra_callbacks=()):
    """The training loop every fit script runs: fit with the shared callbacks, then restore the best epoch.

    Fits on ``batches["train"]`` with the callbacks of ``runtime``
    (`tfnlp.training.Runtime.callbacks`: resume, best checkpoint, logs; one
    line per epoch and, inside long epochs, a progress line about every 30 s:
    `tfnlp.training.runtime.EpochProgress`), validating on ``batches["validation"]``; then loads the
    epoch with the best ``monitor`` unless ``restore_best`` is false (the last
    epoch stays). Evaluation is the caller's: `fit_and_evaluate` for classifiers.

    A run killed at any moment resumes when started again with the same output
    folder: mid-training from its last finished epoch (``resuming from epoch
    N``); after training (while testing or exporting), without training again:
    the final weights are saved to ``<output_dir>/checkpoints/final`` and
    ``<output_dir>/training_state.json`` says training finished before the
    backup is deleted. The state also adds up the wall time of every session.

    Args:
        model: compiled tf_keras.Model.
        runtime: tfnlp.training.Runtime.
        batches: dict with ``train`` and ``validation`` datasets of ``(inputs, label)`` batches.
        epochs: int. Training epochs (a resumed run continues from its last completed one).
        num_train: int. Training examples per epoch (for the throughput figure).
        restore_best: bool. Leave the epoch with the best ``monitor`` in ``model``; if false, the last epoch.
        monitor: str. The validation figure that picks the best epoch.
        mode: str. ``"max"`` or ``"min"`` for ``monitor``.
        extra_callbacks: sequence of tf_keras callbacks. The pipeline's own, run after the shared ones.

    Returns:
        (metrics, throughput): a dict with ``train_examples``; ``train_wall_seconds`` (all sessions of this
        training) and ``train_wall_seconds_this_session``; ``training_sessions``; ``train_examples_per_second``
        (median over the epochs); ``epochs_run_this_session``; ``resumed_from_epoch`` (0-based; 0 when it started
        afresh, ``epochs`` when it had finished); and ``weights`` (``"best_validation_epoch"`` or
        ``"last_epoch"``); ``plots`` (``{"curves": "curves.png"}``: the training curves drawn from history.csv
        beside metrics.json, by the chief; `tfnlp.training.report`); and the `tfnlp.training.Throughput` callback
        with the per-epoch figures.
    """
    state = _TrainingState(runtime)
    final = runtime.folder.final_weights
    if state.finished and os.path.exists(final + ".index"):
        state.warn_if_changed()
        model.load_weights(final).expect_partial()
        logger.info("training finished in an earlier session (%d epochs, %.0f s): skipped; its weights are in %s "
                    "(a new --output-dir trains again)", state.total_epochs, state.total_seconds, final)
        throughput = Throughput(num_train)
        throughput.train_seconds, throughput.examples_per_second = _history_throughput(runtime)
        metrics = {**state.metrics, "train_wall_seconds_this_session": 0.0, "epochs_run_this_session": 0,
                   "resumed_from_epoch": state.total_epochs}
    else:
        state.start_session(resuming=tf.train.latest_checkpoint(runtime.folder.chief_backup_dir) is not None)
        callbacks = runtime.callbacks(num_train, monitor=monitor, mode=mode, keep_backup=True,
                                      extra=[EpochProgress(num_train), EpochLog(), _SessionClock(state),
                                             *extra_callbacks])
        throughput = callbacks[0]
        resume = next(callback for callback in callbacks if isinstance(callback, ResumeNotice))
        start = time.perf_counter()
        # Multi-worker: each worker reads the same batches and trains on its share of each (one process's steps).
        model.fit(runtime.shard_by_data(batches["train"]), validation_data=runtime.shard_by_data(batches["validation"]),
                  epochs=epochs, callbacks=callbacks, verbose=0)
        state.end_session(time.perf_counter() - start, len(throughput.train_seconds))
        _, history_rates = _history_throughput(runtime)
        metrics = {
            "train_examples": num_train,
            "train_wall_seconds": state.total_seconds,
            "train_wall_seconds_this_session": state.session_seconds,
            "training_sessions": len(state.sessions),
            "train_examples_per_second": float(np.nanmedian(history_rates or throughput.examples_per_second))
            if (history_rates or throughput.examples_per_second) else None,
            "epochs_run_this_session": len(throughput.train_seconds),
            "resumed_from_epoch": resume.resumed_epoch,
        }
        _save_final_weights(model, runtime, final)
        state.finish(metrics)
        if runtime.is_chief:
            shutil.rmtree(runtime.folder.backup_dir, ignore_errors=True)
        runtime.barrier()  # Multi-worker: the chief's last checkpoint is written before anyone reads it.
    restored = restore_best and runtime.restore_best(model)
    metrics["weights"] = "best_validation_epoch" if restored else "last_epoch"
    if runtime.is_chief:  # The run report's curves (`tfnlp.training.report`), beside metrics.json.
        curves = report.write_curves(runtime.folder)
        if curves:
            metrics["plots"] = {"curves": curves}
    return metrics, throughput


class _TrainingState:
    """``<output_dir>/training_state.json``: the training's status, its sessions' wall time, its figures."""

    def __init__(self, runtime):
        self.runtime = runtime
        self.path = runtime.folder.state_file
        self.state = {}
        if os.path.exists(self.path):
            try:
                with open(self.path, encoding="utf-8") as f:
                    self.state = json.load(f)
            except ValueError:  # Written atomically, so only a hand-edited file gets here: start afresh.
                logger.warning("%s is not valid JSON; ignoring it", self.path)
        self.arguments = _arguments(runtime)
        self.session_seconds = 0.0

    @property
    def finished(self):
        return self.state.get("status") == "finished"

    @property
    def sessions(self):
        return self.state.setdefault("sessions", [])

    @property
    def total_seconds(self):
        return float(sum(session["seconds"] for session in self.sessions))

    @property
    def total_epochs(self):
        return int(sum(session["epochs"] for session in self.sessions))

    @property
    def metrics(self):
        return dict(self.state.get("metrics", {}))

    def start_session(self, resuming):
        if resuming:
            self.warn_if_changed()
        else:  # A new training: earlier sessions in this folder belong to another one.
            self.state = {}
        self.state.update(status="training", arguments=self.arguments)
        self.sessions.append({"seconds": 0.0, "epochs": 0})
        self.save()

    def epoch_done(self, seconds):
        self.sessions[-1]["seconds"] = seconds
        self.sessions[-1]["epochs"] += 1
        self.save()

    def end_session(self, seconds, epochs):
        self.session_seconds = seconds
        self.sessions[-1].update(seconds=seconds, epochs=epochs)

    def finish(self, metrics):
        self.state.update(status="finished", metrics=metrics)
        self.save()

    def save(self):
        if self.runtime.is_chief:
            atomic_write_json(self.path, self.state)

    def warn_if_changed(self):
        """Warns when the saved training was started with other options than this run's."""
        before = self.state.get("arguments")
        if not before or not self.arguments or before == self.arguments:
            return
        changes = [f"{section}.{key}: {before.get(section, {}).get(key)!r} -> {value!r}"
                   for section, values in self.arguments.items() for key, value in values.items()
                   if before.get(section, {}).get(key) != value]
        logger.warning("the training in %s was started with other options (%s); continuing it (a new --output-dir "
                       "trains with these options from the start)", self.runtime.folder.root,
                       "; ".join(changes) or "other sections")


def _arguments(runtime):
    """The run's options (its config.json without the environment), or None before `Runtime.write_config`."""
    config = getattr(runtime, "config", None)
    if not config:
        return None
    return json.loads(json.dumps({name: values for name, values in config.items() if name != "environment"},
                                 default=str))


class _SessionClock(tf_keras.callbacks.Callback):
    """Records this session's wall time in the training state at the end of each epoch (after its backup)."""

    def __init__(self, state):
        super().__init__()
        self.state = state

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.state.epoch_done(time.perf_counter() - self._start)


def _save_final_weights(model, runtime, final):
    """Saves the weights training ended with (every worker saves: the chief to ``final``, others to a temporary)."""
    if runtime.is_chief:
        model.save_weights(final)
        return
    scratch = tempfile.mkdtemp()
    try:
        model.save_weights(os.path.join(scratch, "final"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _history_throughput(runtime):
    """Per-epoch training seconds and examples per second of this training, from its history.csv (all sessions)."""
    path = runtime.worker_path(runtime.folder.history_file)
    if not os.path.exists(path):
        return [], []
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    start = max((i for i, row in enumerate(rows) if row.get("epoch") == "0"), default=0)
    rows = [row for row in rows[start:] if row.get("train_seconds") and row.get("examples_per_second")]
    return [float(row["train_seconds"]) for row in rows], [float(row["examples_per_second"]) for row in rows]


def fit_and_evaluate(model, runtime, batches, *, epochs, num_train, class_names, restore_best=True, snapshots=None):
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
        snapshots: `tfnlp.training.weight_averaging.WeightSnapshots` or None. Weight snapshots taken while
            training; their average replaces the epoch's weights if its validation accuracy is higher.

    Returns:
        (metrics, throughput): `fit_model`'s metrics plus ``test`` (`classification_report`) and
        ``validation_accuracy``, with ``plots["confusion_matrix"]``: the test confusion matrix drawn beside
        metrics.json (``confusion_matrix.png``, by the chief); and the `tfnlp.training.Throughput` callback.
        With ``snapshots``, also ``averaging``: the validation accuracy of the epoch's weights and of the
        average, and how many snapshots were averaged; ``weights`` is then ``"averaged_snapshots"`` if the
        average was kept.
    """
    fit_metrics, throughput = fit_model(model, runtime, batches, epochs=epochs, num_train=num_train,
                                        restore_best=restore_best, extra_callbacks=[snapshots] if snapshots else ())
    validation_accuracy = evaluate_classifier(model, batches["validation"], class_names)["accuracy"]
    if snapshots is not None:
        fit_metrics["averaging"], validation_accuracy = keep_better_average(
            model, snapshots, lambda averaged: evaluate_classifier(averaged, batches["validation"],
                                                                   class_names)["accuracy"], validation_accuracy)
        if fit_metrics["averaging"]["kept"]:
            fit_metrics["weights"] = "averaged_snapshots"
    metrics = {
        "test": evaluate_classifier(model, batches["test"], class_names),
        "validation_accuracy": validation_accuracy,
        **fit_metrics,
    }
    if runtime.is_chief:  # The counts of metrics["test"]["confusion_matrix"], drawn.
        metrics.setdefault("plots", {})["confusion_matrix"] = report.write_confusion_matrix(
            runtime.folder, metrics["test"])
    return metrics, throughput


def keep_better_average(model, snapshots, validation_score, epoch_score, *, metric="accuracy"):
    """Loads the snapshots' average into ``model`` and keeps it only if it scores higher on validation.

    The rule of every fit script's ``--average-snapshots`` (classifiers through `fit_and_evaluate`, NER through
    `tfnlp.tasks.conll_ner`): the weights in ``model`` when called (the best or the last epoch's) stay unless
    the average of the snapshots beats them on the validation figure; a tie keeps them.

    Args:
        model: tf_keras.Model. Holds the epoch's weights; left holding the better of them and the average.
        snapshots: `tfnlp.training.weight_averaging.WeightSnapshots`. The snapshots taken while training.
        validation_score: callable. ``model`` -> its validation figure (higher is better).
        epoch_score: float. ``validation_score`` of the weights in ``model`` now.
        metric: str. The figure's name, in the summary's keys and the log line (``"accuracy"``, ``"f1"``).

    Returns:
        (summary, the validation figure of the weights left in ``model``): the summary is a dict with
        ``snapshots`` (how many were averaged), ``validation_<metric>_averaged``, ``validation_<metric>_epoch``
        and ``kept`` (True if the average replaced the epoch's weights).

    Example (a classifier's rule, as `fit_and_evaluate` applies it):

        summary, accuracy = keep_better_average(
            model, snapshots, lambda m: evaluate_classifier(m, batches["validation"], class_names)["accuracy"],
            epoch_accuracy)
    """
    epoch_weights = model.get_weights()
    count = average_snapshots(model, snapshots.saved())
    averaged_score = validation_score(model)
    kept = averaged_score > epoch_score
    if not kept:
        model.set_weights(epoch_weights)
    logger.info("checkpoint averaging: %d snapshots, validation %s %.4f against %.4f for the epoch's weights: %s",
                count, metric, averaged_score, epoch_score, "the average is kept" if kept else "the epoch's kept")
    summary = {"snapshots": count, f"validation_{metric}_averaged": averaged_score,
               f"validation_{metric}_epoch": epoch_score, "kept": kept}
    return summary, max(averaged_score, epoch_score)
