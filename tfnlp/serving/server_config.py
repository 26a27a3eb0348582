"""The model server's configuration files and command lines: batching, monitoring, threads, the release to run.

`tensorflow_model_server` reads, besides ``models.config`` (``ModelServerConfig``,
from the ``tensorflow-serving-api`` wheel):

- ``--batching_parameters_file``: a text ``BatchingParameters``; with
  ``--enable_per_model_batching_parameters`` each version folder's own
  ``batching_params.pbtxt`` replaces it, except for the batch thread pool
  (``num_batch_threads``, ``thread_pool_name``), which all models share and is
  read from the global file only; a version without that file is not batched
  (``bundle_factory_util.cc``);
- ``--monitoring_config_file``: a text ``MonitoringConfig`` (Prometheus metrics
  on the REST port).

The wheel ships neither message, so `BatchingParameters`, `MonitoringConfig`
and `PrometheusConfig` are built here from their fields as
``tensorflow_serving/servables/tensorflow/session_bundle_config.proto`` and
``tensorflow_serving/config/monitoring_config.proto`` define them (the same
from TF Serving 2.12.0 to 2.20.0): ``BatchingParameters`` holds its scalar
settings in ``google.protobuf`` wrappers (``max_batch_size { value: 8 }``), so
text they write parses in the model server and text the model server would
reject (a misspelt field, a wrong type) fails to parse here.

Facts of the model server these files rely on (TF Serving 2.12.0 sources):

- a request of more texts than ``max_batch_size`` is refused ("Task size N is
  larger than maximum input batch size") unless ``enable_large_batch_splitting``,
  which stays off: the batch size bounds what one request costs;
- a batch is padded to the next of ``allowed_batch_sizes`` by repeating the
  first text of its last request, and the last allowed size must equal
  ``max_batch_size``;
- requests whose inputs differ in any dimension but the first cannot share a
  batch unless ``pad_variable_length_inputs``, which pads with each tensor's
  first element. Text signatures (``[batch]`` strings) always merge. An ids
  signature (``serving_ids``: ``[batch, length]``) merges only requests of one
  length; padding with the first element would give a BERT attended ``[CLS]``
  tokens instead of masked padding, so it stays off and such clients send ids
  padded to one length;
- warm-up requests run through the batching session, so a warm-up request of
  more texts than ``max_batch_size`` makes the version fail to load.
"""

import functools
import shlex

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2

from tfnlp.serving.op_audit import MinimumRelease

PROMETHEUS_PATH = "/monitoring/prometheus/metrics"  # PrometheusExporter::kPrometheusPath, the server's default.
GRPC_PORT, REST_PORT = 8500, 8501  # The ports of the tensorflow/serving image's entrypoint.
THREAD_POOL_NAME = "model_server_batch_threads"  # The server's own name for the pool when no file sets one.
# The oldest TF Serving release with each flag written here (model_servers/main.cc at each release tag).
FLAG_RELEASES = {"enable_per_model_batching_parameters": "2.11.0"}

_INT64, _STRING, _BOOL = ".google.protobuf.Int64Value", ".google.protobuf.StringValue", ".google.protobuf.BoolValue"
_FDP = descriptor_pb2.FieldDescriptorProto
# (name, number, type) of each field, in the order of the .proto files.
_MESSAGES = {
    "BatchingParameters": (
        ("max_batch_size", 1, _INT64),
        ("batch_timeout_micros", 2, _INT64),
        ("max_enqueued_batches", 3, _INT64),
        ("num_batch_threads", 4, _INT64),
        ("thread_pool_name", 5, _STRING),
        ("enable_large_batch_splitting", 8, _BOOL),
        ("max_execution_batch_size", 9, _INT64),
        ("allowed_batch_sizes", 6, "repeated int64"),
        ("pad_variable_length_inputs", 7, "bool"),
    ),
    "PrometheusConfig": (
        ("enable", 1, "bool"),
        ("path", 2, "string"),
    ),
    "MonitoringConfig": (
        ("prometheus_config", 1, ".tensorflow.serving.PrometheusConfig"),
    ),
}


