"""TF Serving's request formats (REST row and columnar, gRPC PredictRequest), the loaded model answering them,
and the predict command."""

import base64
import io
import json
import math
import sys

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from pipelines.serving import predict
from serving_modules import CLASS_NAMES, IDS_INPUTS, MAX_LENGTH, copy_export
from tfnlp.serving import ServedModel, rest, warmup
from tfnlp.serving.served_model import CLASSIFIER, NER, signature_kind
from tfnlp.training import cli

TEXT_SPECS = {"text": tf.TensorSpec([None], tf.string, name="text")}
IDS_SPECS = {key: tf.TensorSpec([None, None], tf.int32, name=key) for key in IDS_INPUTS}
PERSON_SCORE = 1 / (1 + 8 * math.exp(-8))  # The tiny NER rule's softmax: logit 4 on B-PER, -4 on the 8 others.


@pytest.fixture(scope="module")
def models(tiny_exports, tmp_path_factory):
    """The tiny classifier and NER exports (`conftest.tiny_exports`: the real serving modules and export functions
    around toy models) under one saved_models folder: {"root": the folder, name: version folder}."""
    root = tmp_path_factory.mktemp("saved_models")
    return {"root": str(root), **{name: copy_export(path, str(root / name)) for name, path in tiny_exports.items()}}


@pytest.fixture(scope="module")
def classifier(models):
    return ServedModel.load(models["root"] + "/classifier")


@pytest.fixture(scope="module")
def ner(models):
    return ServedModel.load(models["root"] + "/ner")


def specs_of(name):
    return {"serving_default": TEXT_SPECS, "serving_ids": IDS_SPECS}[name]


# Requests.

def test_row_requests_of_plain_values_of_objects_and_of_base64():
    for body in ('{"instances": ["a", "b"]}', '{"instances": [{"text": "a"}, {"text": "b"}]}',
                 '{"instances": [{"b64": "YQ=="}, "b"]}', b'{"instances": [{"text": {"b64": "YQ=="}}, {"text": "b"}]}'):
        name, inputs, request_format = rest.parse_predict_body(body, specs_of)
        assert (name, request_format) == ("serving_default", rest.ROW)
        assert inputs["text"].tolist() == [b"a", b"b"]


