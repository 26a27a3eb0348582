"""End-to-end runs of pipelines/conll_ner.py: a tiny random BERT on a tiny CoNLL fixture, and the real data.

Every run passes its sizes through ``main(argv=[...])``: the script's defaults
are the real training configuration and are never relied on here. The shared
tiny run (`conftest.ner_run`) is also what the run's consumers are tested on:
its report pictures, ``pipelines.reports.compare``, ``pipelines.serving.predict``, the REST
conversion and the warm-up file of its export. The casing
variant of a whole run and the longer real-data run are in the large tier
(`make test-all`); the casing export itself is tested in test_ner_serving.py.
"""

import collections
import csv
import json
import os

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import pytest
import tensorflow as tf

from helpers import run_fresh_python, write_conll_folder
from pipelines.reports import compare
from pipelines.serving import predict
from pipelines import conll_ner as pipeline
from tfnlp.plots import entity_scores as entity_scores_module
from tfnlp.plots import read_plot_data
from tfnlp.serving import ServedModel, rest, warmup
from tfnlp.serving.ner_predictor import NerPredictor
from tfnlp.training.report import summarize_run
from tfnlp.errors import ConfigurationError

@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """`helpers.write_conll_folder`: train 12 documents (60 sentences), validation 7 sentences, test 5."""
    return write_conll_folder(tmp_path_factory.mktemp("data"))


def run(data_root, tiny_bert, output_dir, export_dir, *extra):
    return pipeline.main(["--data-dir", data_root, "--pretrained", tiny_bert, "--output-dir", str(output_dir),
                          "--export-dir", str(export_dir), "--max-length", "16", "--stride", "6",
                          "--batch-size", "4", "--steps-per-execution", "1", *extra])


@pytest.mark.slow
def test_tiny_run_trains_evaluates_exports_and_reloads_without_tfnlp(ner_run, tmp_path):
    metrics, written = ner_run["metrics"], ner_run["written"]
    assert written["validation"]["f1"] == metrics["validation"]["f1"]
    # Documents of up to 45 pieces in windows of 14: the model reads every word, and learns the fixture's entities.
    for split in ("validation", "test"):
        report = metrics[split]
        assert set(report["per_type"]) == {"PER", "LOC", "ORG", "MISC"}
        assert {"precision", "recall", "f1", "support"} <= set(report["per_type"]["PER"])
        assert report["num_sentences"] == {"validation": 7, "test": 5}[split]
        assert set(report["f1_by_decoding"]) == {"argmax", "iob"} and report["decoding"] == "iob"  # The default.
    assert metrics["validation"]["per_type"]["PER"]["f1"] > 0.5, metrics["validation"]
    assert metrics["hf_pipeline_parity"]["same_groups_and_offsets"]
    assert metrics["hf_pipeline_parity"]["texts"] == 7 and metrics["hf_pipeline_parity"]["max_score_difference"] < 1e-4
    export = metrics["export"]["path"]
    assert os.path.basename(export) == "1" and os.path.isfile(os.path.join(export, "saved_model.pb"))
    lesson = metrics["lesson_example"]
    assert lesson["text"] == pipeline.LESSON_SENTENCE
    stdout = run_fresh_python("""
        import json, sys
        import tensorflow as tf
        import tensorflow_text  # noqa: F401
        outputs = tf.saved_model.load(sys.argv[1]).signatures["serving_default"](text=tf.constant([sys.argv[2]]))
        count = int(outputs["num_entities"][0])
        print(json.dumps([[outputs[k][0, i].numpy().decode() if k in ("entity_group", "word") else
                           outputs[k][0, i].numpy().item() for k in ("entity_group", "word", "start", "end", "score")]
                          for i in range(count)]))
        assert "tfnlp" not in sys.modules
    """, export, pipeline.LESSON_SENTENCE, cwd=str(tmp_path))
    reloaded = json.loads(stdout.strip().splitlines()[-1])
    assert [row[:4] for row in reloaded] == [[e["entity_group"], e["word"], e["start"], e["end"]]
                                             for e in lesson["entities"]]
    assert all(abs(row[4] - e["score"]) < 1e-5 for row, e in zip(reloaded, lesson["entities"]))


