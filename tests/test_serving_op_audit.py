"""The op audit of exports against the model server's ops, models.config, and the junk-load checks."""

import os

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers its ops in this process, as a server process would need)
from google.protobuf import text_format
from tensorflow.python.framework import op_def_registry
from tensorflow_serving.config import model_server_config_pb2

from pipelines.bench import junk_load as bench_junk_load
from pipelines.serving import audit_ops, config as serving_config
from serving_modules import PyFunctionModule, copy_export
from tfnlp.serving import ServedModel, export_saved_model
from tfnlp.serving import op_audit
from tfnlp.serving.op_audit import CORE, TENSORFLOW_TEXT, UNKNOWN, audit_saved_model, minimum_release
from tfnlp.training import cli


@pytest.fixture(scope="module")
def saved_models(tiny_exports, tmp_path_factory):
    """A saved_models folder: the two-signature classifier (2 versions), the NER export (both the real serving
    modules around toy models, `conftest.tiny_exports`), a py_function model."""
    root = tmp_path_factory.mktemp("saved_models")
    python = PyFunctionModule()
    for _ in range(2):
        copy_export(tiny_exports["classifier"], str(root / "classifier"))
    copy_export(tiny_exports["ner"], str(root / "ner"))
    # A py_function cannot be warmed up in a server; here it runs (Python is there), so the default warm-up works.
    export_saved_model(python, str(root / "python"), python.signatures())
    return str(root)


@pytest.fixture(scope="module")
def core_ops():
    return op_audit.core_op_names()


# What the audit knows.

def test_core_ops_are_tensorflows_own(core_ops):
    assert {"MatMul", "StatefulPartitionedCall", "UnicodeDecode", "StaticRegexFullMatch"} <= core_ops
    assert not core_ops & op_audit.TEXT_OPS_LIB  # Listed by a process that never loaded tensorflow-text.


def test_the_ops_lib_list_matches_the_installed_tensorflow_text(core_ops):
    # Every op of TF Serving's tensorflow-text target is registered by `import tensorflow_text` (2.20), not by TF.
    assert all(op_def_registry.get(op) is not None for op in op_audit.TEXT_OPS_LIB)
    assert len(op_audit.TEXT_OPS_LIB) == 38
    assert {"FastBertNormalize", "FastWordpieceTokenizeWithOffsets", "TFText>WhitespaceTokenizeWithOffsetsV2"} <= \
        op_audit.TEXT_OPS_LIB


def test_ops_are_classed_core_text_or_unknown(core_ops):
    assert op_audit.classify_op("MatMul", core_ops)[0] == CORE
    assert op_audit.classify_op("FastBertNormalize", core_ops)[0] == TENSORFLOW_TEXT
    for op in ("EagerPyFunc", "PyFunc", "MyCustomOp"):
        assert op_audit.classify_op(op, core_ops)[0] == UNKNOWN


@pytest.mark.parametrize("ops, expected", [
    ({"FastBertNormalize", "FastWordpieceTokenizeWithOffsets", "MatMul"}, "2.12.0"),  # Text 2.12.1 from 2.12.0.
    ({"FastWordpieceTokenizeWithOffsets", "MatMul"}, "2.12.0 or older"),  # Since 2.10.0 (2.8, 2.9 lack it).
    ({"TFText>RoundRobinTrim", "MatMul"}, "2.20.0"),
    ({"MatMul"}, "2.12.0 or older"),
])
def test_oldest_tf_serving_release_of_a_set_of_ops(ops, expected, core_ops):
    assert str(minimum_release(ops, core_ops)) == expected


def test_oldest_release_is_unknown_for_ops_no_server_has_or_core_ops_newer_than_the_baseline(core_ops):
    assert minimum_release({"MyCustomOp"}, core_ops).release is None
    newer = minimum_release({"MatMul", "SegmentMaxV2"}, core_ops | {"SegmentMaxV2"})  # Added after TF 2.12.
    assert newer.release is None and "SegmentMaxV2" in newer.note