def test_columnar_requests_and_named_signatures():
    name, inputs, request_format = rest.parse_predict_body({"inputs": ["a", "ü"]}, specs_of)
    assert (name, request_format, inputs["text"].tolist()) == ("serving_default", rest.COLUMNAR, [b"a", "ü".encode()])
    body = {"signature_name": "serving_ids",
            "inputs": {"input_ids": [[2, 8, 3]], "attention_mask": [[1, 1, 1]], "token_type_ids": [[0, 0, 0]]}}
    name, inputs, _ = rest.parse_predict_body(body, specs_of)
    assert name == "serving_ids" and inputs["input_ids"].dtype == np.int32 and inputs["input_ids"].shape == (1, 3)
    rows = {"signature_name": "serving_ids", "instances": [
        {"input_ids": [2, 8, 3], "attention_mask": [1, 1, 1], "token_type_ids": [0, 0, 0]},
        {"input_ids": [2, 9, 0], "attention_mask": [1, 1, 0], "token_type_ids": [0, 0, 0]}]}
    _, inputs, _ = rest.parse_predict_body(rows, specs_of)
    assert inputs["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]


@pytest.mark.parametrize("body, message", [
    ("", "JSON Parse error: The document is empty"),
    ("{", "JSON Parse error"),
    ("[1]", "Is not object"),
    ('{"signature_name": 3, "inputs": []}', "'signature_name' key must be a string value"),
    ('{"instances": ["a"], "inputs": ["a"]}', "expecting only one of 'inputs' or 'instances' keys"),
    ('{"instances": "a"}', "Expecting 'instances' to be an list/array"),
    ('{"instances": []}', "No values in 'instances' array"),
    ('{"predict": ["a"]}', "Missing 'inputs' or 'instances' key"),
    ('{"instances": [1]}', "Failed to process element: 0 of 'instances' list. Error: JSON Value: 1 Type: Number is "
                           "not of expected type: string"),
    ('{"instances": ["a", {"text": "b"}]}', "Expecting value/list but got object at item 1 of input list"),
    ('{"instances": [{"txt": "a"}]}', "JSON object: does not have named input: txt"),
    ('{"instances": [{"b64": "not base64!"}]}', "Unable to base64 decode"),
    ('{"signature_name": "serving_ids", "instances": [[1, 2]]}', "instances is a plain list, but expecting list of "
                                                                 "objects"),
    ('{"signature_name": "serving_ids", "inputs": {"input_ids": [[1]], "attention_mask": [[1]]}}',
     "Missing named input: token_type_ids in 'inputs' object."),
    ('{"signature_name": "serving_ids", "inputs": {"input_ids": [[1, 2], [3]], "attention_mask": [[1]], '
     '"token_type_ids": [[0]]}}', "Encountered list at unexpected size: 1 at level: 1 expected size: 2"),
    ('{"signature_name": "serving_ids", "inputs": {"input_ids": [[1.5]], "attention_mask": [[1]], '
     '"token_type_ids": [[0]]}}', "JSON Value: 1.5 Type: Number is not of expected type: int32"),
    ('{"signature_name": "serving_ids", "inputs": {"input_ids": [[true]], "attention_mask": [[1]], '
     '"token_type_ids": [[0]]}}', "Type: True is not of expected type: int32"),
])
def test_invalid_requests_get_tf_servings_error_messages(body, message):
    with pytest.raises(rest.RestError, match=None) as info:
        rest.parse_predict_body(body, specs_of)
    assert message in str(info.value)


# Responses.

def test_float_notation_is_tf_servings():
    assert rest.format_float(np.float32(0.1)) == "0.1"
    assert rest.format_float(np.float32(1 / 3)) == "0.333333343"  # Six digits do not round-trip: nine.
    assert rest.format_float(np.float32(2)) == "2.0"
    assert rest.format_float(np.float32(1e-5)) == "1e-05"
    assert rest.format_float(np.float32(9_000_000)) == "9e+06"
    assert rest.format_float(1 / 3, float32=False) == "0.33333333333333331"
    assert [rest.format_float(x) for x in (math.nan, math.inf, -math.inf)] == ["NaN", "Infinity", "-Infinity"]
    for value in np.random.default_rng(0).random(200).astype(np.float32):
        assert np.float32(float(rest.format_float(value))) == value


def test_row_and_columnar_responses():
    outputs = {"probabilities": np.array([[0.25, 0.75], [0.5, 0.5]], np.float32), "label_id": np.array([1, 0]),
               "label": np.array([b"b", b"a"], dtype=object), "raw_bytes": np.array([b"\xff", b"x"], dtype=object)}
    row = json.loads(rest.to_json(rest.format_predict_response(outputs, rest.ROW)))
    assert row == {"predictions": [
        {"probabilities": [0.25, 0.75], "label_id": 1, "label": "b", "raw_bytes": {"b64": "/w=="}},
        {"probabilities": [0.5, 0.5], "label_id": 0, "label": "a", "raw_bytes": {"b64": "eA=="}}]}
    columnar = json.loads(rest.to_json(rest.format_predict_response(outputs, rest.COLUMNAR), indent=4))
    assert columnar["outputs"]["probabilities"] == [[0.25, 0.75], [0.5, 0.5]]
    assert columnar["outputs"]["label"] == ["b", "a"]
    # One output: its values alone.
    single = {"label": np.array([b"b", b"a"], dtype=object)}
    assert json.loads(rest.to_json(rest.format_predict_response(single, rest.ROW))) == {"predictions": ["b", "a"]}
    assert json.loads(rest.to_json(rest.format_predict_response(single, rest.COLUMNAR))) == {"outputs": ["b", "a"]}
    with pytest.raises(rest.RestError, match="inconsistent batch size: 3 expecting: 2"):
        rest.format_predict_response({"a": np.zeros([2]), "b": np.zeros([3])}, rest.ROW)
    assert json.loads(rest.to_json({"x": [math.nan]}))["x"][0] != json.loads(rest.to_json({"x": [math.nan]}))["x"][0]


# The loaded model answering requests.

def test_the_kind_of_model_is_read_from_the_signature_outputs(classifier, ner):
    assert classifier.kind() == CLASSIFIER and classifier.kind("serving_ids") == CLASSIFIER
    assert ner.kind() == NER
    assert signature_kind(tf.function(lambda: {"y": tf.constant(1)}).get_concrete_function()) == "other"


def test_rest_predict_answers_row_and_columnar_bodies_with_the_signatures_outputs(classifier):
    texts = ["the cat sat on the mat", "", "new york"]
    expected = classifier.run({"text": np.array([t.encode() for t in texts], dtype=object)})
    row = json.loads(rest.to_json(classifier.rest_predict(json.dumps({"instances": texts}))))
    assert [p["label"] for p in row["predictions"]] == [label.decode() for label in expected["label"]]
    np.testing.assert_allclose([p["probabilities"] for p in row["predictions"]], expected["probabilities"], rtol=1e-6)
    columnar = json.loads(rest.to_json(classifier.rest_predict({"inputs": {"text": texts}})))
    np.testing.assert_allclose(columnar["outputs"]["probabilities"], expected["probabilities"], rtol=1e-6)
    assert columnar["outputs"]["label_id"] == expected["label_id"].tolist()
    ids = {"signature_name": "serving_ids", "inputs": {"input_ids": [[3, 8, 9, 4]], "attention_mask": [[1, 1, 1, 1]],
                                                       "token_type_ids": [[0, 0, 0, 0]]}}
    outputs = json.loads(rest.to_json(classifier.rest_predict(ids)))["outputs"]
    assert set(outputs) == {"probabilities", "label_id", "label", "truncated"}
    assert outputs["truncated"] == [False]  # Ids are never cut (longer ones are refused).


def test_rest_predict_errors(classifier):
    with pytest.raises(rest.RestError, match='Serving signature name: "serving_x" not found'):
        classifier.rest_predict({"signature_name": "serving_x", "instances": ["a"]})
    with pytest.raises(rest.RestError, match="input 'text' has shape"):
        classifier.rest_predict({"inputs": "a scalar"})
    # Ids the serving module's checks reject: the signature fails and the server answers 400 with the check's message.
    for inputs, message in [({"input_ids": [[99999]]}, "input_ids must be < the vocabulary size 31"),
                            ({"attention_mask": [[2]]}, "attention_mask must hold 0 or 1"),
                            ({"input_ids": [[3] * (MAX_LENGTH + 1)], "attention_mask": [[1] * (MAX_LENGTH + 1)],
                              "token_type_ids": [[0] * (MAX_LENGTH + 1)]}, f"sequences must be at most {MAX_LENGTH}")]:
        bad_ids = {"signature_name": "serving_ids",
                   "inputs": {"input_ids": [[8]], "attention_mask": [[1]], "token_type_ids": [[0]], **inputs}}
        with pytest.raises(rest.RestError) as info:
            classifier.rest_predict(bad_ids)
        assert str(info.value).startswith(f"assertion failed: [{message}") and "\n" not in str(info.value)


def test_grpc_predict_request_and_response(classifier):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "classifier"
    request.model_spec.signature_name = "serving_default"
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(["the dog", "a cat"]))
    response = classifier.predict(request)
    assert (response.model_spec.name, response.model_spec.version.value, response.model_spec.signature_name) == \
        ("classifier", 1, "serving_default")
    probabilities = tf.make_ndarray(response.outputs["probabilities"])
    assert probabilities.shape == (2, 4)
    np.testing.assert_allclose(probabilities, classifier.run({"text": np.array([b"the dog", b"a cat"], object)})[
        "probabilities"])
    request.output_filter.append("label")
    assert list(classifier.predict(request).outputs) == ["label"]
    request.output_filter.append("logits")
    with pytest.raises(rest.RestError, match="output tensor alias not found in signature: logits"):
        classifier.predict(request)


