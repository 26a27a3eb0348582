"""Run reports: the PNGs every fit run writes beside metrics.json, their numbers, and `pipelines.compare`.

A tiny custom-Transformer run (pipelines.agnews_transformer, tiny fixture data)
and a tiny frozen-encoder stage (`tfnlp.training.classification.train_frozen_head`,
the path of both BERT classifier scripts) must leave ``curves.png`` and
``confusion_matrix.png`` beside their metrics.json, the confusion matrix holding
metrics.json's counts; NER metrics give ``entity_scores.png``.
"""

import csv
import doctest
import importlib
import json
import os

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from helpers import AG_NEWS_CLASS_NAMES as CLASS_NAMES
from pipelines import agnews_transformer, compare
from tfnlp.plots import confusion as confusion_module, read_plot_data
from tfnlp.plots.confusion import plot_confusion_matrix
from tfnlp.training import Runtime, RuntimeArguments
from tfnlp.training.classification import train_frozen_head
from tfnlp.training.report import read_history, summarize_run, write_run_report

TINY = ["--tokenizer", "text_vectorization", "--no-pretrained-embeddings", "--embedding-dim", "8",
        "--num-heads", "2", "--intermediate-dim", "8", "--sequence-length", "32", "--epochs", "3",
        "--batch-size", "8", "--distillation-weight", "0", "--export-dir", ""]
PNG = b"\x89PNG\r\n\x1a\n"

NER_SCORES = {
    "validation": {"precision": 0.75, "recall": 0.6, "f1": 0.6667,
                   "per_type": {"PER": {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "number": 4},
                                "LOC": {"precision": 0.5, "recall": 1.0, "f1": 0.6667, "number": 1}}},
    "test": {"precision": 0.8, "recall": 0.4, "f1": 0.5333,
             "per_type": {"PER": {"precision": 0.9, "recall": 0.3, "f1": 0.45, "number": 10},
                          "ORG": {"precision": 0.7, "recall": 0.5, "f1": 0.5833, "number": 2}}},
}


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def assert_png(path):
    with open(path, "rb") as f:
        assert f.read(8) == PNG, f"{path} is not a PNG"
    assert os.path.getsize(path) > 2000, f"{path} is suspiciously small"


def history_column(output_dir, column):
    with open(os.path.join(output_dir, "history.csv"), newline="") as f:
        return [float(row[column]) for row in csv.DictReader(f)]


