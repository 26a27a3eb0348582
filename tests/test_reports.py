"""Run reports: the PNGs every fit run writes beside metrics.json, their numbers, and `pipelines.reports.compare`.

A tiny custom-Transformer run (`conftest.classifier_run`: pipelines.agnews_transformer
on tiny fixture data) and a tiny frozen-encoder stage
(`tfnlp.training.classification.train_frozen_head`, the path of both BERT
classifier scripts) must leave ``curves.png`` and ``confusion_matrix.png``
beside their metrics.json, the confusion matrix holding metrics.json's counts;
NER figures (`tfnlp.training.ner_metrics.entity_report`) give
``entity_scores.png``. The NER run's own report and its row in
``pipelines.reports.compare`` are tested on the tiny NER run in test_ner_pipeline.py,
a two-stage run's in test_agnews_hf_bert.py.
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
from pipelines.reports import compare
from tfnlp.plots import confusion as confusion_module, read_plot_data
from tfnlp.plots.confusion import plot_confusion_matrix
from tfnlp.training import Runtime, RuntimeArguments
from tfnlp.training.classification import train_frozen_head
from tfnlp.training.ner_metrics import entity_report
from tfnlp.training.report import read_history, summarize_run, write_run_report

PNG = b"\x89PNG\r\n\x1a\n"


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
    # The figures as `entity_report` (the NER evaluation) gives them: validation 3 PER and 1 LOC, test 2 PER, 1 ORG.
    true = {"validation": [["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "O"], ["O", "B-PER"]],
            "test": [["B-PER", "O", "B-ORG", "I-ORG"], ["B-PER"]]}
    predicted = {"validation": [["B-PER", "I-PER", "O", "B-ORG"], ["B-PER", "O"], ["O", "O"]],
                 "test": [["B-PER", "O", "B-ORG", "I-ORG"], ["B-LOC"]]}
    metrics = {split: entity_report(true[split], predicted[split]) for split in true}
    (tmp_path / "history.csv").write_text("epoch,loss,val_loss\n0,0.9,0.8\n1,0.5,0.6\n")
    written = write_run_report(str(tmp_path), metrics)
    assert written == {"curves": "curves.png", "entity_scores": "entity_scores.png"}
    for name in written.values():
        assert_png(tmp_path / name)
    drawn = read_plot_data(str(tmp_path / "entity_scores.png"))
    assert set(drawn) == {"validation", "test"}
    assert {name: row["support"] for name, row in drawn["validation"].items()} == {"PER": 3, "LOC": 1, "ORG": 0,
                                                                                   "ALL": 4}
    assert {name: row["support"] for name, row in drawn["test"].items()} == {"PER": 2, "ORG": 1, "LOC": 0, "ALL": 3}
    for split, scores in metrics.items():
        assert set(drawn[split]) == set(scores["per_type"]) | {"ALL"}
        for entity, values in scores["per_type"].items():
            assert drawn[split][entity] == {key: values[key] for key in ("precision", "recall", "f1", "support")}
        assert drawn[split]["ALL"] == {**{key: scores[key] for key in ("precision", "recall", "f1")},
                                       "support": scores["num_entities"]}
    assert read_plot_data(str(tmp_path / "curves.png"))["val_loss"] == [0.8, 0.6]


def test_entity_scores_without_supports_are_refused(tmp_path):
    scores = {"precision": 1.0, "recall": 1.0, "f1": 1.0, "per_type": {"PER": {"precision": 1.0, "recall": 1.0,
                                                                                "f1": 1.0}}}
    with pytest.raises(ValueError, match="test: per_type PER has no 'support'"):
        write_run_report(str(tmp_path), {"test": scores})


@pytest.fixture(scope="module")
def transformer_run(classifier_run):
    """The shared tiny agnews_transformer run's output folder (3 epochs)."""
    return classifier_run["run"]


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
    assert counts.sum() == metrics["test"]["num_examples"] == 12  # classifier_run's test rows.
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
    out = tmp_path / "comparison.png"
    result = compare.main([transformer_run, "--out", str(out)])
    table = capsys.readouterr().out.strip().splitlines()
    metrics = read_json(os.path.join(transformer_run, "metrics.json"))
    assert table[0].startswith("| run | metric | test | validation |") and len(table) == 3
    assert table[2] == (f"| {transformer_run} | accuracy | {metrics['test']['accuracy']:.4f} | "
                        f"{metrics['validation_accuracy']:.4f} | {metrics['test']['macro_f1']:.4f} | 3 | "
                        f"{metrics['train_wall_seconds']:,.0f} | {metrics['train_examples_per_second']:,.1f} |")
    assert result["runs"][0]["stage"] is None and result["plot"] == str(out)
    assert_png(out)
    drawn = read_plot_data(str(out))
    assert set(drawn) == {"agnews_transformer"}
    for column in ("loss", "val_loss", "accuracy", "val_accuracy"):
        np.testing.assert_allclose(drawn["agnews_transformer"][column], history_column(transformer_run, column))


def test_compare_rejects_a_folder_without_metrics(tmp_path, capsys):
    from tfnlp.training import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.run(compare.main, [str(tmp_path)])
    assert exit_info.value.code == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [f"error: {tmp_path}/metrics.json: no such file (is {tmp_path} a finished run's --output-dir?)"]


def test_summarize_run_rejects_figures_no_fit_script_writes(tmp_path):
    from tfnlp.errors import ConfigurationError

    (tmp_path / "metrics.json").write_text(json.dumps({"test": {"loss": 0.25}}))
    with pytest.raises(ConfigurationError, match="neither a classifier's \\(accuracy\\) nor a NER run's"):
        summarize_run(str(tmp_path))


def test_predict_and_rest_serve_the_runs_export_as_the_run_checked_it(classifier_run, capsys):
    """`pipelines.serving.predict` and the REST conversion on the tiny run's export (pipelines.agnews_transformer)."""
    from pipelines.serving import predict
    from tfnlp.serving import SMOKE_TEXTS, ServedModel, rest

    assert predict.main(["--model", os.path.dirname(classifier_run["export"]), *SMOKE_TEXTS]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["label"] for line in lines] == classifier_run["written"]["export"]["smoke_labels"]  # Its check.
    response = json.loads(rest.to_json(ServedModel.load(classifier_run["export"]).rest_predict(
        {"instances": [{"text": text} for text in SMOKE_TEXTS]})))
    assert [p["label"] for p in response["predictions"]] == [line["label"] for line in lines]
    np.testing.assert_allclose([p["probabilities"] for p in response["predictions"]],
                               [line["probabilities"] for line in lines], rtol=1e-6)
