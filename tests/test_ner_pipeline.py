"""End-to-end runs of pipelines/conll_ner.py: a tiny random BERT on a tiny CoNLL fixture, and the real data.

Every run passes its sizes through ``main(argv=[...])``: the script's defaults
are the real training configuration and are never relied on here. The casing
variant of a whole run and the longer real-data run are in the large tier
(`make test-all`); the casing export itself is tested in test_ner_serving.py.
"""

import json
import os

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import pytest

from helpers import run_fresh_python
from pipelines import conll_ner as pipeline
from tfnlp.errors import ConfigurationError

SENTENCES = [
    [("John", "B-PER"), ("lives", "O"), ("in", "O"), ("New", "B-LOC"), ("York", "I-LOC"), (".", "O")],
    [("The", "O"), ("cat", "O"), ("sat", "O"), ("on", "O"), ("the", "O"), ("mat", "O"), ("!", "O")],
    [("Hello", "O"), ("John", "B-PER"), (",", "O"), ("the", "O"), ("dog", "O"), ("lives", "O"), ("in", "O"),
     ("York", "B-LOC"), (".", "O")],
    [("NEW", "B-ORG"), ("YORK", "I-ORG"), ("-", "O"), ("Unaffable", "B-MISC"), ("dogs", "O"), ("running", "O")],
    [("John", "B-PER"), ("sat", "O"), ("on", "O"), ("the", "O"), ("mat", "O"), ("in", "O"), ("New", "B-LOC"),
     ("York", "I-LOC"), (".", "O")],
]


def write_conll(path, documents):
    with open(path, "w", encoding="utf-8") as f:
        for sentences in documents:
            f.write("-DOCSTART- -X- -X- O\n\n")
            for sentence in sentences:
                f.writelines(f"{word} NNP B-NP {tag}\n" for word, tag in sentence)
                f.write("\n")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """conll2003/{train,valid,test}.txt: documents of the sentences above (train: 12 documents, 60 sentences)."""
    root = tmp_path_factory.mktemp("data")
    folder = root / "conll2003"
    folder.mkdir()
    write_conll(folder / "train.txt", [SENTENCES[i:] + SENTENCES[:i] for i in range(5)] * 2 + [SENTENCES] * 2)
    write_conll(folder / "valid.txt", [SENTENCES[::-1], SENTENCES[1:3]])
    write_conll(folder / "test.txt", [SENTENCES[2:], SENTENCES[:2]])
    return str(root)


def run(data_root, tiny_bert, output_dir, export_dir, *extra):
    return pipeline.main(["--data-dir", data_root, "--pretrained", tiny_bert, "--output-dir", str(output_dir),
                          "--export-dir", str(export_dir), "--max-length", "16", "--stride", "6",
                          "--batch-size", "4", "--steps-per-execution", "1", *extra])


@pytest.mark.slow
def test_tiny_run_trains_evaluates_exports_and_reloads_without_tfnlp(data_root, tiny_bert, tmp_path):
    metrics = run(data_root, tiny_bert, tmp_path / "run", tmp_path / "saved", "--epochs", "12",
                  "--learning-rate", "3e-3", "--warmup-ratio", "0", "--context", "document")
    with open(tmp_path / "run" / "metrics.json", encoding="utf-8") as f:
        written = json.load(f)
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
    assert export == str(tmp_path / "saved" / "1") and os.path.isfile(os.path.join(export, "saved_model.pb"))
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


@pytest.mark.large  # An option variant of a whole run.
def test_casing_run_exports_the_casing_feature(data_root, tiny_bert, tmp_path):
    metrics = run(data_root, tiny_bert, tmp_path / "run", tmp_path / "saved", "--epochs", "1", "--casing",
                  "--context", "sentence", "--subword-labels", "ignore", "--decoding", "iob")
    assert metrics["validation"]["decoding"] == "iob"
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


def check_real_data_run(metrics, eval_sentences):
    """What every run on the shared CoNLL-2003 with the packaged MiniLM must show: the predictor agrees with HF's
    pipeline on the first 50 validation sentences, and the figures are on the evaluation sentences asked for."""
    parity = metrics["hf_pipeline_parity"]
    assert parity["texts"] == 50 and parity["same_groups_and_offsets"] and parity["max_score_difference"] < 1e-4
    assert metrics["validation"]["num_sentences"] == eval_sentences and 0 <= metrics["test"]["f1"] <= 1


@pytest.mark.integration
@pytest.mark.slow
def test_real_data_smoke_run_matches_the_hf_pipeline(data_dir, tmp_path):
    """`make test`'s short run on the real files: 64 sentences, one epoch, windows of 64, no export (the tiny run
    exports and reloads)."""
    metrics = pipeline.main(["--data-dir", data_dir, "--output-dir", str(tmp_path / "run"), "--export-dir", "",
                             "--max-train-examples", "64", "--max-eval-examples", "50", "--epochs", "1",
                             "--max-length", "64", "--context", "sentence", "--batch-size", "8"])
    check_real_data_run(metrics, 50)
    assert metrics["train_sentences"] == 64 and "export" not in metrics


@pytest.mark.integration
@pytest.mark.large
def test_real_data_minilm_run_matches_the_hf_pipeline(data_dir, tmp_path):
    """The shared CoNLL-2003 and the packaged MiniLM: a short run, then the predictor against HF's pipeline.

    Accuracy is not asserted here (600 sentences, one epoch: 75 steps, enough to tag some entities); the
    full run's figures are in the README.
    """
    metrics = pipeline.main(["--data-dir", data_dir, "--output-dir", str(tmp_path / "run"),
                             "--export-dir", str(tmp_path / "saved"), "--max-train-examples", "600",
                             "--max-eval-examples", "120", "--epochs", "1", "--max-length", "128",
                             "--context", "sentence", "--batch-size", "8"])
    check_real_data_run(metrics, 120)
    assert metrics["hf_pipeline_parity"]["entities"] > 0, "the short run should already tag a few entities"
    assert os.path.isdir(metrics["export"]["path"])