@functools.lru_cache(maxsize=None)
def _message_classes():
    """The message classes of `_MESSAGES`, in a descriptor pool of their own (with the wrappers they use)."""
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    proto = descriptor_pb2.FileDescriptorProto(name="tfnlp/tensorflow_serving_config.proto",
                                               package="tensorflow.serving", syntax="proto3",
                                               dependency=[wrappers.name])
    for message_name, fields in _MESSAGES.items():
        message = proto.message_type.add(name=message_name)
        for name, number, kind in fields:
            field = message.field.add(name=name, number=number, json_name=_json_name(name))
            field.label = _FDP.LABEL_REPEATED if kind.startswith("repeated ") else _FDP.LABEL_OPTIONAL
            scalar = kind.replace("repeated ", "")
            if scalar.startswith("."):
                field.type, field.type_name = _FDP.TYPE_MESSAGE, scalar
            else:
                field.type = {"int64": _FDP.TYPE_INT64, "bool": _FDP.TYPE_BOOL, "string": _FDP.TYPE_STRING}[scalar]
    pool.Add(proto)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))
            for name in _MESSAGES}


def _json_name(name):
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def message_class(name):
    """The class of ``tensorflow.serving.<name>``: ``BatchingParameters``, ``MonitoringConfig`` or ``PrometheusConfig``.

    Example:
    >>> BatchingParameters = message_class("BatchingParameters")
    >>> text_format.Parse("max_batch_size { value: 8 } allowed_batch_sizes: [4, 8]",
    ...                   BatchingParameters()).max_batch_size.value
    8
    """
    return _message_classes()[name]


def batching_parameters(allowed_batch_sizes=None, *, num_batch_threads=None, max_enqueued_batches=None,
                        batch_timeout_micros=0, thread_pool_name=None):
    """A ``BatchingParameters`` message.

    Args:
        allowed_batch_sizes: sequence of int or None. Ascending; the last is ``max_batch_size``. None
            for a message of thread settings only (the global file beside per-model files).
        num_batch_threads: int or None. Threads running batches, shared by every model (global file).
        max_enqueued_batches: int or None. Batches a model's queue holds before it refuses requests.
        batch_timeout_micros: int. How long a batch waits for more requests (0: none; the batching
            guide's start for CPU servers).
        thread_pool_name: str or None. The shared pool's name (global file).
    """
    message = message_class("BatchingParameters")()
    if allowed_batch_sizes is not None:
        sizes = [int(size) for size in allowed_batch_sizes]
        if not sizes or sizes != sorted(set(sizes)) or sizes[0] < 1:
            raise ValueError(f"allowed_batch_sizes must be ascending positive ints, got {allowed_batch_sizes}")
        message.max_batch_size.value = sizes[-1]
        message.allowed_batch_sizes.extend(sizes)
        message.batch_timeout_micros.value = int(batch_timeout_micros)
        message.pad_variable_length_inputs = False
    if max_enqueued_batches is not None:
        message.max_enqueued_batches.value = int(max_enqueued_batches)
    if num_batch_threads is not None:
        message.num_batch_threads.value = int(num_batch_threads)
    if thread_pool_name is not None:
        message.thread_pool_name.value = thread_pool_name
    return message


def monitoring_config(path=PROMETHEUS_PATH):
    """A ``MonitoringConfig`` message exposing Prometheus metrics at ``path`` on the REST port."""
    message = message_class("MonitoringConfig")()
    message.prometheus_config.enable = True
    message.prometheus_config.path = path
    return message


def to_text(message, comments=()):
    """A message in text format (as the model server parses it), after ``# `` comment lines."""
    header = "".join(f"# {line}".rstrip() + "\n" for line in comments)
    return header + text_format.MessageToString(message)


def parse_text(text, name):
    """Parses a text-format message of class ``name`` (see `message_class`), comments allowed, as the server does."""
    return text_format.Parse(text, message_class(name)())


