"""The run folder's layout (`tfnlp.training.RunFolder`): the object against the layout spelled out literally, as
users and the README know it, and a real tiny run writing exactly where the object says."""

import doctest
import os
import types

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfnlp.training import RunFolder, Runtime, RuntimeArguments, run_folder
from tfnlp.training.evaluation import fit_and_evaluate
from tfnlp.training.optimization import create_optimizer
from tfnlp.training.weight_averaging import weight_snapshots

# The documented layout, spelled out here on purpose: a change to RunFolder must fail this test.
LAYOUT = {
    "config_file": "config.json",
    "metrics_file": "metrics.json",
    "state_file": "training_state.json",
    "history_file": "history.csv",
    "logs_dir": "logs",
    "backup_dir": "backup",
    "chief_backup_dir": "backup/chief",
    "checkpoints_dir": "checkpoints",
    "best_weights": "checkpoints/best",
    "final_weights": "checkpoints/final",
    "snapshots_dir": "checkpoints/snapshots",
    "curves_file": "curves.png",
    "confusion_matrix_file": "confusion_matrix.png",
    "entity_scores_file": "entity_scores.png",
    "features_dir": "features",
    "teacher_file": "teacher/train.npz",
    "cluster_check_file": ".tfnlp-cluster",
}


def test_the_folder_spells_the_documented_layout(tmp_path):
    folder = RunFolder(tmp_path / "run")
    for attribute, relative in LAYOUT.items():
        assert getattr(folder, attribute) == os.path.join(str(tmp_path / "run"), *relative.split("/")), attribute
    assert folder.features_file("validation") == str(tmp_path / "run" / "features" / "validation.npz")
    assert (RunFolder.CURVES, RunFolder.CONFUSION_MATRIX, RunFolder.ENTITY_SCORES) == (
        "curves.png", "confusion_matrix.png", "entity_scores.png")
    assert RunFolder.STAGES == ("frozen", "fine_tune")
    assert folder.stage("fine_tune").metrics_file == str(tmp_path / "run" / "fine_tune" / "metrics.json")
    assert folder.stage("frozen").features_file("train") == str(tmp_path / "run" / "frozen" / "features" / "train.npz")
    assert folder.name == "run" and RunFolder.of(folder) is folder and RunFolder.of(str(tmp_path / "run")) == folder
    # Every path attribute is in the table above (a new one must be added to the documented layout too).
    paths = {name for name, value in vars(RunFolder).items() if isinstance(value, property)} - {"name"}
    assert paths == set(LAYOUT)


def test_an_empty_folder_is_refused():
    with pytest.raises(ValueError, match="--output-dir"):
        RunFolder("")


def test_docstring_example():
    result = doctest.testmod(run_folder)
    assert result.attempted > 0 and result.failed == 0


def test_a_real_run_writes_only_where_the_folder_says(tmp_path):
    """Runtime and fit_and_evaluate (with snapshots) on a stage of a run: every file lands at a RunFolder path."""
    runtime = Runtime(RuntimeArguments(output_dir=str(tmp_path / "run"), seed=2, steps_per_execution=1))
    runtime.write_config(training={"epochs": 2})
    stage = runtime.stage(RunFolder.FINE_TUNE)
    assert stage.folder == runtime.folder.stage("fine_tune") and stage.args.output_dir == stage.folder.root
    features = np.random.RandomState(0).normal(size=(48, 6)).astype("float32")
    labels = (features[:, 0] + features[:, 1] > 0).astype("int32")
    batches = {"train": tf.data.Dataset.from_tensor_slices((features[:32], labels[:32])).batch(8),
               "validation": tf.data.Dataset.from_tensor_slices((features[32:40], labels[32:40])).batch(8),
               "test": tf.data.Dataset.from_tensor_slices((features[40:], labels[40:])).batch(8)}
    with stage.scope():
        model = tf_keras.Sequential([tf_keras.Input((6,)), tf_keras.layers.Dense(2)])
        model.compile(optimizer=create_optimizer(5e-2, 8), metrics=["accuracy"],
                      loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    snapshots = weight_snapshots(types.SimpleNamespace(average_snapshots=2, average_fraction=0.5), stage, 8)
    metrics, _ = fit_and_evaluate(model, stage, batches, epochs=2, num_train=32, class_names=["a", "b"],
                                  snapshots=snapshots)
    assert metrics["plots"] == {"curves": "curves.png", "confusion_matrix": "confusion_matrix.png"}

    folder = stage.folder
    for path in (runtime.folder.config_file, folder.state_file, folder.history_file, folder.best_weights + ".index",
                 folder.final_weights + ".index", folder.curves_file, folder.confusion_matrix_file):
        assert os.path.isfile(path), path
    assert os.path.isdir(folder.logs_dir) and not os.path.exists(folder.backup_dir)  # Deleted once finished.
    assert snapshots.saved() == [os.path.join(folder.snapshots_dir, f"step-{step}") for step in (4, 8)]
    # Nothing outside the layout: each entry of the stage folder is one the object names.
    named = {os.path.relpath(getattr(folder, name), folder.root).split(os.sep)[0] for name in LAYOUT}
    assert set(os.listdir(folder.root)) <= named
    assert set(os.listdir(runtime.folder.root)) == {"config.json", "fine_tune"}
