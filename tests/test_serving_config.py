"""The model server's files as `python -m pipelines.serving.config` writes them, parsed as the server parses them.

``BatchingParameters`` and ``MonitoringConfig`` are not in the tensorflow-serving-api
wheel; `tfnlp.serving.server_config` builds them from their fields, and the first
test holds those fields against the .proto files of TF Serving 2.12.0
(``tensorflow_serving/servables/tensorflow/session_bundle_config.proto``,
``tensorflow_serving/config/monitoring_config.proto``; unchanged up to 2.20.0).
"""

import json
import os
import shutil

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import pytest
from google.protobuf import descriptor, text_format
from tensorflow_serving.config import model_server_config_pb2

from conftest import TINY_VOCAB
from helpers import topic_rows, write_ag_news_folder
from pipelines.serving import config as serving_config
from serving_modules import copy_export, export_tiny_classifier
from tfnlp.serving import ServedModel, op_audit, server_config, throughput, warmup
from tfnlp.serving.tf_2_12_core_ops import TF_2_12_CORE_OPS
from tfnlp.training import cli

FD = descriptor.FieldDescriptor
# name: (number, repeated, type, message type), as in the TF Serving 2.12.0 .proto files.
UPSTREAM_FIELDS = {
    "BatchingParameters": {
        "max_batch_size": (1, False, FD.TYPE_MESSAGE, "google.protobuf.Int64Value"),
        "batch_timeout_micros": (2, False, FD.TYPE_MESSAGE, "google.protobuf.Int64Value"),
        "max_enqueued_batches": (3, False, FD.TYPE_MESSAGE, "google.protobuf.Int64Value"),
        "num_batch_threads": (4, False, FD.TYPE_MESSAGE, "google.protobuf.Int64Value"),
        "thread_pool_name": (5, False, FD.TYPE_MESSAGE, "google.protobuf.StringValue"),
        "allowed_batch_sizes": (6, True, FD.TYPE_INT64, None),
        "pad_variable_length_inputs": (7, False, FD.TYPE_BOOL, None),
        "enable_large_batch_splitting": (8, False, FD.TYPE_MESSAGE, "google.protobuf.BoolValue"),
        "max_execution_batch_size": (9, False, FD.TYPE_MESSAGE, "google.protobuf.Int64Value"),
    },
    "MonitoringConfig": {
        "prometheus_config": (1, False, FD.TYPE_MESSAGE, "tensorflow.serving.PrometheusConfig"),
    },
    "PrometheusConfig": {
        "enable": (1, False, FD.TYPE_BOOL, None),
        "path": (2, False, FD.TYPE_STRING, None),
    },
}
# Every flag of tensorflow_model_server 2.12.0 (model_servers/main.cc).
SERVER_FLAGS = set("""port grpc_socket_path rest_api_port rest_api_num_threads rest_api_timeout_in_ms
    rest_api_enable_cors_support enable_batching allow_version_labels_for_unavailable_models batching_parameters_file
    enable_per_model_batching_parameters model_config_file model_config_file_poll_wait_seconds model_name
    model_base_path num_load_threads num_unload_threads max_num_load_retries load_retry_interval_micros
    file_system_poll_wait_seconds flush_filesystem_caches tensorflow_session_parallelism
    tensorflow_session_config_file tensorflow_intra_op_parallelism tensorflow_inter_op_parallelism
    use_alts_credentials ssl_config_file platform_config_file per_process_gpu_memory_fraction saved_model_tags
    grpc_channel_arguments grpc_max_threads enable_model_warmup num_request_iterations_for_warmup version
    monitoring_config_file remove_unused_fields_from_bundle_metagraph prefer_tflite_model num_tflite_pools
    num_tflite_interpreters_per_pool enable_signature_method_name_check xla_cpu_compilation_enabled
    enable_profiler thread_pool_factory_config_file""".split())
CONLL_TEST = """-DOCSTART- -X- -X- O

John NNP B-NP B-PER
lives VBZ B-VP O
in IN B-PP O
New NNP B-NP B-LOC
York NNP I-NP I-LOC
. . O O

the DT B-NP O
cat NN I-NP O
sat VBD B-VP O
"""


