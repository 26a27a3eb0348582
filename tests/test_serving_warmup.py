"""Warm-up requests written with every export, and model folders resolved as TF Serving resolves them."""

import os

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from conftest import TINY_VOCAB
from serving_modules import IDS_INPUTS, MAX_LENGTH, copy_export, tiny_classifier
from tfnlp.serving import export_saved_model, warmup
from tfnlp.training import cli
from tfnlp.utils.model_folders import ModelFolderError, list_versions, resolve_model_folder


@pytest.fixture(scope="module")
def parts():
    """`serving_modules.tiny_classifier`: (text model, ids model, tokenizer, its `TextClassifierModule`)."""
    return tiny_classifier(TINY_VOCAB)


@pytest.fixture(scope="module")
def classifier(parts):
    """The two-signature `TextClassifierModule` (``serving_default`` on text, ``serving_ids`` on checked ids)."""
    return parts[3]


@pytest.fixture(scope="module")
def exported(tiny_exports, tmp_path_factory):
    """The two-signature classifier, exported as the fit scripts export it (`conftest.tiny_exports`): a copy."""
    return copy_export(tiny_exports["classifier"], str(tmp_path_factory.mktemp("models") / "classifier"))


def read_records(version_dir):
    """The warm-up file's records, parsed from the raw TFRecord bytes (as TF Serving reads them)."""
    records = []
    for record in tf.data.TFRecordDataset(warmup.warmup_file(version_dir)):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        records.append(log)
    return records


# The warm-up file.

def test_every_export_carries_warmup_requests_for_every_signature(exported):
    assert os.path.isfile(os.path.join(exported, "assets.extra", "tf_serving_warmup_requests"))
    records = read_records(exported)
    assert all(record.WhichOneof("log_type") == "predict_log" for record in records)
    requests = [record.predict_log.request for record in records]
    assert {request.model_spec.name for request in requests} == {"classifier"}
    by_signature = {}
    for request in requests:
        by_signature.setdefault(request.model_spec.signature_name, []).append(request)
    assert sorted(by_signature) == ["serving_default", "serving_ids"]
    # A request of one text, then one of every warm-up text, for each signature.
    texts = [tf.make_ndarray(request.inputs["text"]) for request in by_signature["serving_default"]]
    assert [len(batch) for batch in texts] == [1, len(warmup.WARMUP_TEXTS)]
    assert [text.decode() for text in texts[1]] == list(warmup.WARMUP_TEXTS)
    for request in by_signature["serving_ids"]:
        assert sorted(request.inputs) == sorted(IDS_INPUTS)
        assert {tf.dtypes.as_dtype(request.inputs[key].dtype) for key in IDS_INPUTS} == {tf.int32}


def test_ids_warmup_requests_are_the_exports_own_tokenization_of_the_texts(exported, parts):
    ids_requests = [record.predict_log.request for record in read_records(exported)
                    if record.predict_log.request.model_spec.signature_name == "serving_ids"]
    expected = parts[2](tf.constant(list(warmup.WARMUP_TEXTS)))  # The tokenizer inside the exported text model.
    batch = {key: tf.make_ndarray(ids_requests[1].inputs[key]) for key in IDS_INPUTS}
    for key in IDS_INPUTS:
        np.testing.assert_array_equal(batch[key], expected[key].numpy())
    assert batch["input_ids"].shape[1] <= MAX_LENGTH == parts[3].max_length


def test_replaying_the_warmup_file_runs_each_request_on_the_signature_it_names(exported, classifier):
    loaded = tf.saved_model.load(exported)
    results = warmup.replay_warmup_requests(exported, loaded.signatures)
    assert [name for name, _ in results] == ["serving_default"] * 2 + ["serving_ids"] * 2
    for (name, outputs), record in zip(results, read_records(exported)):
        rows = len(next(iter(tf.make_ndarray(proto) for proto in record.predict_log.request.inputs.values())))
        assert outputs["probabilities"].shape == (rows, 4)
        assert np.isfinite(outputs["probabilities"]).all()
    # Both signatures agree on the same texts: the ids requests are the texts' tokens.
    np.testing.assert_allclose(results[1][1]["probabilities"], results[3][1]["probabilities"], atol=1e-6)


