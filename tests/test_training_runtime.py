"""Tests of the shared fit-script runtime: typed arguments, strategies, precision, seeds, callbacks, resume,
the optimizer, the smoothed loss and the evaluation figures (tfnlp.training).

`make test`'s one real SIGKILL and resume is here (a fresh process killed after an epoch, resumed in another).
The multi-worker and mirrored strategies in fresh processes, and two whole pipeline runs compared, are in the
large tier (`make test-all`).
"""

import csv
import doctest
import dataclasses
import functools
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import types
from typing import Optional

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfnlp.training import Runtime, RuntimeArguments, Throughput, classification_report, create_strategy
from tfnlp.training import cli, evaluation as evaluation_module, field, losses, parse_arguments
from tfnlp.training import runtime as runtime_module
from tfnlp.training.evaluation import evaluate_classifier, fit_and_evaluate, fit_model, predict_classes
from tfnlp.training.losses import SparseCategoricalCrossentropyWithSmoothing
from tfnlp.training.optimization import create_optimizer
from tfnlp.training.runtime import EpochProgress
from tfnlp.training.weight_averaging import WeightSnapshots

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code, *args, env=None, timeout=240):
    """Runs ``code`` in a fresh interpreter that can import tfnlp; returns the CompletedProcess."""
    full_env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def read_history(output_dir):
    with open(os.path.join(output_dir, "history.csv"), newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(autouse=True)
def _float32_policy():
    """Runtime sets the process-global precision policy: leave float32 behind for the other tests."""
    yield
    tf_keras.mixed_precision.set_global_policy("float32")


# Arguments.

@dataclasses.dataclass
class DemoArguments:
    """Demo options."""

    epochs: int = field(3, "Number of epochs.")
    rate: float = field(0.5, "A rate.")
    limit: Optional[int] = field(None, "An optional limit.")
    fast: bool = field(False, "Go fast.")
    mode: str = field("a", "A mode.", choices=("a", "b"))

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError("--epochs must be at least 1")


def parse(argv):
    return parse_arguments("demo", DemoArguments, RuntimeArguments, argv=argv)


def test_parse_arguments_converts_types_and_keeps_defaults(tmp_path):
    demo, runtime_args = parse(["--epochs", "5", "--rate", "2", "--limit", "7", "--fast", "--mode", "b",
                                "--output-dir", str(tmp_path), "--mixed-precision", "--seed", "3"])
    assert demo == DemoArguments(epochs=5, rate=2.0, limit=7, fast=True, mode="b")
    assert (runtime_args.output_dir, runtime_args.mixed_precision, runtime_args.seed) == (str(tmp_path), True, 3)
    assert runtime_args.strategy == "default" and runtime_args.jit_compile is False
    assert parse(["--limit", "none", "--no-fast"])[0] == DemoArguments(limit=None, fast=False)


def test_help_lists_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--epochs", "--rate", "--limit", "--fast", "--mode", "--args-file", "--output-dir",
                   "--strategy", "--mixed-precision", "--jit-compile", "--seed"):
        assert option in out
    assert "(default: 3)" in out and "==SUPPRESS==" not in out


@pytest.mark.parametrize("argv, option", [
    (["--epochs", "three"], "--epochs"),
    (["--epochs", "0"], "--epochs"),
    (["--mode", "c"], "--mode"),
    (["--strategy", "gpu"], "--strategy"),
    (["--output-dir", ""], "--output-dir"),
    (["--steps-per-execution", "0"], "--steps-per-execution"),
    (["--no-such-option"], "--no-such-option"),
])
def test_invalid_values_are_one_line_errors_naming_the_option(capsys, argv, option):
    with pytest.raises(SystemExit) as exit_info:
        parse(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and option in err  # No usage block, no traceback.


def test_multi_worker_without_tf_config_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        parse(["--strategy", "multi_worker"])
    assert exit_info.value.code == 2 and "TF_CONFIG" in capsys.readouterr().err


def test_args_file_supplies_values_the_command_line_overrides(tmp_path):
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"epochs": 9, "rate": 1, "mode": "b", "fast": True, "limit": None, "seed": 5}))
    demo, runtime_args = parse(["--args-file", str(path), "--epochs", "2"])
    assert demo == DemoArguments(epochs=2, rate=1.0, limit=None, fast=True, mode="b")
    assert isinstance(demo.rate, float) and runtime_args.seed == 5


@pytest.mark.parametrize("content, message", [
    ('{"epochs": 2', "--args-file"),
    ('[1, 2]', "JSON object"),
    ('{"epoch": 2}', "unknown argument(s) epoch"),
    ('{"epochs": "2"}', "--epochs must be int"),
    ('{"epochs": 2.5}', "--epochs must be int"),
    ('{"fast": 1}', "--fast must be bool"),
    ('{"rate": true}', "--rate must be float"),
    ('{"epochs": null}', "--epochs must be int"),
    ('{"mode": "c"}', "--mode must be one of a, b"),
    ('{"epochs": 0}', "--epochs must be at least 1"),
])
def test_bad_args_file_is_a_usage_error(tmp_path, capsys, content, message):
    path = tmp_path / "args.json"
    path.write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        parse(["--args-file", str(path)])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_args_file_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse(["--args-file", str(tmp_path / "missing.json")])
    assert "missing.json" in capsys.readouterr().err


# Strategy, precision, seeds, configuration.

def test_default_strategy_and_unknown_strategy():
    assert create_strategy("default") is tf.distribute.get_strategy()
    with pytest.raises(ValueError, match="unknown strategy 'gpu'"):
        create_strategy("gpu")


def test_runtime_builds_models_in_its_strategy_scope(tmp_path):
    runtime = Runtime(RuntimeArguments(output_dir=str(tmp_path / "run")))
    with runtime.scope():
        model = tf_keras.Sequential([tf_keras.layers.Dense(2)])
    assert model.distribute_strategy is runtime.strategy
    assert runtime.num_replicas == 1 and runtime.is_chief
    assert os.path.isdir(tmp_path / "run")


def test_stage_shares_the_strategy_and_writes_to_a_subfolder(tmp_path):
    runtime = Runtime(RuntimeArguments(output_dir=str(tmp_path), seed=3, steps_per_execution=4))
    stage = runtime.stage("frozen")
    assert stage.strategy is runtime.strategy
    assert stage.args.output_dir == str(tmp_path / "frozen") and os.path.isdir(tmp_path / "frozen")
    assert (stage.args.seed, stage.args.steps_per_execution) == (3, 4)
    assert runtime.args.output_dir == str(tmp_path)  # The parent is unchanged.
    callbacks = stage.callbacks(10)
    backup = next(c for c in callbacks if isinstance(c, tf_keras.callbacks.BackupAndRestore))
    assert backup.backup_dir == str(tmp_path / "frozen" / "backup")