def test_message_types_have_the_fields_of_tf_servings_protos():
    for name, fields in UPSTREAM_FIELDS.items():
        message = server_config.message_class(name).DESCRIPTOR
        assert message.full_name == f"tensorflow.serving.{name}"
        got = {field.name: (field.number, field.is_repeated, field.type,
                            field.message_type.full_name if field.message_type else None)
               for field in message.fields}
        assert got == fields, name


def test_choose_batch_sizes_stops_where_a_larger_batch_gains_less_than_ten_percent():
    def curve(*rates):
        return [{"batch_size": 2 ** i, throughput.SATURATED: rate} for i, rate in enumerate(rates)]

    assert throughput.choose_batch_sizes(curve(10, 18, 30, 40, 41, 40, 39)) == (1, 2, 4, 8)
    assert throughput.choose_batch_sizes(curve(10, 10.5, 10.9)) == (1,)  # Batching does not pay.
    assert throughput.choose_batch_sizes(curve(10, 20, 40)) == (1, 2, 4)  # Still rising at the largest size.
    assert throughput.choose_batch_sizes(curve(10, 20, 15, 25)) == (1, 2, 4, 8)  # A noisy dip does not stop it.
    assert throughput.choose_batch_sizes(curve(10, 20, 40), min_gain=1.5) == (1, 2)  # 40 < 2.5 * 20.
    with pytest.raises(ValueError, match="ascending"):
        throughput.choose_batch_sizes(curve(1, 2)[::-1])