def test_the_text_history_tables_agree():
    releases = [release for release, _ in op_audit.SERVING_TEXT_VERSIONS]
    assert releases == sorted(releases, key=op_audit._release_key)
    assert {version for _, version in op_audit.SERVING_TEXT_VERSIONS} <= set(op_audit.TEXT_OPS_ADDED)
    # tensorflow/serving issue 2064: TF Serving 2.10 has FastWordpieceTokenizeWithOffsets but not FastBertNormalize.
    in_2_10 = op_audit.text_ops_in(dict(op_audit.SERVING_TEXT_VERSIONS)["2.10.0"])
    assert "FastWordpieceTokenizeWithOffsets" in in_2_10 and "FastBertNormalize" not in in_2_10


# Audits of exports.

def test_audit_of_a_two_signature_export(saved_models, core_ops):
    audit = audit_saved_model(os.path.join(saved_models, "classifier"), core_ops)
    assert audit.path.endswith(os.path.join("classifier", "2")) and audit.ok
    assert audit.ops_of(TENSORFLOW_TEXT) == ["FastBertNormalize", "FastWordpieceTokenizeWithOffsets"]
    assert {"ResourceGather", "Softmax", "RestoreV2"} <= set(audit.ops_of(CORE))
    # The text signature needs the tensorflow-text ops; the ids signature none: the fallback for older servers.
    assert {"FastBertNormalize", "FastWordpieceTokenizeWithOffsets"} <= audit.signature_ops["serving_default"]
    assert not audit.signature_ops["serving_ids"] & op_audit.TEXT_OPS_LIB
    assert "RestoreV2" in audit.load_ops and "SaveV2" not in audit.load_ops  # Loading restores; it never saves.
    assert str(audit.minimum_release("serving_default")) == "2.12.0"
    assert str(audit.minimum_release("serving_ids")) == "2.12.0 or older"
    assert str(audit.minimum_release()) == "2.12.0"
    report = audit.to_dict()
    assert report["ok"] and report["signatures"]["serving_ids"]["tensorflow_text_ops"] == []
    assert report["ops"][TENSORFLOW_TEXT]["FastBertNormalize"] >= 1


def test_audit_of_a_python_function_export_fails(saved_models, core_ops):
    audit = audit_saved_model(os.path.join(saved_models, "python"), core_ops)
    assert not audit.ok and audit.unknown == ["EagerPyFunc"]
    assert "kernel runs Python" in audit.reasons["EagerPyFunc"]
    assert audit.minimum_release().release is None


def test_audit_ops_command(saved_models, capsys):
    audits = audit_ops.main([os.path.join(saved_models, "classifier"), os.path.join(saved_models, "ner", "1")])
    out = capsys.readouterr().out
    assert [audit.ok for audit in audits] == [True, True]
    assert "tensorflow-text ops_lib (2 ops): FastBertNormalize, FastWordpieceTokenizeWithOffsets" in out
    assert "signature serving_ids: tensorflow-text ops none; oldest TF Serving release 2.12.0 or older" in out
    # The NER export's tokenizer normalizes with core ops (for its offsets); only its WordPiece op is tensorflow-text's.
    assert "tensorflow-text ops_lib (1 ops): FastWordpieceTokenizeWithOffsets" in out
    assert out.count("OK: every op is in the model server") == 2
    # An op the model server lacks: the report, then one error line naming the export and the op; exit status 1.
    with pytest.raises(SystemExit) as info:
        cli.run(audit_ops.main, [os.path.join(saved_models, "python"), "--json"])
    captured = capsys.readouterr()
    assert info.value.code == 1 and '"unknown": {"EagerPyFunc": ' in captured.out
    assert captured.err == (f"error: {os.path.join(saved_models, 'python', '1')}: 1 op(s) the model server does not "
                            "have: EagerPyFunc\n")
    with pytest.raises(SystemExit) as info:
        cli.run(audit_ops.main, [os.path.join(saved_models, "nothing")])
    err = capsys.readouterr().err
    assert info.value.code == 1 and err.startswith("error: ") and "no such folder" in err and err.count("\n") == 1