# Texts in, one record per text out.

def test_classifier_records(classifier):
    records = list(classifier.predict_texts(["the cat", b"\xff\xfe broken", "new york"], batch_size=2))
    assert [record["text"] for record in records] == ["the cat", "\ufffd\ufffd broken", "new york"]
    for record in records:
        assert record["label"] == CLASS_NAMES[record["label_id"]]
        probabilities = [float(p) for p in record["probabilities"]]
        assert len(probabilities) == 4 and abs(sum(probabilities) - 1) < 1e-5
        assert float(record["score"]) == max(probabilities)


def test_ner_records_are_hf_pipeline_entities(ner):
    (record,) = ner.predict_texts(["John lives in New York ."])
    record = json.loads(rest.to_json(record))
    assert record == {"text": "John lives in New York .", "entities": [
        {"entity_group": "PER", "score": record["entities"][0]["score"], "word": "John", "start": 0, "end": 4},
        {"entity_group": "PER", "score": record["entities"][0]["score"], "word": "New", "start": 14, "end": 17},
        {"entity_group": "PER", "score": record["entities"][0]["score"], "word": "York", "start": 18, "end": 22}],
        "truncated": False}
    assert record["entities"][0]["score"] == pytest.approx(PERSON_SCORE, rel=1e-6)
    assert [r["entities"] for r in ner.predict_texts(["", "no names here"])] == [[], []]
    # Offsets count characters, not bytes: the text's own slices give the words back.
    (record,) = ner.predict_texts(["naïve Zoë met Émile"])
    assert [record["text"][e["start"]:e["end"]] for e in record["entities"]] == ["Zoë", "Émile"]


# The predict command.