# What the run's consumers read, as the run wrote it.

def history_columns(run_dir):
    with open(os.path.join(run_dir, "history.csv"), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {name: [float(row[name]) for row in rows] for name in rows[0]}


def test_metrics_json_names_the_weights_the_averaging_rule_kept(ner_run):
    """--average-snapshots: the average replaces the last epoch's weights only if its validation F1 is higher
    (the classifiers' rule), and metrics.json says which weights its figures are, as the classifiers' does."""
    metrics = ner_run["written"]
    averaging = metrics["averaging"]
    assert metrics["averaged_snapshots"] == averaging["snapshots"] == 2
    assert averaging["kept"] is (averaging["validation_f1_averaged"] > averaging["validation_f1_epoch"])
    assert averaging["validation_f1_epoch"] == metrics["last_weights"]["validation"]["f1"]
    assert metrics["weights"] == ("averaged_snapshots" if averaging["kept"] else "last_epoch")
    kept = averaging["validation_f1_averaged"] if averaging["kept"] else averaging["validation_f1_epoch"]
    assert metrics["validation"]["f1"] == kept
    # The last epoch's figures are kept beside the headline figures.
    assert set(metrics["last_weights"]) == {"validation", "test"}
    assert metrics["last_weights"]["test"]["num_entities"] == metrics["test"]["num_entities"]


@pytest.mark.large  # A second whole NER run; the shared run checks the rule's record, test_training_runtime the rule.
def test_an_average_that_loses_on_validation_leaves_the_last_epochs_weights(data_root, tiny_bert, tmp_path):
    """Two snapshots, the first after one step (``--average-fraction 1``): their average is half-way back to the
    initial weights and tags worse than the trained model, so the last epoch's weights stay, as a classifier's
    best epoch stays (before, conll_ner always kept the average)."""
    metrics = run(data_root, tiny_bert, tmp_path / "run", "", "--epochs", "6", "--learning-rate", "3e-3",
                  "--warmup-ratio", "0", "--context", "sentence", "--average-snapshots", "2",
                  "--average-fraction", "1")
    averaging = metrics["averaging"]
    assert averaging["snapshots"] == 2 and averaging["kept"] is False
    assert averaging["validation_f1_averaged"] < averaging["validation_f1_epoch"]
    assert metrics["weights"] == "last_epoch"
    for split in ("validation", "test"):  # The headline figures are the last weights'.
        assert metrics[split] == metrics["last_weights"][split]
    with open(tmp_path / "run" / "metrics.json", encoding="utf-8") as f:
        written = json.load(f)
    assert written["weights"] == "last_epoch" and written["averaging"] == averaging


def entity_plot(splits, tmp_path, monkeypatch):
    """Draws ``splits`` with `plot_entity_scores`: (the x labels of each panel, the numbers the PNG stores)."""
    figures = []
    save = entity_scores_module.save_figure
    monkeypatch.setattr(entity_scores_module, "save_figure",
                        lambda figure, path, data: figures.append(figure) or save(figure, path, data))
    path = entity_scores_module.plot_entity_scores(splits, str(tmp_path / "entity_scores.png"))
    return [[label.get_text() for label in axis.get_xticklabels()] for axis in figures[0].axes], read_plot_data(path)


def test_report_pictures_state_the_runs_figures(ner_run, tmp_path, monkeypatch):
    run_dir, metrics = ner_run["run"], ner_run["written"]
    assert metrics["plots"] == {"curves": "curves.png", "entity_scores": "entity_scores.png"}
    splits = {name: metrics[name] for name in ("validation", "test")}
    # The bars' labels: each entity type with its number of entities in the split, then all of them.
    labels, redrawn = entity_plot(splits, tmp_path, monkeypatch)
    for panel, report in zip(labels, splits.values()):
        assert panel == [f"{name}\n({values['support']})" for name, values in sorted(report["per_type"].items())] + [
            f"all\n({report['num_entities']})"]
    drawn = read_plot_data(os.path.join(run_dir, "entity_scores.png"))
    assert drawn == redrawn and set(drawn) == set(splits)
    for split, report in splits.items():
        assert sum(values["support"] for values in report["per_type"].values()) == report["num_entities"] > 0
        for name, values in report["per_type"].items():
            assert drawn[split][name] == {key: values[key] for key in ("precision", "recall", "f1", "support")}
        assert drawn[split]["ALL"] == {"precision": report["precision"], "recall": report["recall"],
                                       "f1": report["f1"], "support": report["num_entities"]}
    curves = read_plot_data(os.path.join(run_dir, "curves.png"))
    history = history_columns(run_dir)
    assert curves["epoch"] == list(range(1, 13))
    for column in ("loss", "val_loss", "accuracy", "val_accuracy"):
        np.testing.assert_allclose(curves[column], history[column])


def cells(row):
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def test_compare_shows_a_ner_runs_entity_f1_beside_a_classifiers_accuracy(ner_run, classifier_run, tmp_path,
                                                                          capsys):
    metrics = ner_run["written"]
    summary = summarize_run(ner_run["run"])
    assert (summary["metric"], summary["test"], summary["validation"], summary["macro_f1"]) == (
        "entity F1", metrics["test"]["f1"], metrics["validation"]["f1"], None)
    assert summary["epochs"] == 12 and summary["train_seconds"] == metrics["train_wall_seconds"]
    out = tmp_path / "comparison.png"
    compare.main([classifier_run["run"], ner_run["run"], "--out", str(out)])
    header, _, classifier_row, ner_row = capsys.readouterr().out.strip().splitlines()
    assert cells(header)[:5] == ["run", "metric", "test", "validation", "test macro F1"]
    classifier = classifier_run["written"]
    assert cells(classifier_row)[:6] == [classifier_run["run"], "accuracy", f"{classifier['test']['accuracy']:.4f}",
                                         f"{classifier['validation_accuracy']:.4f}",
                                         f"{classifier['test']['macro_f1']:.4f}", "3"]
    assert cells(ner_row)[:6] == [ner_run["run"], "entity F1", f"{metrics['test']['f1']:.4f}",
                                  f"{metrics['validation']['f1']:.4f}", "", "12"]
    drawn = read_plot_data(str(out))
    assert set(drawn) == {"agnews_transformer", "conll_ner"}
    np.testing.assert_allclose(drawn["conll_ner"]["val_loss"], history_columns(ner_run["run"])["val_loss"])


def test_predict_rest_and_the_predictor_serve_the_export_as_the_run_checked_it(ner_run, capsys):
    export, metrics = ner_run["export"], ner_run["written"]
    checked = metrics["export"]["smoke_entities"]  # The reloaded export's entities, after the run's export.
    assert metrics["lesson_example"]["entities"] == checked[0]

    def assert_entities(actual, expected):
        assert [[{k: v for k, v in e.items() if k != "score"} for e in row] for row in actual] == \
            [[{k: v for k, v in e.items() if k != "score"} for e in row] for row in expected]
        np.testing.assert_allclose([e["score"] for row in actual for e in row],
                                   [e["score"] for row in expected for e in row], atol=1e-6)

    assert predict.main(["--model", os.path.dirname(export), *pipeline.SMOKE_TEXTS]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in lines] == list(pipeline.SMOKE_TEXTS)
    assert_entities([line["entities"] for line in lines], checked)
    assert_entities(NerPredictor.load(export)(list(pipeline.SMOKE_TEXTS)), checked)
    # A REST predict body: the signature's padded outputs, num_entities of them real.
    response = json.loads(rest.to_json(ServedModel.load(export).rest_predict(
        {"instances": list(pipeline.SMOKE_TEXTS)})))
    assert [p["num_entities"] for p in response["predictions"]] == [len(row) for row in checked]
    for prediction, row in zip(response["predictions"], checked):
        assert prediction["word"][:len(row)] == [e["word"] for e in row]
        assert prediction["start"][:len(row)] == [e["start"] for e in row]


def test_the_exports_warmup_requests_replay_on_its_signature(ner_run):
    export = ner_run["export"]
    results = warmup.replay_warmup_requests(export, tf.saved_model.load(export).signatures)
    assert [name for name, _ in results] == ["serving_default"] * 2
    assert [outputs["num_tokens"].shape for _, outputs in results] == [(1,), (len(warmup.WARMUP_TEXTS),)]
    texts = [text.encode() for text in warmup.WARMUP_TEXTS]
    expected = NerPredictor.load(export)(list(warmup.WARMUP_TEXTS))
    assert results[1][1]["num_entities"].tolist() == [len(row) for row in expected]
    assert results[1][1]["num_tokens"][texts.index(b"")] == 0


@pytest.mark.large  # An option variant of a whole run.
def test_casing_run_exports_the_casing_feature(data_root, tiny_bert, tmp_path):
    metrics = run(data_root, tiny_bert, tmp_path / "run", tmp_path / "saved", "--epochs", "1", "--casing",
                  "--context", "sentence", "--subword-labels", "ignore", "--decoding", "iob")
    assert metrics["validation"]["decoding"] == "iob"
    assert metrics["weights"] == "last_epoch"  # Neither --average-snapshots nor --restore-best-epoch.
    assert "hf_pipeline_parity" not in metrics  # HF's tokenizer cannot give the casing ids.
    smoke = metrics["export"]["smoke_entities"]
    assert len(smoke) == len(pipeline.SMOKE_TEXTS) and smoke[1] == [] and smoke[2] == []
    for text, entities in zip(pipeline.SMOKE_TEXTS, smoke):
        assert all(e["word"] == text[e["start"]:e["end"]] for e in entities)


def test_max_length_beyond_the_models_positions_is_one_clear_error(data_root, tiny_bert, tmp_path):
    with pytest.raises(ConfigurationError, match="--max-length 64 exceeds the 32 positions"):
        pipeline.main(["--data-dir", data_root, "--pretrained", tiny_bert, "--output-dir", str(tmp_path / "run"),
                       "--max-length", "64"])
    assert not os.path.exists(tmp_path / "run")  # Nothing written.


@pytest.mark.parametrize("argv,message", [
    (["--max-length", "2"], "--max-length must be at least 3"),
    (["--max-length", "16", "--stride", "14"], "--stride must lie in"),
    (["--epochs", "0"], "--epochs and --batch-size must be at least 1"),
    (["--pretrained", "/no/such/folder"], "no such folder"),
    (["--max-grad-norm", "-1"], "--max-grad-norm must be >= 0"),
])
def test_bad_arguments_are_one_line_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        pipeline.main(argv)
    assert info.value.code == 2 and message in capsys.readouterr().err


def entity_counts(path, max_sentences):
    """Entities of each type in the first ``max_sentences`` sentences of a CoNLL file, counted from its tags.

    An entity starts at ``B-X``, or at an ``I-X`` that does not continue an ``X`` (IOB1), as conlleval counts.
    """
    counts, sentences, previous, in_sentence = collections.Counter(), 0, "O", False
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            if not fields or fields[0] == "-DOCSTART-":
                if in_sentence:
                    sentences += 1
                    if sentences == max_sentences:
                        break
                in_sentence, previous = False, "O"
                continue
            in_sentence, tag = True, fields[-1]
            if tag.startswith("B-") or (tag.startswith("I-") and previous[2:] != tag[2:]):
                counts[tag[2:]] += 1
            previous = tag
    return dict(counts)


def check_real_data_run(metrics, eval_sentences):
    """What every run on the shared CoNLL-2003 with the packaged MiniLM must show: the predictor agrees with HF's
    pipeline on the first 50 validation sentences (all of them when fewer), and the figures are on the evaluation
    sentences asked for."""
    parity = metrics["hf_pipeline_parity"]
    assert parity["texts"] == min(50, eval_sentences) and parity["same_groups_and_offsets"] and parity["max_score_difference"] < 1e-4
    assert metrics["validation"]["num_sentences"] == eval_sentences and 0 <= metrics["test"]["f1"] <= 1


def check_report_against_metrics(run_dir, metrics, data_dir, eval_sentences):
    """The run folder's report states the run's figures: metrics.json holds what ``main`` returned, each type's
    support is its number of entities in the data files, entity_scores.png and ``pipelines.reports.compare`` show them."""
    with open(run_dir / "metrics.json", encoding="utf-8") as f:
        written = json.load(f)
    drawn = read_plot_data(str(run_dir / "entity_scores.png"))
    for split, file in (("validation", "valid.txt"), ("test", "test.txt")):
        report = written[split]
        assert report == json.loads(json.dumps(metrics[split]))
        supports = {name: values["support"] for name, values in report["per_type"].items() if values["support"]}
        assert supports == entity_counts(os.path.join(data_dir, "conll2003", file), eval_sentences)
        assert report["num_entities"] == sum(supports.values()) and report["num_sentences"] == eval_sentences
        for name, values in [("ALL", report), *report["per_type"].items()]:
            precision, recall, f1 = values["precision"], values["recall"], values["f1"]
            assert f1 == pytest.approx(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
            assert drawn[split][name] == {"precision": precision, "recall": recall, "f1": f1,
                                          "support": values.get("support", report["num_entities"])}
    summary = summarize_run(str(run_dir))
    assert (summary["metric"], summary["test"], summary["validation"]) == (
        "entity F1", written["test"]["f1"], written["validation"]["f1"])


@pytest.mark.integration
@pytest.mark.slow
def test_real_data_smoke_run_matches_the_hf_pipeline(data_dir, tmp_path):
    """`make test`'s short run on the real files: 16 sentences, one epoch, windows of 64, no export (the tiny run
    exports and reloads; the large tier runs 600 sentences)."""
    metrics = pipeline.main(["--data-dir", data_dir, "--output-dir", str(tmp_path / "run"), "--export-dir", "",
                             "--max-train-examples", "16", "--max-eval-examples", "16", "--epochs", "1",
                             "--max-length", "64", "--context", "sentence", "--batch-size", "8"])
    check_real_data_run(metrics, 16)
    assert metrics["train_sentences"] == 16 and "export" not in metrics
    check_report_against_metrics(tmp_path / "run", metrics, data_dir, 16)


@pytest.mark.integration
@pytest.mark.large
def test_real_data_minilm_run_matches_the_hf_pipeline_and_reports_its_figures(data_dir, tmp_path):
    """The shared CoNLL-2003 and the packaged MiniLM: a short run, then the predictor against HF's pipeline.

    Accuracy is not asserted here (600 sentences, one epoch: 75 steps, enough to tag some entities); the
    full run's figures are in docs/results.md. What the run reports is: metrics.json holds the figures ``main``
    returned, each type's support is its number of entities in the data files, the report picture and
    ``pipelines.reports.compare`` show metrics.json's figures.
    """
    run_dir = tmp_path / "run"
    metrics = pipeline.main(["--data-dir", data_dir, "--output-dir", str(run_dir),
                             "--export-dir", str(tmp_path / "saved"), "--max-train-examples", "600",
                             "--max-eval-examples", "120", "--epochs", "1", "--max-length", "128",
                             "--context", "sentence", "--batch-size", "8"])
    check_real_data_run(metrics, 120)
    assert metrics["hf_pipeline_parity"]["entities"] > 0, "the short run should already tag a few entities"
    assert os.path.isdir(metrics["export"]["path"])
    check_report_against_metrics(run_dir, metrics, data_dir, 120)