def test_mixed_precision_policy_is_set_and_reset_by_the_next_runtime(tmp_path):
    mixed = Runtime(RuntimeArguments(output_dir=str(tmp_path), mixed_precision=True))
    assert mixed.compute_dtype == "float16"
    assert tf_keras.mixed_precision.global_policy().name == "mixed_float16"
    plain = Runtime(RuntimeArguments(output_dir=str(tmp_path)))
    assert plain.compute_dtype == "float32"
    assert tf_keras.mixed_precision.global_policy().name == "float32"


def test_mixed_precision_on_tpu_computes_in_bfloat16(tmp_path, monkeypatch):
    requested = []
    monkeypatch.setattr(runtime_module, "create_strategy",  # No TPU here: record the request only.
                        lambda name, tpu, worker_timeout: requested.append((name, tpu)) or tf.distribute.get_strategy())
    runtime = Runtime(RuntimeArguments(output_dir=str(tmp_path), strategy="tpu", tpu="grpc://10.0.0.2:8470",
                                       mixed_precision=True))
    assert requested == [("tpu", "grpc://10.0.0.2:8470")]
    assert runtime.compute_dtype == "bfloat16"
    assert tf_keras.mixed_precision.global_policy().name == "mixed_bfloat16"


def test_write_config_echoes_sections_and_environment(tmp_path):
    runtime = Runtime(RuntimeArguments(output_dir=str(tmp_path), seed=11))
    config = runtime.write_config(demo=DemoArguments(epochs=4), runtime=runtime.args, extra={"note": "x"})
    with open(tmp_path / "config.json") as f:
        written = json.load(f)
    assert written == config
    assert written["demo"]["epochs"] == 4 and written["runtime"]["seed"] == 11 and written["extra"] == {"note": "x"}
    environment = written["environment"]
    assert environment["tensorflow"] == tf.__version__ and environment["tfnlp"] == tfnlp.__version__
    assert (environment["replicas"], environment["compute_dtype"]) == (1, "float32")


@pytest.mark.parametrize("task_type, task_id, cluster, chief", [
    ("chief", 0, {"chief": ["a:1"], "worker": ["b:1"]}, True),
    ("worker", 0, {"worker": ["a:1", "b:1"]}, True),
    ("worker", 1, {"worker": ["a:1", "b:1"]}, False),
    ("worker", 0, {"chief": ["a:1"], "worker": ["b:1"]}, False),
    ("evaluator", 0, {"worker": ["a:1"], "evaluator": ["c:1"]}, False),
])
def test_only_the_chief_writes_files(tmp_path, task_type, task_id, cluster, chief):
    runtime = Runtime(RuntimeArguments(output_dir=str(tmp_path)))
    resolver = types.SimpleNamespace(task_type=task_type, task_id=task_id,
                                     cluster_spec=lambda: tf.train.ClusterSpec(cluster))
    runtime.strategy = types.SimpleNamespace(cluster_resolver=resolver)
    assert runtime.is_chief is chief