def max_enqueued_batches(curve_point, queue_seconds):
    """Batches of ``curve_point``'s size that a busy server works off in ``queue_seconds`` (at least 1).

    The queue then never holds more than about ``queue_seconds`` of work: further requests are
    refused at once (UNAVAILABLE, "queue is full") instead of waiting longer.

    Args:
        curve_point: dict. ``batch_size`` and ``saturated_texts_per_second`` (`tfnlp.serving.throughput`).
        queue_seconds: float.
    """
    return max(1, int(queue_seconds * curve_point["saturated_texts_per_second"] / curve_point["batch_size"]))


def oldest_release(minimums):
    """The oldest TF Serving release that runs every export and every flag written here.

    Args:
        minimums: dict of export name to `tfnlp.serving.op_audit.MinimumRelease` (the op audit's answer).

    Returns:
        (release, reasons, unservable): str; the list of what sets it (``"<export or flag>: <release>"``);
        and a dict of export name to why no release runs it (ops no model server links), those
        exports being left out of the answer.

    Example:
    >>> oldest_release({"a": MinimumRelease("2.12.0", False, ""), "b": MinimumRelease("2.20.0", True, "")})[:2]
    ('2.20.0', ['b: 2.20.0'])
    """
    def key(release):
        return tuple(int(part) for part in release.split("."))

    needs, unservable = {}, {}
    for name, minimum in minimums.items():
        if minimum.release is None:
            unservable[name] = minimum.note
        else:
            needs[name] = minimum.release
    for flag, release in FLAG_RELEASES.items():
        needs[f"--{flag}"] = release
    release = max(needs.values(), key=key)
    return release, [f"{name}: {needed}" for name, needed in sorted(needs.items()) if needed == release], unservable


def server_flags(folder, *, num_threads, grpc_port=GRPC_PORT, rest_port=REST_PORT):
    """The model server's flags for the files of ``folder`` (the saved-models folder as the server sees it).

    Batching on with per-model parameters, warm-up on, Prometheus metrics, and TensorFlow's thread
    pools sized to ``num_threads`` cores: TensorFlow sizes them from the machine's cores, which in a
    container limited with ``--cpus`` are the host's, not the container's.
    """
    folder = folder.rstrip("/")
    return [f"--port={grpc_port}", f"--rest_api_port={rest_port}",
            f"--model_config_file={folder}/models.config",
            "--enable_batching=true", f"--batching_parameters_file={folder}/batching_parameters.txt",
            "--enable_per_model_batching_parameters=true",
            f"--monitoring_config_file={folder}/monitoring.config",
            "--enable_model_warmup=true",
            f"--tensorflow_intra_op_parallelism={num_threads}", f"--tensorflow_inter_op_parallelism={num_threads}"]


def model_server_command(flags):
    """``tensorflow_model_server`` with ``flags``, one flag a line."""
    return " \\\n    ".join(["tensorflow_model_server", *map(shlex.quote, flags)])


def docker_command(flags, *, release, local_folder, server_folder, num_threads, grpc_port=GRPC_PORT,
                   rest_port=REST_PORT):
    """``docker run tensorflow/serving:<release>`` with ``local_folder`` mounted at ``server_folder``.

    The image's entrypoint sets ``--port`` and ``--rest_api_port`` (8500, 8501) itself, so those flags
    are left out and the container's ports are published instead; ``--cpus`` gives it the cores the
    thread flags count on.
    """
    rest = [flag for flag in flags if not flag.startswith(("--port=", "--rest_api_port="))]
    words = ["docker", "run", "--rm", f"--cpus={num_threads}", "-p", f"{grpc_port}:{GRPC_PORT}",
             "-p", f"{rest_port}:{REST_PORT}", "-v", f"{local_folder}:{server_folder}",
             f"tensorflow/serving:{release}"]
    return " ".join(map(shlex.quote, words)) + " \\\n    " + " \\\n    ".join(map(shlex.quote, rest))