@pytest.mark.parametrize("name", ["tfnlp.plots.png", "tfnlp.plots.curves", "tfnlp.plots.confusion",
                                  "tfnlp.plots.entity_scores", "tfnlp.training.report"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no runnable example"
    assert result.failed == 0


def test_confusion_matrix_cells_show_the_counts(tmp_path, monkeypatch):
    figures = []
    save = confusion_module.save_figure
    monkeypatch.setattr(confusion_module, "save_figure",
                        lambda figure, path, data: figures.append(figure) or save(figure, path, data))
    matrix = [[5, 1, 0], [2, 7, 0], [0, 0, 0]]
    path = plot_confusion_matrix(matrix, ["a", "b", "c"], str(tmp_path / "cm.png"))
    assert_png(path)
    assert read_plot_data(path) == {"confusion_matrix": matrix, "class_names": ["a", "b", "c"]}
    (axis,) = [axis for axis in figures[0].axes if axis.images]
    cells = sorted((round(text.get_position()[1]), round(text.get_position()[0]), text.get_text())
                   for text in axis.texts)
    assert [int(text.split("\n")[0]) for _, _, text in cells] == [count for row in matrix for count in row]
    assert cells[1][2] == "1\n(17%)"  # Row shares: 1 of the 6 examples of class a.
    assert "accuracy 0.8000 on 15 examples" in axis.get_title()
    with pytest.raises(ValueError, match="expected \\(2, 2\\)"):
        plot_confusion_matrix(matrix, ["a", "b"], str(tmp_path / "bad.png"))


def test_history_keeps_the_latest_training_with_all_its_sessions(tmp_path):
    rows = ["epoch,loss,val_loss", "0,9,9", "1,8,8",  # An earlier training in the same folder.
            "0,1.5,1.4", "1,1.2,1.1",  # This training's first session...
            "2,1.0,", "3,0.9,0.8"]  # ... resumed: later epochs appended (one missing cell).
    (tmp_path / "history.csv").write_text("\n".join(rows) + "\n")
    history = read_history(str(tmp_path))
    assert history["epoch"] == [0, 1, 2, 3]
    assert history["loss"] == [1.5, 1.2, 1.0, 0.9]
    assert history["val_loss"][:2] == [1.4, 1.1] and np.isnan(history["val_loss"][2])
    assert read_history(str(tmp_path / "missing")) is None


def test_ner_metrics_give_entity_score_bars(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,loss,val_loss\n0,0.9,0.8\n1,0.5,0.6\n")
    written = write_run_report(str(tmp_path), NER_SCORES)
    assert written == {"curves": "curves.png", "entity_scores": "entity_scores.png"}
    for name in written.values():
        assert_png(tmp_path / name)
    drawn = read_plot_data(str(tmp_path / "entity_scores.png"))
    assert set(drawn) == {"validation", "test"}
    for split, scores in NER_SCORES.items():
        assert set(drawn[split]) == set(scores["per_type"]) | {"ALL"}
        for entity, values in scores["per_type"].items():
            assert drawn[split][entity] == {key: values[key] for key in ("precision", "recall", "f1")}
        assert drawn[split]["ALL"] == {key: scores[key] for key in ("precision", "recall", "f1")}
    assert read_plot_data(str(tmp_path / "curves.png"))["val_loss"] == [0.8, 0.6]


@pytest.fixture(scope="module")
def transformer_run(ag_news_root, tmp_path_factory):
    """A finished tiny agnews_transformer run (3 epochs) on the shared tiny AG News: its output folder."""
    output_dir = str(tmp_path_factory.mktemp("runs") / "agnews_transformer")
    agnews_transformer.main(["--data-dir", ag_news_root, "--output-dir", output_dir, "--validation-size", "8", *TINY])
    return output_dir


@pytest.mark.slow  # Reads a whole tiny fit run.
def test_fit_run_writes_curves_and_confusion_matrix_beside_metrics(transformer_run):
    metrics = read_json(os.path.join(transformer_run, "metrics.json"))
    assert metrics["plots"] == {"curves": "curves.png", "confusion_matrix": "confusion_matrix.png"}
    for name in metrics["plots"].values():
        assert_png(os.path.join(transformer_run, name))
    confusion = read_plot_data(os.path.join(transformer_run, "confusion_matrix.png"))
    assert confusion["confusion_matrix"] == metrics["test"]["confusion_matrix"]
    assert confusion["class_names"] == metrics["test"]["class_names"] == CLASS_NAMES
    counts = np.array(confusion["confusion_matrix"])
    assert counts.sum() == metrics["test"]["num_examples"] == 16
    assert np.trace(counts) / counts.sum() == pytest.approx(metrics["test"]["accuracy"])
    curves = read_plot_data(os.path.join(transformer_run, "curves.png"))
    assert curves["epoch"] == [1, 2, 3]
    for column in ("loss", "val_loss", "accuracy", "val_accuracy"):
        np.testing.assert_allclose(curves[column], history_column(transformer_run, column))


def test_frozen_stage_of_the_bert_classifiers_writes_its_report(tmp_path):
    """`train_frozen_head` (both BERT classifier scripts' stage 1) through the shared fit_and_evaluate."""
    rng = np.random.RandomState(0)
    vectors = rng.normal(size=(48, 6)).astype("float32")
    labels = (vectors[:, 0] > 0).astype("int64") + 2 * (vectors[:, 1] > 0).astype("int64")
    batches = {name: tf.data.Dataset.from_tensor_slices((vectors[part], labels[part])).batch(8)
               for name, part in (("train", slice(0, 32)), ("validation", slice(32, 40)), ("test", slice(40, 48)))}
    runtime = Runtime(RuntimeArguments(output_dir=str(tmp_path / "run"), steps_per_execution=1)).stage("frozen")
    with runtime.scope():
        head = tf_keras.Sequential([tf_keras.Input((6,)), tf_keras.layers.Dense(4)])
    metrics = train_frozen_head(lambda x, training=False: x, head, batches, CLASS_NAMES, runtime, cache_key="tiny", settings={},
                                epochs=2, batch_size=8, learning_rate=1e-2)
    stage_dir = runtime.args.output_dir
    written = read_json(os.path.join(stage_dir, "metrics.json"))
    assert written["plots"] == metrics["plots"] == {"curves": "curves.png", "confusion_matrix": "confusion_matrix.png"}
    assert read_plot_data(os.path.join(stage_dir, "confusion_matrix.png"))["confusion_matrix"] == \
        written["test"]["confusion_matrix"]
    assert sum(map(sum, written["test"]["confusion_matrix"])) == 8
    assert read_plot_data(os.path.join(stage_dir, "curves.png"))["epoch"] == [1, 2]


@pytest.mark.slow  # Reads a whole tiny fit run.
def test_compare_prints_a_table_and_plots_the_runs_curves(transformer_run, tmp_path, capsys):
    # A two-stage run (the BERT scripts' layout: figures per stage, curves in the stage folders) and a NER run.
    two_stage = tmp_path / "agnews_hf_bert"
    (two_stage / "fine_tune").mkdir(parents=True)
    (two_stage / "metrics.json").write_text(json.dumps({
        "frozen": {"test": {"accuracy": 0.5}},
        "fine_tune": {"test": {"accuracy": 0.875, "macro_f1": 0.8612}, "validation_accuracy": 0.9,
                      "train_wall_seconds": 1234.4, "train_examples_per_second": 30.25}}))
    (two_stage / "fine_tune" / "history.csv").write_text("epoch,loss,accuracy,val_loss,val_accuracy\n"
                                                         "0,0.7,0.8,0.5,0.85\n1,0.4,0.9,0.45,0.9\n")
    ner = tmp_path / "conll_ner"
    ner.mkdir()
    (ner / "metrics.json").write_text(json.dumps({**NER_SCORES, "train_wall_seconds": 99.0}))
    out = tmp_path / "comparison.png"

    result = compare.main([transformer_run, str(two_stage), str(ner), "--out", str(out)])
    table = capsys.readouterr().out.strip().splitlines()
    metrics = read_json(os.path.join(transformer_run, "metrics.json"))
    assert table[0].startswith("| run | metric | test | validation |") and len(table) == 5
    assert table[2].split(" | ")[1:4] == ["accuracy", f"{metrics['test']['accuracy']:.4f}",
                                           f"{metrics['validation_accuracy']:.4f}"]
    assert table[2].split(" | ")[5] == "3"  # Epochs.
    assert table[3] == f"| {two_stage} (fine_tune) | accuracy | 0.8750 | 0.9000 | 0.8612 | 2 | 1,234 | 30.2 |"
    assert table[4] == f"| {ner} | entity F1 | 0.5333 | 0.6667 |  |  | 99 |  |"
    assert result["plot"] == str(out)
    assert_png(out)
    drawn = read_plot_data(str(out))
    assert set(drawn) == {"agnews_transformer", "agnews_hf_bert/fine_tune"}
    assert drawn["agnews_hf_bert/fine_tune"]["val_accuracy"] == [0.85, 0.9]
    np.testing.assert_allclose(drawn["agnews_transformer"]["val_loss"], history_column(transformer_run, "val_loss"))
    assert summarize_run(str(two_stage))["stage"] == "fine_tune"


def test_compare_rejects_a_folder_without_metrics(tmp_path, capsys):
    from tfnlp.training import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.run(compare.main, [str(tmp_path)])
    assert exit_info.value.code == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [f"error: {tmp_path}/metrics.json: no such file (is {tmp_path} a finished run's --output-dir?)"]