def tiny_fit(output_dir, seed, epochs=2, **runtime_options):
    """Trains a tiny model with dropout and shuffling through `Runtime`; returns (runtime, model, history)."""
    runtime = Runtime(RuntimeArguments(output_dir=str(output_dir), seed=seed, **runtime_options))
    features = np.random.RandomState(0).normal(size=(40, 6)).astype("float32")
    labels = (features[:, 0] + features[:, 1] > 0).astype("int32")
    with runtime.scope():
        model = tf_keras.Sequential([tf_keras.layers.Dense(8, activation="relu"), tf_keras.layers.Dropout(0.3),
                                     tf_keras.layers.Dense(2)])
        model.compile(optimizer=create_optimizer(1e-2, 10 * epochs), metrics=["accuracy"],
                      loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(features[:32], labels[:32], validation_data=(features[32:], labels[32:]), batch_size=4,
                        epochs=epochs, shuffle=True, verbose=0, callbacks=runtime.callbacks(32))
    return runtime, model, history


def test_same_seed_repeats_a_run_and_another_seed_does_not(tmp_path):
    _, first, first_history = tiny_fit(tmp_path / "a", seed=5)
    _, second, second_history = tiny_fit(tmp_path / "b", seed=5)
    _, other, _ = tiny_fit(tmp_path / "c", seed=6)
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert first_history.history["loss"] == second_history.history["loss"]
    assert not np.array_equal(first.get_weights()[0], other.get_weights()[0])


def test_callbacks_write_history_checkpoints_and_tensorboard_logs(tmp_path):
    runtime, model, history = tiny_fit(tmp_path, seed=1)
    rows = read_history(tmp_path)
    assert [row["epoch"] for row in rows] == ["0", "1"]
    for row in rows:  # Throughput's figures reach the CSV log, not only the History.
        assert float(row["examples_per_second"]) > 0 and float(row["train_seconds"]) > 0
    assert len(history.history["examples_per_second"]) == 2
    assert os.path.exists(tmp_path / "checkpoints" / "best.index")
    for split in ("train", "validation"):
        assert any(name.startswith("events.out.tfevents") for name in os.listdir(tmp_path / "logs" / split))
    assert not os.path.exists(tmp_path / "backup" / "chief")  # Removed once training completes.
    fresh = tf_keras.models.clone_model(model)
    fresh.build((None, 6))
    initial = fresh.get_weights()[0].copy()
    assert runtime.restore_best(fresh)
    assert not np.array_equal(fresh.get_weights()[0], initial)


@pytest.mark.parametrize("restore_best", [True, False], ids=["best_epoch", "last_epoch"])
def test_fit_and_evaluate_tests_the_best_or_the_last_epoch(tmp_path, restore_best):
    """Validation labels are the training labels flipped, so validation accuracy is best early, never last."""
    runtime = Runtime(RuntimeArguments(output_dir=str(tmp_path), seed=3, steps_per_execution=1))
    features = np.random.RandomState(0).normal(size=(48, 6)).astype("float32")
    labels = (features[:, 0] + features[:, 1] > 0).astype("int32")
    batches = {"train": tf.data.Dataset.from_tensor_slices((features[:32], labels[:32])).batch(8),
               "validation": tf.data.Dataset.from_tensor_slices((features[32:], 1 - labels[32:])).batch(8),
               "test": tf.data.Dataset.from_tensor_slices((features[32:], labels[32:])).batch(8)}
    with runtime.scope():
        model = tf_keras.Sequential([tf_keras.Input((6,)), tf_keras.layers.Dense(2)])
        model.compile(optimizer=create_optimizer(5e-2, 4 * 6), metrics=["accuracy"],
                      loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    metrics, throughput = fit_and_evaluate(model, runtime, batches, epochs=6, num_train=32, class_names=["a", "b"],
                                           restore_best=restore_best)
    assert metrics["weights"] == ("best_validation_epoch" if restore_best else "last_epoch")
    assert len(throughput.train_seconds) == 6
    best = tf_keras.models.clone_model(model)
    assert runtime.restore_best(best)
    same_as_best = all(np.array_equal(a, b) for a, b in zip(model.get_weights(), best.get_weights()))
    assert same_as_best is restore_best
    # The figures are those of the weights left in the model.
    assert metrics["test"]["accuracy"] == evaluate_classifier(model, batches["test"], ["a", "b"])["accuracy"]
    assert metrics["validation_accuracy"] == pytest.approx(1 - metrics["test"]["accuracy"])


class PreparedSnapshots(WeightSnapshots):
    """Weight snapshots written before training (the callback takes none), to control what the average is."""

    def __init__(self, paths):
        super().__init__(os.path.dirname(paths[0]), total_steps=1, count=1)
        self.paths = paths

    def on_train_batch_end(self, batch, logs=None):
        pass

    def saved(self):
        return self.paths


@pytest.mark.parametrize("snapshot_sign", [1.0, -1.0], ids=["better_average_kept", "worse_average_dropped"])
def test_fit_and_evaluate_keeps_the_snapshot_average_only_if_it_beats_the_epoch_on_validation(tmp_path,
                                                                                              snapshot_sign):
    """The label is ``x0 + x1 > 0``; the snapshots are the exact rule (kept) or its negation (dropped)."""
    runtime = Runtime(RuntimeArguments(output_dir=str(tmp_path / "run"), seed=5, steps_per_execution=1))
    features = np.random.RandomState(1).normal(size=(64, 6)).astype("float32")
    labels = (features[:, 0] + features[:, 1] > 0).astype("int32")
    batches = {"train": tf.data.Dataset.from_tensor_slices((features[:32], labels[:32])).batch(8),
               "validation": tf.data.Dataset.from_tensor_slices((features[32:48], labels[32:48])).batch(8),
               "test": tf.data.Dataset.from_tensor_slices((features[48:], labels[48:])).batch(8)}
    with runtime.scope():
        model = tf_keras.Sequential([tf_keras.Input((6,)), tf_keras.layers.Dense(2)])
        model.compile(optimizer=create_optimizer(1e-6, 4), metrics=["accuracy"],
                      loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rule = np.zeros((6, 2), np.float32)
    rule[:2] = [[-1.0, 1.0], [-1.0, 1.0]]
    paths = []
    for scale in (1.0, 3.0):  # Two snapshots of the same direction: their mean scores as either.
        snapshot = tf_keras.models.clone_model(model)
        snapshot.set_weights([snapshot_sign * scale * rule, np.zeros(2, np.float32)])
        paths.append(str(tmp_path / f"snapshot-{scale}"))
        snapshot.save_weights(paths[-1])
    metrics, _ = fit_and_evaluate(model, runtime, batches, epochs=1, num_train=32, class_names=["a", "b"],
                                  snapshots=PreparedSnapshots(paths))
    averaging = metrics["averaging"]
    assert 0 < averaging["validation_accuracy_epoch"] < 1  # The trained weights are neither the rule nor its negation.
    assert averaging["snapshots"] == 2
    assert averaging["validation_accuracy_averaged"] == (1.0 if snapshot_sign > 0 else 0.0)
    assert averaging["kept"] is (snapshot_sign > 0)
    assert metrics["weights"] == ("averaged_snapshots" if snapshot_sign > 0 else "best_validation_epoch")
    if snapshot_sign > 0:
        np.testing.assert_allclose(model.get_weights()[0], 2.0 * rule)
        assert metrics["test"]["accuracy"] == metrics["validation_accuracy"] == 1.0
    else:
        best = tf_keras.models.clone_model(model)
        assert runtime.restore_best(best)
        for kept, restored in zip(model.get_weights(), best.get_weights()):
            np.testing.assert_array_equal(kept, restored)
        assert metrics["validation_accuracy"] == averaging["validation_accuracy_epoch"]


class Interrupt(tf_keras.callbacks.Callback):
    """Stops training at the end of an epoch (after its backup), as Ctrl-C would."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt(f"interrupted after epoch {epoch}")


def fit_model_session(output_dir, epochs=3, extra=()):
    """One session of `fit_model` on a tiny classifier (a fresh process would build the same model)."""
    runtime = Runtime(RuntimeArguments(output_dir=str(output_dir), seed=4, steps_per_execution=1))
    runtime.write_config(training={"epochs": epochs})
    features = np.random.RandomState(0).normal(size=(40, 6)).astype("float32")
    labels = (features[:, 0] + features[:, 1] > 0).astype("int32")
    batches = {"train": tf.data.Dataset.from_tensor_slices((features[:32], labels[:32])).batch(8),
               "validation": tf.data.Dataset.from_tensor_slices((features[32:], labels[32:])).batch(8)}
    with runtime.scope():
        model = tf_keras.Sequential([tf_keras.Input((6,)), tf_keras.layers.Dense(2)])
        model.compile(optimizer=create_optimizer(5e-2, 4 * epochs), metrics=["accuracy"],
                      loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callbacks = Runtime.callbacks
    try:
        Runtime.callbacks = lambda self, *args, **kwargs: callbacks(self, *args, **kwargs) + list(extra)
        metrics, _ = fit_model(model, runtime, batches, epochs=epochs, num_train=32, restore_best=False)
    finally:
        Runtime.callbacks = callbacks
    return metrics, model


def test_fit_model_resumes_then_skips_finished_training_and_adds_up_session_times(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    with pytest.raises(KeyboardInterrupt):
        fit_model_session(tmp_path, extra=[Interrupt(0)])
    state = json.loads((tmp_path / "training_state.json").read_text())
    assert state["status"] == "training" and [s["epochs"] for s in state["sessions"]] == [1]
    first_session = state["sessions"][0]["seconds"]

    resumed, model = fit_model_session(tmp_path)
    assert "resuming from epoch 2 of 3 (1 finished in an earlier session" in caplog.text
    assert [row["epoch"] for row in read_history(tmp_path)] == ["0", "1", "2"]
    assert resumed["resumed_from_epoch"] == 1 and resumed["epochs_run_this_session"] == 2
    assert resumed["training_sessions"] == 2
    assert resumed["train_wall_seconds"] == pytest.approx(first_session + resumed["train_wall_seconds_this_session"])
    assert os.path.exists(tmp_path / "checkpoints" / "final.index") and not os.path.exists(tmp_path / "backup")
    caplog.clear()

    again, reloaded = fit_model_session(tmp_path)  # As after a kill while testing or exporting.
    assert "training finished in an earlier session (3 epochs" in caplog.text and "resuming" not in caplog.text
    assert [row["epoch"] for row in read_history(tmp_path)] == ["0", "1", "2"]  # Not trained again.
    assert again["epochs_run_this_session"] == 0 and again["train_wall_seconds_this_session"] == 0.0
    assert again["resumed_from_epoch"] == 3 and again["training_sessions"] == 2
    assert again["train_wall_seconds"] == resumed["train_wall_seconds"]
    assert again["train_examples_per_second"] == resumed["train_examples_per_second"]
    for a, b in zip(model.get_weights(), reloaded.get_weights()):  # The weights training ended with.
        np.testing.assert_array_equal(a, b)


def test_fit_model_warns_when_resuming_a_training_started_with_other_options(tmp_path, caplog):
    with pytest.raises(KeyboardInterrupt):
        fit_model_session(tmp_path, epochs=3, extra=[Interrupt(0)])
    with caplog.at_level(logging.WARNING):
        fit_model_session(tmp_path, epochs=2)
    assert "was started with other options (training.epochs: 3 -> 2)" in caplog.text


def test_callbacks_list_and_early_stopping(tmp_path):
    runtime = Runtime(RuntimeArguments(output_dir=str(tmp_path)))
    marker = tf_keras.callbacks.Callback()
    callbacks = runtime.callbacks(10, early_stopping_patience=2, extra=[marker])
    names = [type(c).__name__ for c in callbacks]
    assert names == ["Throughput", "BackupAndRestore", "ModelCheckpoint", "TensorBoard", "CSVLogger",
                     "ResumeNotice", "EarlyStopping", "Callback"]
    assert callbacks[-1] is marker and callbacks[6].patience == 2
    assert "EarlyStopping" not in [type(c).__name__ for c in runtime.callbacks(10)]
    assert not runtime.restore_best(tf_keras.Sequential([tf_keras.layers.Dense(1)]))


def test_resumed_run_keeps_its_best_checkpoint_threshold(tmp_path):
    runtime = Runtime(RuntimeArguments(output_dir=str(tmp_path)))
    with open(tmp_path / "history.csv", "w") as f:  # An earlier finished run, then the interrupted one.
        f.write("epoch,loss,val_accuracy\n0,1.0,0.9\n1,0.9,0.95\n0,1.2,0.4\n1,1.1,0.7\n2,1.0,0.6\n")
    checkpoint = runtime.callbacks(10)[2]
    assert checkpoint.best == -np.inf  # No backup: a fresh start.
    tf.train.Checkpoint(step=tf.Variable(1)).save(str(tmp_path / "backup" / "chief" / "ckpt"))
    assert runtime.callbacks(10)[2].best == 0.7
    assert runtime.callbacks(10, monitor="loss", mode="min")[2].best == 1.0


def test_throughput_times_training_only(monkeypatch):
    clock = iter([10.0, 12.0, 100.0, 104.0])
    monkeypatch.setattr(runtime_module.time, "perf_counter", lambda: next(clock))
    throughput = Throughput(examples_per_epoch=50)
    logs = {}
    throughput.on_epoch_begin(0)
    throughput.on_test_begin()      # Validation starts at 12: training took 2 s.
    throughput.on_test_begin()      # A second evaluation does not move the mark.
    throughput.on_epoch_end(0, logs)
    assert logs == {"train_seconds": 2.0, "examples_per_second": 25.0}
    throughput.on_epoch_begin(1)    # No validation: the whole epoch counts.
    throughput.on_epoch_end(1, None)
    assert throughput.train_seconds == [2.0, 4.0] and throughput.examples_per_second == [25.0, 12.5]
    with pytest.raises(ValueError, match="examples_per_epoch"):
        Throughput(0)


# Progress inside epochs.

class LossRecorder(tf_keras.callbacks.Callback):
    """The running loss Keras reports at each training call, by batches done."""

    def __init__(self):
        super().__init__()
        self.losses = {}

    def on_train_batch_end(self, batch, logs=None):
        self.losses[batch + 1] = float(logs["loss"])


PROGRESS_LINE = re.compile(r"epoch (\d)/2: batch (\d+)(?:/(~?)(\d+) \((\d+)%\))?(?:, ([\d,.]+) (examples|batches)/s)?, "
                           r"loss (\d+\.\d{4})(?:, about (\d+) s left|, (\d+) s so far, tracing the model included)?$")
VALIDATION_LINE = re.compile(r"epoch (\d)/2: validation batch (\d+)(?:/~(\d+) \(\d+%\))?, \d+ s(?:, about \d+ s left)?$")


def progress_fit(train, validation, steps_per_execution):
    """Two epochs of a tiny model with a progress line at every call (interval 0); returns the lines, the losses."""
    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential([tf_keras.Input((6,)), tf_keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=steps_per_execution)
    progress, recorder = EpochProgress(examples_per_epoch=40, interval=0.0), LossRecorder()
    model.fit(train, validation_data=validation, epochs=2, verbose=0, callbacks=[progress, recorder])
    return progress.lines, recorder.losses


def parse_progress(lines, losses):
    """(epoch, done, total or None, estimated, unit, time left or "tracing") per training line; checks the loss."""
    parsed = []
    for line in lines:
        match = PROGRESS_LINE.match(line)
        if match is None:
            assert VALIDATION_LINE.match(line), line
            continue
        epoch, done, tilde, total, percent, rate, unit, loss, left, so_far = match.groups()
        done = int(done)
        assert (rate is None) is (so_far is not None)  # No rate from the call that traced the model alone.
        assert rate is None or float(rate.replace(",", "")) > 0
        if total:
            assert int(percent) == round(100 * done / int(total))
        if int(epoch) == 2:  # The loss shown is the running loss Keras reported at that call.
            assert float(loss) == pytest.approx(losses[done], abs=5e-5)
        parsed.append((int(epoch), done, int(total) if total else None, tilde == "~", unit,
                       "tracing" if so_far else left is not None))
    return parsed


def progress_data():
    features = np.random.RandomState(0).normal(size=(52, 6)).astype("float32")
    labels = (features[:, 0] > 0).astype("int32")
    return (tf.data.Dataset.from_tensor_slices((features[:40], labels[:40])).batch(4),  # 10 batches.
            tf.data.Dataset.from_tensor_slices((features[40:], labels[40:])).batch(4))  # 3 batches.


def test_epoch_progress_counts_executions_of_several_steps():
    train, validation = progress_data()
    lines, losses = progress_fit(train, validation, steps_per_execution=2)
    # One line per call of 2 steps, none at the last batch (the epoch line follows); examples/s from 40/10 batches;
    # after the first call, which traced the model, the time so far instead.
    assert parse_progress(lines, losses) == [(1, 2, 10, False, None, "tracing")] + [
        (epoch, done, 10, False, "examples", True) for epoch in (1, 2) for done in (2, 4, 6, 8)][1:]
    validation_lines = [line for line in lines if "validation" in line]
    # Validation's total comes from the validation before: none in the first epoch, ~3 in the second.
    assert [VALIDATION_LINE.match(line).groups() for line in validation_lines] == [
        ("1", "2", None), ("1", "3", None), ("2", "2", "3")]
    assert validation_lines[-1].endswith(" s left")


def test_epoch_progress_without_a_known_number_of_batches_uses_the_epoch_before():
    train, validation = progress_data()
    train = train.filter(lambda features, label: True)  # Cardinality unknown to Keras.
    assert train.cardinality() == tf.data.UNKNOWN_CARDINALITY
    lines, losses = progress_fit(train, validation, steps_per_execution=1)
    parsed = parse_progress(lines, losses)
    # First epoch: a count, batches/s, no time left (no total); second: ~10 from the first, examples/s, time left
    # (from its first call on: only the first epoch's first call traces the model).
    assert parsed == ([(1, 1, None, False, None, "tracing")]
                      + [(1, done, None, False, "batches", False) for done in range(2, 11)]
                      + [(2, done, 10, True, "examples", True) for done in range(1, 10)])


def test_epoch_progress_lines_follow_the_interval_and_measure_from_the_first_call(monkeypatch):
    clock = iter([0.0, 10.0, 20.0, 30.0, 45.0, 61.0])  # Epoch start, then the end of each call.
    monkeypatch.setattr(runtime_module.time, "perf_counter", lambda: next(clock))
    progress = EpochProgress(examples_per_epoch=500, interval=30.0)
    progress.set_params({"epochs": 3, "steps": 50})
    progress.on_epoch_begin(1)
    for done in (2, 6, 10, 16, 22):  # The first call (tracing) ends at 10 s with 2 batches done.
        progress.on_train_batch_end(done - 1, {"loss": tf.constant(0.25)})
    # 30 s: (10 - 2) batches in 20 s = 0.4 batches/s, 10 examples a batch, 40 batches left = 100 s.
    # 45 s: too soon after the line at 30 s. 61 s: 20 batches in 51 s, 28 left.
    assert progress.lines == ["epoch 2/3: batch 10/50 (20%), 4 examples/s, loss 0.2500, about 1 min 40 s left",
                              "epoch 2/3: batch 22/50 (44%), 4 examples/s, loss 0.2500, about 1 min 11 s left"]
    with pytest.raises(ValueError, match="interval"):
        EpochProgress(interval=-1)


@pytest.mark.parametrize("level", ["default", "quiet"])
def test_fit_model_prints_progress_lines_unless_quiet(tmp_path, monkeypatch, capsys, level):
    monkeypatch.setattr(evaluation_module, "EpochProgress", functools.partial(EpochProgress, interval=0.0))
    cli.configure_output(level)
    try:
        fit_model_session(tmp_path, epochs=2)
    finally:
        cli.configure_output("default")
    shown = [line.split(" ", 1)[1] for line in capsys.readouterr().err.splitlines()]  # Without the time.
    progress = [line for line in shown if ": batch " in line]
    if level == "quiet":
        assert progress == [] and not any(line.startswith("epoch ") for line in shown)
    else:  # 32 examples in 4 batches: lines after batches 1-3 of each epoch, before its epoch line.
        assert [line.split(",")[0] for line in progress] == [f"epoch {epoch}/2: batch {done}/4 ({25 * done}%)"
                                                              for epoch in (1, 2) for done in (1, 2, 3)]
        epoch_line = next(i for i, line in enumerate(shown) if line.startswith("epoch 1/2: loss"))
        assert shown.index(progress[2]) < epoch_line < shown.index(progress[3])


# Steps per execution.

def test_steps_per_execution_must_be_at_least_one(tmp_path):
    with pytest.raises(ValueError, match="--steps-per-execution must be at least 1"):
        RuntimeArguments(output_dir=str(tmp_path), steps_per_execution=0)
    assert RuntimeArguments(output_dir=str(tmp_path), steps_per_execution=1).steps_per_execution == 1


class BatchEnds(tf_keras.callbacks.Callback):
    """Records the step index Keras reports at the end of each call into the training graph."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(batch)


def test_compile_options_carry_xla_and_steps_per_execution_to_keras(tmp_path):
    assert Runtime(RuntimeArguments(output_dir=str(tmp_path))).compile_options() == {
        "jit_compile": False, "steps_per_execution": 32}
    runtime = Runtime(RuntimeArguments(output_dir=str(tmp_path), jit_compile=True, steps_per_execution=4))
    assert runtime.compile_options() == {"jit_compile": True, "steps_per_execution": 4}
    with runtime.scope():
        model = tf_keras.Sequential([tf_keras.layers.Dense(2)])
        model.compile("sgd", tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      **runtime.compile_options())
    batch_ends = BatchEnds()
    model.fit(np.ones((40, 3), "float32"), np.zeros(40, "int32"), batch_size=4, verbose=0, callbacks=[batch_ends])
    assert model.jit_compile is True
    assert batch_ends.steps == [3, 7, 9]  # 10 steps run 4, 4, then the 2 left, each in one call.
    assert int(model.optimizer.iterations) == 10


class StepsTaken(tf_keras.callbacks.Callback):
    """Records the optimizer's step count when training ends (before the best weights are restored)."""

    def on_train_end(self, logs=None):
        self.steps = int(self.model.optimizer.iterations)


def write_tiny_ag_news(root):
    """An ag_news folder of 32 training and 8 test rows of 5 to 23 words, each class with its own words."""
    words = ["minister election", "striker goal", "stocks profit", "software chip"]
    os.makedirs(root / "ag_news")
    for name, count in (("train.csv", 32), ("test.csv", 8)):
        lines = [f'"{i % 4 + 1}","Report {i}","{words[i % 4]} today, {"officials said again " * (i % 7)}"'
                 for i in range(count)]
        (root / "ag_news" / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "ag_news" / "classes.txt").write_text("World\nSports\nBusiness\nSci/Tech\n", encoding="utf-8")
    return root


@pytest.mark.large  # Two whole pipeline runs; steps_per_execution itself is tested above and in test_batching.py.
def test_pipeline_trains_the_same_with_one_or_the_default_steps_per_execution(tmp_path, monkeypatch):
    from pipelines import agnews_transformer as pipeline
    from tfnlp.tasks import agnews_transformer as recipe  # Where the fit script's optimizer is built.

    schedules, steps_taken = [], StepsTaken()
    make_optimizer, callbacks = recipe.create_optimizer, Runtime.callbacks
    monkeypatch.setattr(recipe, "create_optimizer",
                        lambda rate, steps, **kw: schedules.append(steps) or make_optimizer(rate, steps, **kw))
    monkeypatch.setattr(Runtime, "callbacks", lambda self, n, **kw: callbacks(
        self, n, **{**kw, "extra": [*kw.get("extra", ()), steps_taken]}))
    data_root = write_tiny_ag_news(tmp_path / "data")
    tiny = ["--data-dir", str(data_root), "--export-dir", "", "--tokenizer", "text_vectorization",
            "--no-pretrained-embeddings", "--embedding-dim", "8", "--num-heads", "2", "--intermediate-dim", "8",
            "--sequence-length", "32", "--epochs", "2", "--batch-size", "4", "--validation-size", "8"]
    runs = {}
    for name, extra in (("one", ["--steps-per-execution", "1"]), ("default", [])):
        runs[name] = pipeline.main(tiny + ["--output-dir", str(tmp_path / name), *extra])
        config = json.loads((tmp_path / name / "config.json").read_text())
        assert config["runtime"]["steps_per_execution"] == (1 if name == "one" else 32)
        history = read_history(tmp_path / name)
        assert [row["epoch"] for row in history] == ["0", "1"]
        runs[name]["history"] = [(float(row["loss"]), float(row["val_loss"])) for row in history]
        # The learning-rate schedule spans exactly the steps taken (length buckets add partial batches).
        assert steps_taken.steps == schedules[-1] > 2 * 24 // 4
    assert runs["one"]["train_examples"] == runs["default"]["train_examples"] == 24
    np.testing.assert_allclose(runs["default"]["history"], runs["one"]["history"], rtol=1e-5)
    assert runs["default"]["test"]["confusion_matrix"] == runs["one"]["test"]["confusion_matrix"]


# Resume after a kill, and the distribution strategies, in fresh processes.

RESUMABLE_RUN = """
    import os, signal, sys
    import tfnlp
    import numpy as np
    import tf_keras
    from tfnlp.training import Runtime, RuntimeArguments

    output_dir, kill_after_epoch = sys.argv[1], int(sys.argv[2])
    runtime = Runtime(RuntimeArguments(output_dir=output_dir, seed=3))
    features = np.random.RandomState(0).normal(size=(32, 4)).astype("float32")
    labels = (features.sum(axis=1) > 0).astype("int32")
    with runtime.scope():
        model = tf_keras.Sequential([tf_keras.layers.Dense(2)])
        model.compile("sgd", tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])

    class KillAfter(tf_keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            with open(os.path.join(output_dir, "epochs_begun.txt"), "a") as f:
                f.write(f"{epoch}\\n")

        def on_epoch_end(self, epoch, logs=None):
            if epoch == kill_after_epoch:
                os.kill(os.getpid(), signal.SIGKILL)  # No clean-up of any kind, as a crash or an OOM kill.

    model.fit(features[:24], labels[:24], validation_data=(features[24:], labels[24:]), batch_size=8, epochs=5,
              verbose=0, callbacks=runtime.callbacks(24, extra=[KillAfter()]))
    print("optimizer steps", int(model.optimizer.iterations))
"""


@pytest.mark.slow
def test_run_killed_mid_training_resumes_from_its_last_epoch(tmp_path):
    output_dir = tmp_path / "run"
    killed = run_python(RESUMABLE_RUN, output_dir, 2)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert [row["epoch"] for row in read_history(output_dir)] == ["0", "1", "2"]
    assert os.listdir(output_dir / "backup" / "chief")

    resumed = run_python(RESUMABLE_RUN, output_dir, -1)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [row["epoch"] for row in read_history(output_dir)] == ["0", "1", "2", "3", "4"]
    assert (output_dir / "epochs_begun.txt").read_text().split() == ["0", "1", "2", "3", "4"]
    assert "optimizer steps 15" in resumed.stdout  # 5 epochs x 3 steps: the optimizer state was restored too.
    assert not os.path.exists(output_dir / "backup" / "chief")


@pytest.mark.large
def test_multi_worker_strategy_reads_tf_config(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tf_config = {"cluster": {"worker": [f"127.0.0.1:{port}"]}, "task": {"type": "worker", "index": 0}}
    result = run_python("""
        import sys
        import tfnlp
        import numpy as np
        import tensorflow as tf
        import tf_keras
        from tfnlp.training import Runtime, RuntimeArguments

        runtime = Runtime(RuntimeArguments(output_dir=sys.argv[1], strategy="multi_worker"))
        assert isinstance(runtime.strategy, tf.distribute.MultiWorkerMirroredStrategy), runtime.strategy
        assert runtime.num_replicas == 1 and runtime.is_chief
        with runtime.scope():
            model = tf_keras.Sequential([tf_keras.layers.Dense(2)])
            model.compile("sgd", tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit(np.ones((8, 3), "float32"), np.zeros(8, "int32"), batch_size=4, verbose=0)
        assert np.isfinite(history.history["loss"]).all()
        print("multi-worker ok")
    """, tmp_path, env={"TF_CONFIG": json.dumps(tf_config)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "multi-worker ok" in result.stdout


@pytest.mark.large
def test_mirrored_steps_per_execution_with_embedding_gradients_of_changing_length():
    result = run_python("""
        import tfnlp
        import numpy as np
        import tensorflow as tf
        import tf_keras

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from tfnlp.data.batching import batch_by_length, with_known_cardinality
        from tfnlp.training import create_strategy
        from tfnlp.training.optimization import create_optimizer

        lengths = [1, 2, 3, 3, 6, 7, 8, 9, 12, 14, 17, 20]
        rows = tf.ragged.constant([[i % 9 + 1] * n for i, n in enumerate(lengths)], dtype=tf.int32)
        examples = tf.data.Dataset.from_tensor_slices((rows, tf.range(12) % 2)).map(lambda ids, y: (ids, y))
        # Three batches of 4 whose widths (3, 9, 20) differ: the embedding gradient changes shape every step.
        batches = with_known_cardinality(batch_by_length(examples, 4, boundaries=(4, 10)))

        def train(strategy, steps_per_execution):
            tf_keras.utils.set_random_seed(0)
            with strategy.scope():
                model = tf_keras.Sequential([tf_keras.layers.Embedding(10, 4, mask_zero=True),
                                             tf_keras.layers.GlobalAveragePooling1D(), tf_keras.layers.Dense(2)])
                model.compile(create_optimizer(1e-2, 6), steps_per_execution=steps_per_execution,
                              loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            model.fit(batches, epochs=2, verbose=0)
            return model.get_weights()

        mirrored = create_strategy("mirrored")
        assert mirrored.num_replicas_in_sync == 2
        for weight, reference in zip(train(mirrored, 3), train(tf.distribute.get_strategy(), 1)):
            np.testing.assert_allclose(weight, reference, rtol=1e-4, atol=1e-6)
        print("mirrored ok")
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mirrored ok" in result.stdout


# The optimizer, the loss and the evaluation figures.

def test_optimizer_warms_up_then_decays_and_skips_decay_on_norms_and_biases():
    optimizer = create_optimizer(1e-3, 100, warmup_ratio=0.1, weight_decay=0.05, end_learning_rate=1e-5)
    schedule = optimizer.learning_rate
    rates = [float(schedule(step)) for step in (0, 5, 10, 50, 100)]
    assert rates[0] == 0.0 and rates[1] == pytest.approx(5e-4)
    assert rates[1] < rates[2] and rates[2] > rates[3] > rates[4]
    assert rates[4] == pytest.approx(1e-5)
    assert optimizer.weight_decay_rate == 0.05
    assert optimizer._do_use_weight_decay("block/dense/kernel:0")
    for name in ("block/dense/bias:0", "block/layer_norm/gamma:0", "bert/LayerNorm/beta:0"):
        assert not optimizer._do_use_weight_decay(name)


IMPLEMENTATIONS = ["official", "transformers"]


def lazy_and_dense_steps(rows, steps=3, weight_decay=0.05, name="table", implementation="official"):
    """The same embedding table after ``steps`` AdamW steps on the loss sum(table[rows]**2), dense and lazy."""
    results = []
    for lazy in (False, True):
        table = tf.Variable(np.random.RandomState(0).normal(size=(6, 3)).astype("float32"), name=name)
        optimizer = create_optimizer(0.1, 100, warmup_ratio=0.0, weight_decay=weight_decay, lazy_sparse_updates=lazy,
                                     implementation=implementation)
        for _ in range(steps):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.gather(table, rows) ** 2)
            gradient = tape.gradient(loss, table)
            assert isinstance(gradient, tf.IndexedSlices)
            optimizer.apply_gradients([(gradient, table)])
        results.append((optimizer, table))
    return results


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_lazy_optimizer_matches_adamw_when_every_row_is_used(implementation):
    (dense_optimizer, dense), (lazy_optimizer, lazy) = lazy_and_dense_steps([0, 1, 2, 3, 4, 5, 1],
                                                                            implementation=implementation)
    assert type(dense_optimizer).__name__ == "AdamWeightDecay"
    assert type(lazy_optimizer).__name__ == {"official": "LazyAdamWeightDecay",
                                             "transformers": "LazyTransformersAdamWeightDecay"}[implementation]
    assert lazy_optimizer.learning_rate.get_config() == dense_optimizer.learning_rate.get_config()
    np.testing.assert_allclose(lazy.numpy(), dense.numpy(), rtol=0, atol=1e-6)
    for slot in ("m", "v"):
        np.testing.assert_allclose(lazy_optimizer.get_slot(lazy, slot), dense_optimizer.get_slot(dense, slot),
                                   rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_lazy_optimizer_updates_only_the_rows_a_batch_uses(implementation):
    initial = np.random.RandomState(0).normal(size=(6, 3)).astype("float32")
    (_, dense), (lazy_optimizer, lazy) = lazy_and_dense_steps([0, 2, 2], implementation=implementation)
    dense, lazy_values, unused = dense.numpy(), lazy.numpy(), [1, 3, 4, 5]
    np.testing.assert_allclose(lazy_values[[0, 2]], dense[[0, 2]], rtol=0, atol=1e-6)  # Used rows: as AdamW.
    np.testing.assert_array_equal(lazy_values[unused], initial[unused])  # Unused rows: untouched...
    assert np.abs(dense[unused] - initial[unused]).max() > 1e-4  # ...where AdamW's weight decay moves them.
    for slot in ("m", "v"):
        moments = lazy_optimizer.get_slot(lazy, slot).numpy()
        assert not moments[unused].any() and moments[[0, 2]].all()


def test_lazy_optimizer_skips_weight_decay_on_excluded_names_and_applies_dense_gradients_as_adamw():
    (_, dense), (_, lazy) = lazy_and_dense_steps([0, 2], name="layer_norm/gamma")
    np.testing.assert_allclose(lazy.numpy(), dense.numpy(), rtol=0, atol=1e-6)  # No decay on unused rows either.
    results = []
    for lazy_updates in (False, True):
        kernel = tf.Variable(np.ones((2, 2), np.float32), name="kernel")
        optimizer = create_optimizer(0.1, 10, warmup_ratio=0.0, lazy_sparse_updates=lazy_updates)
        optimizer.apply_gradients([(tf.constant([[1.0, -2.0], [0.5, 0.0]]), kernel)])
        results.append(kernel.numpy())
    np.testing.assert_array_equal(results[1], results[0])


def test_transformers_optimizer_clips_the_global_norm_only_when_asked():
    for clip in (None, 0.5):
        optimizer = create_optimizer(0.1, 10, implementation="transformers", global_clipnorm=clip)
        assert optimizer.global_clipnorm == clip
    lazy = create_optimizer(0.1, 10, implementation="transformers", global_clipnorm=0.5, lazy_sparse_updates=True)
    assert lazy.global_clipnorm == 0.5 and lazy.weight_decay_rate == 0.01
    with pytest.raises(ValueError, match="global_clipnorm"):
        create_optimizer(0.1, 10, global_clipnorm=0.5)  # tf-models-official clips at 1.0 itself.


@pytest.mark.parametrize("options, message", [
    (dict(learning_rate=0, num_train_steps=10), "learning_rate"),
    (dict(learning_rate=1e-3, num_train_steps=0), "num_train_steps"),
    (dict(learning_rate=1e-3, num_train_steps=10, warmup_ratio=1.0), "warmup_ratio"),
    (dict(learning_rate=1e-3, num_train_steps=10, weight_decay=-1), "weight_decay"),
    (dict(learning_rate=1e-3, num_train_steps=10, global_clipnorm=0.0, implementation="transformers"),
     "global_clipnorm"),
])
def test_optimizer_rejects_bad_settings(options, message):
    with pytest.raises(ValueError, match=message):
        create_optimizer(**options)


def test_classification_report_figures():
    report = classification_report([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 0, 0], ["a", "b", "c"])
    assert report["accuracy"] == pytest.approx(0.5) and report["num_examples"] == 6
    assert report["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [2, 0, 0]]
    assert report["per_class"]["a"] == pytest.approx({"precision": 1 / 3, "recall": 0.5, "f1": 0.4, "support": 2})
    assert report["per_class"]["b"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert report["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert report["macro_f1"] == pytest.approx(0.4) and report["class_names"] == ["a", "b", "c"]
    json.dumps(report)


@pytest.mark.parametrize("labels, predictions, message", [
    ([0, 1], [0], "2 labels but 1 predictions"),
    ([0, 2], [0, 1], "class ids must lie in 0..1"),
    ([0, 1], [0, -1], "class ids must lie in 0..1"),
])
def test_classification_report_rejects_bad_input(labels, predictions, message):
    with pytest.raises(ValueError, match=message):
        classification_report(labels, predictions, ["a", "b"])


def test_evaluate_classifier_on_batches():
    inputs = tf_keras.Input(shape=(2,))
    model = tf_keras.Model(inputs, tf_keras.layers.Lambda(lambda x: x * 1.0)(inputs))  # Logits = the inputs.
    features = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 5.0], [1.0, 0.0]], "float32")
    dataset = tf.data.Dataset.from_tensor_slices((features, np.array([0, 1, 1, 1, 0]))).batch(2)
    labels, predicted, logits = predict_classes(model, dataset)
    assert labels.tolist() == [0, 1, 1, 1, 0] and predicted.tolist() == [0, 1, 0, 1, 0]
    np.testing.assert_array_equal(logits, features)
    report = evaluate_classifier(model, dataset, ["x", "y"])
    assert report["accuracy"] == pytest.approx(0.8) and report["confusion_matrix"] == [[2, 0], [1, 2]]


LOSS_LABELS = np.array([0, 2, 1, 2, 0])
LOSS_LOGITS = np.random.default_rng(0).normal(scale=3.0, size=(5, 3)).astype("float32")


@pytest.mark.parametrize("label_smoothing", [0.1, 0.3])
def test_smoothed_loss_equals_categorical_crossentropy_on_one_hot_labels(label_smoothing):
    loss = SparseCategoricalCrossentropyWithSmoothing(num_classes=3, label_smoothing=label_smoothing)
    categorical = tf_keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=label_smoothing)
    one_hot = np.eye(3, dtype="float32")[LOSS_LABELS]
    value = float(loss(LOSS_LABELS, LOSS_LOGITS))
    assert value == pytest.approx(float(categorical(one_hot, LOSS_LOGITS)), rel=1e-6)
    targets = one_hot * (1 - label_smoothing) + label_smoothing / 3  # The smoothed distribution, in NumPy.
    logits = LOSS_LOGITS.astype(np.float64)
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    assert value == pytest.approx(-(targets * log_softmax).sum(-1).mean(), rel=1e-5)
    assert float(loss(LOSS_LABELS[:, None], LOSS_LOGITS)) == pytest.approx(value)  # Labels [batch, 1] too.
    weights = np.array([1.0, 0.0, 2.0, 1.0, 0.5])
    assert float(loss(LOSS_LABELS, LOSS_LOGITS, sample_weight=weights)) == pytest.approx(
        float(categorical(one_hot, LOSS_LOGITS, sample_weight=weights)), rel=1e-6)


def test_zero_smoothing_equals_sparse_categorical_crossentropy():
    loss = SparseCategoricalCrossentropyWithSmoothing(num_classes=3)
    sparse = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    assert float(loss(LOSS_LABELS, LOSS_LOGITS)) == pytest.approx(float(sparse(LOSS_LABELS, LOSS_LOGITS)), rel=1e-6)


def test_smoothed_loss_config_round_trips():
    loss = SparseCategoricalCrossentropyWithSmoothing(num_classes=3, label_smoothing=0.2, reduction="sum",
                                                      name="smoothed")
    config = loss.get_config()
    assert config == {"num_classes": 3, "label_smoothing": 0.2, "reduction": "sum", "name": "smoothed"}
    for rebuilt in (SparseCategoricalCrossentropyWithSmoothing.from_config(config),
                    tf_keras.losses.deserialize(json.loads(json.dumps(tf_keras.losses.serialize(loss))))):
        assert type(rebuilt) is SparseCategoricalCrossentropyWithSmoothing
        assert rebuilt.get_config() == config
        assert float(rebuilt(LOSS_LABELS, LOSS_LOGITS)) == float(loss(LOSS_LABELS, LOSS_LOGITS))


@pytest.mark.parametrize("label_smoothing", [-0.1, 1.0])
def test_smoothed_loss_rejects_smoothing_outside_zero_to_one(label_smoothing):
    with pytest.raises(ValueError, match=rf"label_smoothing must lie in \[0, 1\), got {label_smoothing}"):
        SparseCategoricalCrossentropyWithSmoothing(num_classes=3, label_smoothing=label_smoothing)


def test_losses_docstring_examples_run():
    result = doctest.testmod(losses)
    assert result.attempted > 0 and result.failed == 0