def test_ner_exports_get_text_warmup_requests(tiny_exports):
    path = tiny_exports["ner"]
    results = warmup.replay_warmup_requests(path, tf.saved_model.load(path).signatures)
    assert [outputs["num_tokens"].shape for _, outputs in results] == [(1,), (len(warmup.WARMUP_TEXTS),)]
    # "Angela Merkel met Emmanuel Macron in Paris to discuss the European Union budget.": 7 words in Title case,
    # each a person for the tiny rule.
    assert warmup.WARMUP_TEXTS[1].startswith("Angela Merkel") and results[1][1]["num_entities"][1] == 7


def test_explicit_warmup_inputs_replace_the_defaults(tmp_path, classifier):
    inputs = {"serving_default": [{"text": np.array([b"the cat sat", b"", b"dogs"], dtype=object)}]}
    path = export_saved_model(classifier, str(tmp_path / "m"), classifier.signatures(), warmup_inputs=inputs)
    records = read_records(path)
    assert len(records) == 1
    assert tf.make_ndarray(records[0].predict_log.request.inputs["text"]).tolist() == [b"the cat sat", b"", b"dogs"]


def test_a_warmup_request_its_signature_rejects_stops_the_export_and_leaves_no_version(tmp_path, classifier):
    base = str(tmp_path / "m")
    bad_ids = {key: np.full([1, 4], 10_000 if key == "input_ids" else 1, np.int32) for key in IDS_INPUTS}
    with pytest.raises(tf.errors.InvalidArgumentError):  # Id 10,000 is outside the 31-token vocabulary.
        export_saved_model(classifier, base, classifier.signatures(), warmup_inputs={"serving_ids": [bad_ids]})
    with pytest.raises(ValueError, match="unknown signature 'serving_nope'"):
        export_saved_model(classifier, base, classifier.signatures(), warmup_inputs={"serving_nope": []})
    assert not os.path.exists(base) or os.listdir(base) == []


def test_more_requests_than_tf_serving_reads_are_refused(classifier):
    one = {"text": np.array([b"a"], dtype=object)}
    with pytest.raises(ValueError, match="at most 1000"):
        warmup.build_warmup_requests(classifier.signatures(), {"serving_default": [one] * 1001})


def test_replay_fails_without_a_warmup_file_and_on_a_request_for_an_unknown_signature(exported, tmp_path):
    loaded = tf.saved_model.load(exported)
    with pytest.raises(ValueError, match="no warm-up requests"):
        warmup.replay_warmup_requests(str(tmp_path), loaded.signatures)
    other = tmp_path / "other"
    log = prediction_log_pb2.PredictionLog()
    log.predict_log.request.CopyFrom(warmup.predict_request({"text": np.array([b"x"], dtype=object)}, "serving_x"))
    warmup.write_warmup_requests(str(other), [log])
    with pytest.raises(ValueError, match="record 1: unknown signature 'serving_x'"):
        warmup.replay_warmup_requests(str(other), loaded.signatures)


def test_default_inputs_cover_other_input_kinds():
    module = tf.Module()
    module.f = tf.function(lambda x, n: {"y": tf.reduce_sum(x, axis=-1) * tf.cast(n, tf.float32)},
                           input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x"),
                                            tf.TensorSpec([], tf.int64, name="n")])
    inputs = warmup.default_warmup_inputs({"serving_default": module.f.get_concrete_function()})
    assert [request["x"].shape for request in inputs["serving_default"]] == [(1, 3), (len(warmup.WARMUP_TEXTS), 3)]
    assert inputs["serving_default"][0]["n"].shape == ()
    warmup.build_warmup_requests({"serving_default": module.f.get_concrete_function()}, inputs)


# Model folders.

def make_version(base, version, saved_model=True):
    folder = os.path.join(base, str(version))
    os.makedirs(folder, exist_ok=True)
    if saved_model:
        open(os.path.join(folder, "saved_model.pb"), "wb").close()
    return folder