def run_predict(capsys, *argv, stdin=None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code = predict.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out


def test_predict_prints_one_json_line_per_text(models, capsys, tmp_path, monkeypatch):
    code, out = run_predict(capsys, "--model", models["root"] + "/classifier", "the cat sat", "new york")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [line["text"] for line in lines] == ["the cat sat", "new york"]
    assert all(line["label"] in CLASS_NAMES and len(line["probabilities"]) == 4 for line in lines)
    # A file: one text per line, blank lines and bad bytes included; the same from standard input.
    path = tmp_path / "texts.txt"
    path.write_bytes(b"the dog\r\n\nbad \xff bytes\nlast line")
    code, out = run_predict(capsys, "--model", models["classifier"], "--file", str(path), "--batch-size", "2")
    from_file = [json.loads(line)["text"] for line in out.splitlines()]
    assert from_file == ["the dog", "", "bad \ufffd bytes", "last line"]
    code, out = run_predict(capsys, "--model", models["classifier"], stdin=path.read_bytes(), monkeypatch=monkeypatch)
    assert [json.loads(line)["text"] for line in out.splitlines()] == from_file


def test_predict_prints_entities_for_ner_models(models, capsys):
    code, out = run_predict(capsys, "--model", models["root"] + "/ner", "Angela met Barack in Berlin")
    (line,) = [json.loads(line) for line in out.splitlines()]
    assert [entity["word"] for entity in line["entities"]] == ["Angela", "Barack", "Berlin"]
    assert line["entities"][2] == {"entity_group": "PER", "score": pytest.approx(PERSON_SCORE, rel=1e-6),
                                   "word": "Berlin", "start": 21, "end": 27}


def test_predict_answers_rest_bodies_as_tf_serving(models, capsys, tmp_path, monkeypatch):
    body = tmp_path / "body.json"
    dog = base64.b64encode(b"dog").decode()
    body.write_text(json.dumps({"instances": [{"text": "the cat"}, {"text": {"b64": dog}}]}))
    code, out = run_predict(capsys, "--model", models["root"] + "/classifier", "--request", str(body))
    response = json.loads(out)
    assert code == 0 and len(response["predictions"]) == 2 and set(response["predictions"][0]) == {
        "probabilities", "label_id", "label", "truncated"}
    code, out = run_predict(capsys, "--model", models["root"] + "/classifier", "--request", "-",
                            stdin=b'{"instances": [7]}', monkeypatch=monkeypatch)
    assert code == 1 and "is not of expected type: string" in json.loads(out)["error"]


@pytest.mark.parametrize("argv, message", [
    (["--model", "{root}/missing", "x"], "{root}/missing: no such folder"),
    (["--model", "{root}", "x"], "{root}: not a model folder"),
    (["--model", "{root}/classifier", "--version", "7", "x"], "{root}/classifier: no version 7 (versions: 1)"),
    (["--model", "{root}/classifier", "--file", "{root}/none.txt"], "{root}/none.txt: cannot read"),
    (["--model", "{root}/classifier", "--signature", "serving_ids", "x"], "signature 'serving_ids' does not take "
                                                                         "texts"),
])
def test_predict_errors_are_one_line(models, capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        cli.run(predict.main, [arg.format(root=models["root"]) for arg in argv])
    text = capsys.readouterr().err
    assert info.value.code == 1 and text.startswith("error: " + message.format(root=models["root"]))
    assert text.count("\n") == 1


def test_warmup_requests_of_an_export_replay_through_the_grpc_path(classifier):
    for log in warmup.read_warmup_requests(classifier.path):
        response = classifier.predict(log.predict_log.request)
        assert tf.make_ndarray(response.outputs["probabilities"]).shape[1] == 4


def test_predict_on_a_broken_version_folder_is_one_line(tmp_path, capsys):
    version = tmp_path / "broken" / "3"
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"not a SavedModel")
    with pytest.raises(SystemExit) as info:
        cli.run(predict.main, ["--model", str(tmp_path / "broken"), "x"])
    text = capsys.readouterr().err
    assert info.value.code == 1 and text.startswith(f"error: {version}: cannot load the SavedModel: ")
    assert text.count("\n") == 1


# The truncated output (the fit scripts' exports all have it): the tiny classifier reads MAX_LENGTH - 2 pieces.

LONG_TEXT = " ".join(["the cat sat on the mat"] * 3)  # 18 pieces.


def test_records_and_rest_answers_carry_truncated(models, classifier, capsys):
    records = list(classifier.predict_texts([LONG_TEXT, "the cat"]))
    assert [record["truncated"] for record in records] == [True, False]
    row = json.loads(rest.to_json(classifier.rest_predict({"instances": [LONG_TEXT, "the cat"]})))
    assert [prediction["truncated"] for prediction in row["predictions"]] == [True, False]
    assert '"truncated": [true]' in rest.to_json(classifier.rest_predict({"inputs": [LONG_TEXT]}))
    code, out = run_predict(capsys, "--model", models["classifier"], LONG_TEXT)
    assert code == 0 and json.loads(out)["truncated"] is True