def test_measure_throughput_runs_each_batch_size_on_the_texts():
    calls = []

    def signature(text):
        calls.append(len(text.numpy()))
        return {"n": text}

    curve = throughput.measure_throughput(signature, "text", ["a", "b", "c"], batch_sizes=(1, 4), texts_per_size=6,
                                          rounds=2)
    assert [point["batch_size"] for point in curve] == [1, 4]
    # A first untimed call, then per round and size an untimed call and max(6, 2 * size) texts (whole batches).
    assert calls == [1] + [1] + [1] * 6 + [4] + [4] * 2 + [1] + [1] * 6 + [4] + [4] * 2
    for point in curve:
        assert len(point["passes"]) == len(point["cpu_seconds"]) == 2
        assert point["texts_per_second"] == max(point["passes"]) > 0
        assert point["seconds_per_batch"] == pytest.approx(point["batch_size"] / point["texts_per_second"])
        count = max(6, 2 * point["batch_size"])  # Texts timed per pass.
        assert point[throughput.SATURATED] == pytest.approx(
            os.cpu_count() * count / max(min(point["cpu_seconds"]), 1e-9))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, tiny_exports):
    """serving_config --measure on a classifier (2 versions) and an NER model: (saved_models, data root, result).

    The op audit classes ops against TensorFlow 2.12's list (every core op of these exports is in it) instead
    of listing the installed TensorFlow's in a fresh process, which takes longer than the rest of the run.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(op_audit, "core_op_names", lambda: TF_2_12_CORE_OPS)
        yield run_deployment(tmp_path_factory, tiny_exports)


def run_deployment(tmp_path_factory, tiny_exports):
    root = tmp_path_factory.mktemp("saved_models")
    for _ in range(2):  # The real serving modules' exports (`conftest.tiny_exports`), the classifier twice.
        copy_export(tiny_exports["classifier"], str(root / "classifier"))
    copy_export(tiny_exports["ner"], str(root / "ner"))
    data = tmp_path_factory.mktemp("data")
    write_ag_news_folder(data, topic_rows(8, seed=0), topic_rows(16, seed=1))
    os.makedirs(data / "conll2003")
    (data / "conll2003" / "test.txt").write_text(CONLL_TEST)
    result = serving_config.main(["--saved-models-dir", str(root), "--measure", "--data-dir", str(data),
                                  "--batch-sizes", "1,2,4,8", "--measure-texts", "8", "--num-threads", "3",
                                  "--base-path", "/models"])
    return root, data, result


def read_message(path, name):
    with open(path, encoding="utf-8") as f:
        return server_config.parse_text(f.read(), name)


def test_batching_files_hold_the_measured_choice(deployment):
    root, _, result = deployment
    curves = json.loads((root / serving_config.CURVES_FILE).read_text())
    assert sorted(curves) == ["classifier/2", "ner/1"]
    assert curves["ner/1"]["texts"] == "CoNLL-2003 test" and curves["classifier/2"]["texts"] == "AG News test"
    assert not os.path.exists(root / "classifier" / "1" / "batching_params.pbtxt")  # Not served (latest only).
    for key in curves:
        path = root / key / "batching_params.pbtxt"
        params = read_message(path, "BatchingParameters")
        sizes = throughput.choose_batch_sizes(curves[key]["curve"])
        assert list(params.allowed_batch_sizes) == list(sizes) == result["settings"][key]["allowed_batch_sizes"]
        assert params.max_batch_size.value == sizes[-1]
        assert params.HasField("batch_timeout_micros") and params.batch_timeout_micros.value == 0
        point = next(p for p in curves[key]["curve"] if p["batch_size"] == sizes[-1])
        assert params.max_enqueued_batches.value == max(1, int(point[throughput.SATURATED] / sizes[-1]))
        assert not params.pad_variable_length_inputs and not params.HasField("enable_large_batch_splitting")
        assert not params.HasField("num_batch_threads")  # The shared pool is the global file's.
        text = path.read_text()
        assert ("pad_variable_length_inputs false: serving_ids batches" in text) == key.startswith("classifier")
        for point in curves[key]["curve"]:  # The measured curve is in the comments.
            assert (f"batch {point['batch_size']:>3}: busy {point[throughput.SATURATED]:8.1f} texts/s; one caller "
                    f"{point['texts_per_second']:8.1f} texts/s") in text
    shared = read_message(root / "batching_parameters.txt", "BatchingParameters")
    assert shared.num_batch_threads.value == 3 and shared.thread_pool_name.value == "model_server_batch_threads"
    smallest = min(result["settings"].values(), key=lambda s: s["allowed_batch_sizes"][-1])
    assert list(shared.allowed_batch_sizes) == smallest["allowed_batch_sizes"]


def test_monitoring_and_models_config_parse_as_the_server_parses_them(deployment):
    root, _, _ = deployment
    monitoring = read_message(root / "monitoring.config", "MonitoringConfig")
    assert monitoring.prometheus_config.enable and monitoring.prometheus_config.path == "/monitoring/prometheus/metrics"
    models = text_format.Parse((root / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    assert [(entry.name, entry.base_path) for entry in models.model_config_list.config] == [
        ("classifier", "/models/classifier"), ("ner", "/models/ner")]


def test_command_lines_use_known_flags_the_files_and_the_audited_release(deployment):
    root, _, result = deployment
    # The classifier's tokenizer needs FastBertNormalize (TF Serving 2.12.0 and later); the rest is older.
    assert result["release"] == "2.12.0" and not result["unservable"]
    commands = (root / serving_config.COMMANDS_FILE).read_text()
    server, docker = [block for block in commands.split("\n\n") if not block.startswith("#")]
    assert server.startswith("tensorflow_model_server ")
    assert docker.startswith(f"docker run --rm --cpus=3 -p 8500:8500 -p 8501:8501 -v {root}:/models "
                             "tensorflow/serving:2.12.0 ")
    for command in (server, docker):
        flags = dict(word.strip(" \\").lstrip("-").split("=", 1) for word in command.split()
                     if word.startswith("--") and "=" in word and not word.startswith("--cpus"))
        assert set(flags) <= SERVER_FLAGS
        assert flags["model_config_file"] == "/models/models.config"
        assert flags["batching_parameters_file"] == "/models/batching_parameters.txt"
        assert flags["monitoring_config_file"] == "/models/monitoring.config"
        assert flags["enable_batching"] == flags["enable_per_model_batching_parameters"] == "true"
        assert flags["tensorflow_intra_op_parallelism"] == flags["tensorflow_inter_op_parallelism"] == "3"
    assert "--port=8500" in server and "--rest_api_port=8501" in server and "--port=" not in docker


def test_warmup_requests_cover_each_allowed_batch_size_and_replay(deployment):
    root, _, result = deployment
    for key, settings in result["settings"].items():
        version_dir = str(root / key)
        logs = warmup.read_warmup_requests(version_dir)
        assert len(logs) <= warmup.MAX_WARMUP_RECORDS
        sizes = {}
        for log in logs:
            name = log.predict_log.request.model_spec.signature_name
            sizes.setdefault(name, set()).add(warmup.request_batch_size(log))
        allowed = set(settings["allowed_batch_sizes"])
        expected_signatures = {"serving_default", "serving_ids"} if key.startswith("classifier") else {"serving_default"}
        assert set(sizes) == expected_signatures
        for name, found in sizes.items():
            assert allowed <= found and max(found) <= max(allowed), (key, name, found)
        warmup.replay_warmup_requests(version_dir, ServedModel.load(version_dir).signatures)


def test_a_rerun_reuses_the_curves_and_without_them_takes_the_defaults(deployment, tmp_path, capsys):
    root, _, result = deployment
    again = serving_config.main(["--saved-models-dir", str(root), "--num-threads", "3", "--base-path", "/models"])
    assert again["settings"] == {key: {**value, "warmup_added": 0, "warmup_split": 0}
                                 for key, value in result["settings"].items()}
    copy = tmp_path / "saved_models"
    shutil.copytree(root, copy)
    os.remove(copy / serving_config.CURVES_FILE)
    defaults = serving_config.main(["--saved-models-dir", str(copy)])
    for key, settings in defaults["settings"].items():
        assert settings["allowed_batch_sizes"] == list(serving_config.DEFAULT_BATCH_SIZES) and not settings["measured"]
        text = (copy / key / "batching_params.pbtxt").read_text()
        assert "No throughput measured" in text
        params = server_config.parse_text(text, "BatchingParameters")
        assert params.max_enqueued_batches.value == serving_config.DEFAULT_MAX_ENQUEUED_BATCHES
    assert f"-v {copy}:{copy} " in (copy / serving_config.COMMANDS_FILE).read_text()  # Local paths by default.
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:  # No data to measure with: one line, exit status 1.
        cli.run(serving_config.main, ["--saved-models-dir", str(copy), "--measure", "--data-dir",
                                      str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert info.value.code == 1 and err.startswith("error: ") and err.count("\n") == 1


def test_cover_batch_sizes_splits_larger_requests_and_adds_the_missing_sizes(tmp_path):
    path = export_tiny_classifier(str(tmp_path / "classifier"), TINY_VOCAB)
    before = warmup.read_warmup_requests(path)  # Per signature: 1 text, then all 5 warm-up texts.
    assert sorted(warmup.request_batch_size(log) for log in before) == [1, 1, 5, 5]
    signatures = ServedModel.load(path).signatures
    assert warmup.cover_batch_sizes(path, signatures, [1, 2, 4]) == (2, 2)
    after = warmup.read_warmup_requests(path)
    texts = []
    for name in ("serving_default", "serving_ids"):
        logs = [log for log in after if log.predict_log.request.model_spec.signature_name == name]
        assert sorted(warmup.request_batch_size(log) for log in logs) == [1, 1, 2, 4]  # 5 split as 4 + 1; 2 added.
        if name == "serving_default":
            texts = [text for log in logs[:3] for text in warmup.request_inputs(log.predict_log.request)["text"]]
    assert texts == [text.encode() for text in warmup.WARMUP_TEXTS[:1] + warmup.WARMUP_TEXTS]  # None lost.
    assert warmup.cover_batch_sizes(path, signatures, [1, 2, 4]) == (0, 0)  # Covered: the file stays.
    warmup.replay_warmup_requests(path, signatures)