def test_a_model_folder_resolves_to_its_newest_servable_version(tmp_path):
    base = str(tmp_path / "agnews")
    for version in (1, 2, 10):
        make_version(base, version)
    make_version(base, 11, saved_model=False)  # Being copied: TF Serving would not serve it either.
    os.makedirs(os.path.join(base, ".12.abc.tmp"))
    assert list_versions(base) == [1, 2, 10]
    resolved = resolve_model_folder(base)
    assert (resolved.name, resolved.version, resolved.path) == ("agnews", 10, os.path.join(base, "10"))
    assert resolve_model_folder(base, version=2).path == os.path.join(base, "2")
    version_dir = resolve_model_folder(os.path.join(base, "1"))
    assert (version_dir.name, version_dir.version) == ("agnews", 1)


@pytest.mark.parametrize("setup, version, message", [
    (lambda root: None, None, "no such folder"),
    (lambda root: open(root, "w").close(), None, "not a folder"),
    (lambda root: os.makedirs(root), None, "not a model folder: no saved_model.pb and no numbered version folders"),
    (lambda root: make_version(root, 3, saved_model=False), None, "version folder(s) 3 hold no saved_model.pb"),
    (lambda root: make_version(root, 3), 4, "no version 4 (versions: 3)"),
])
def test_a_bad_model_folder_is_one_line_naming_it(tmp_path, setup, version, message):
    root = str(tmp_path / "model")
    setup(root)
    with pytest.raises(ModelFolderError) as info:
        resolve_model_folder(root, version)
    assert str(info.value).startswith(f"{root}: {message}")
    assert "\n" not in str(info.value)


# The fit scripts' export path.

def test_export_text_classifier_replays_the_warmup_requests_after_reloading(tmp_path):
    import tf_keras

    from tfnlp.models import build_text_vectorizer, build_transformer_classifier
    from tfnlp.serving import export_text_classifier, reload_smoke_check

    tf_keras.utils.set_random_seed(1)
    vectorizer = build_text_vectorizer(["stocks fell", "the team won", "a new chip"], vocabulary_size=20)
    model = build_transformer_classifier(vectorizer, num_classes=4, sequence_length=8, embedding_dim=8, num_heads=2,
                                         intermediate_dim=8)
    path = export_text_classifier(model, ["World", "Sports", "Business", "Sci/Tech"], str(tmp_path / "agnews"))["path"]
    assert [record.predict_log.request.model_spec.name for record in read_records(path)] == ["agnews", "agnews"]
    # A version whose warm-up fails would not load in TF Serving: the reload check fails on it too.
    log = prediction_log_pb2.PredictionLog()
    log.predict_log.request.CopyFrom(warmup.predict_request({"text": np.array([b"x"], dtype=object)}, "serving_x"))
    warmup.write_warmup_requests(path, [log])
    with pytest.raises(ValueError, match="unknown signature 'serving_x'"):
        reload_smoke_check(path, ["stocks fell"])


@pytest.mark.large  # A second export and the warmup_requests command on it.
def test_keeping_one_signatures_warmup_requests_for_servers_without_text_ops(tmp_path, classifier, capsys):
    from pipelines.serving import warmup_requests

    path = export_saved_model(classifier, str(tmp_path / "hf"), classifier.signatures())
    assert [line.split(":")[1].strip() for line in warmup_requests.main([path])] == \
        ["serving_default"] * 2 + ["serving_ids"] * 2
    lines = warmup_requests.main([str(tmp_path / "hf"), "--keep", "serving_ids"])
    assert "kept 2 request(s), dropped 2" in capsys.readouterr().out
    assert lines[0].startswith("1: serving_ids: attention_mask [1, ")
    assert [name for name, _ in warmup.replay_warmup_requests(path, tf.saved_model.load(path).signatures)] == \
        ["serving_ids"] * 2
    with pytest.raises(SystemExit) as info:
        cli.run(warmup_requests.main, [path, "--keep", "serving_x"])
    err = capsys.readouterr().err
    assert info.value.code == 1 and err.startswith("error: ") and "no request for serving_x" in err