def test_a_corrupt_saved_model_is_one_line(tmp_path):
    os.makedirs(tmp_path / "m" / "1")
    (tmp_path / "m" / "1" / "saved_model.pb").write_bytes(b"\x00not a proto\xff" * 3)
    with pytest.raises(ValueError, match=r"saved_model.pb is not a SavedModel"):
        audit_saved_model(str(tmp_path / "m"), core_ops=frozenset())


# models.config.

@pytest.mark.large  # pipelines.serving.config end to end is test_serving_config's.
def test_serving_config_has_one_entry_per_model_folder(saved_models, capsys, tmp_path):
    output = serving_config.main(["--saved-models-dir", saved_models])["files"]["models.config"]
    assert output == os.path.join(saved_models, "models.config")
    config = text_format.Parse(open(output).read(), model_server_config_pb2.ModelServerConfig())
    entries = {entry.name: entry for entry in config.model_config_list.config}
    assert sorted(entries) == ["classifier", "ner", "python"]
    assert entries["classifier"].base_path == os.path.abspath(os.path.join(saved_models, "classifier"))
    assert entries["ner"].model_platform == "tensorflow"
    assert "classifier: " in capsys.readouterr().out
    # As the container sees the folder, serving every version.
    serving_config.main(["--saved-models-dir", saved_models, "--base-path", "/models/", "--version-policy", "all",
                         "--output", str(tmp_path / "docker.config")])
    config = text_format.Parse((tmp_path / "docker.config").read_text(), model_server_config_pb2.ModelServerConfig())
    assert [entry.base_path for entry in config.model_config_list.config] == [
        "/models/classifier", "/models/ner", "/models/python"]
    assert all(entry.model_version_policy.HasField("all") for entry in config.model_config_list.config)
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        cli.run(serving_config.main, ["--saved-models-dir", str(tmp_path)])
    assert info.value.code == 1 and capsys.readouterr().err == (
        f"error: {tmp_path}: holds no model folder (<model>/<version>/saved_model.pb)\n")


# Junk.

def test_junk_kinds_cover_the_issue_and_are_reproducible():
    texts = list(bench_junk_load.junk_texts(14, seed=1))
    assert [kind for kind, _ in texts[:7]] == list(bench_junk_load.KINDS)
    assert texts == list(bench_junk_load.junk_texts(14, seed=1))
    by_kind = dict(texts[:7])
    assert len(by_kind["long_100k"].decode()) == 100_000
    with pytest.raises(UnicodeDecodeError):
        [text.decode() for kind, text in texts if kind == "raw_bytes"]
    by_kind["lenient_bytes"].decode()  # Decoded leniently, so valid UTF-8.


@pytest.mark.parametrize("name", ["classifier", "ner"])
def test_junk_through_the_signatures_gives_valid_outputs(saved_models, name):
    model = ServedModel.load(os.path.join(saved_models, name))
    function = model.signature()
    for kind, text in bench_junk_load.junk_texts(35, seed=2):
        outputs = {key: value.numpy() for key, value in function(text=tf.constant([text])).items()}
        assert bench_junk_load.check_outputs(outputs, model.kind(), [text]) == [], kind


def test_the_junk_checks_catch_bad_outputs():
    import numpy as np

    bad = {"probabilities": np.array([[0.5, float("nan")]], np.float32)}
    assert bench_junk_load.check_outputs(bad, "classifier", [b"x"]) == [
        "probabilities not finite", "probabilities not a distribution"]
    offsets = {"num_entities": np.array([1]), "start": np.array([[2]]), "end": np.array([[9]])}
    assert "outside a text of 3 characters" in bench_junk_load.check_outputs(offsets, "ner", [b"abc"])[0]


@pytest.mark.parametrize("name", ["tfnlp.serving.rest", "tfnlp.utils.model_folders", "tfnlp.serving.op_audit"])
def test_docstring_examples_of_the_serving_modules(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
