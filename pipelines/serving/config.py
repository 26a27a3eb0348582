"""Write everything TF Serving needs to serve saved_models/: models, batching, monitoring, and the command lines.

    python -m pipelines.serving.config --measure                 # measure each export's batch throughput here
    python -m pipelines.serving.config                           # reuse those measurements (or the defaults)
    python -m pipelines.serving.config --base-path /models       # paths as the tensorflow/serving container sees them

A model folder is a sub-folder holding at least one numbered version with a
saved_model.pb (TF Serving's layout: saved_models/<model>/<version>/). Written
into saved_models/:

- models.config: one entry per model folder, serving its newest version
  (--version-policy all: every version);
- <model>/<version>/batching_params.pbtxt for each served version: the batch
  sizes worth batching for that export, from its throughput curve, which
  --measure measures here (texts per second through serving_default at batch
  sizes 1, 2, 4, ..., 64 on AG News or CoNLL-2003 test texts; stored in
  throughput_curves.json and reused by later runs); without a measurement,
  DEFAULT_BATCH_SIZES. The curve is written in the file as comments;
- batching_parameters.txt: the batch thread pool all models share (one thread
  per core) and, for a server started without per-model parameters, the
  smallest of the models' batch settings;
- monitoring.config: Prometheus metrics on the REST port;
- serving_commands.txt: the tensorflow_model_server and docker run command
  lines (also printed), the docker image being the oldest TF Serving release
  that runs every served export (the op audit, tfnlp.serving.op_audit).

Each served version's warm-up requests are extended to one request of each
allowed batch size per signature (a request larger than the largest is split:
with batching on it would fail, and the version with it).
"""

import dataclasses
import json
import os
import sys

from google.protobuf import text_format

from tfnlp.errors import ConfigurationError
from tfnlp.training import cli, field, parse_arguments
from tfnlp.utils import atomic_write_json, atomic_write_text
from tfnlp.utils.model_folders import ModelFolderError, find_model_folders

CURVES_FILE = "throughput_curves.json"
COMMANDS_FILE = "serving_commands.txt"
# Without a measured curve: the sizes the MiniLM exports' curves chose on this project's 2-core machine
# (README, Serving: 2 for the HF classifier, 4 for NER), and a queue of about 1 s of their work there.
DEFAULT_BATCH_SIZES = (1, 2, 4)
DEFAULT_MAX_ENQUEUED_BATCHES = 16


def build_config(models, base_path, version_policy="latest"):
    """A ``ModelServerConfig`` proto with one ``model_config_list`` entry per ``(name, folder, versions)``.

    Args:
        models: list of (name, folder, versions), as `find_model_folders` returns them.
        base_path: str or None. The folder that holds the model folders as the server sees it (``/models``
            in the container); None for each folder's absolute path here.
        version_policy: str. ``latest`` (the newest version) or ``all``.
    """
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    for name, folder, _ in models:
        entry = config.model_config_list.config.add()
        entry.name = name
        entry.base_path = os.path.abspath(folder) if base_path is None else f"{base_path.rstrip('/')}/{name}"
        entry.model_platform = "tensorflow"
        if version_policy == "all":
            entry.model_version_policy.all.SetInParent()
        elif version_policy != "latest":
            raise ValueError(f"version_policy must be 'latest' or 'all', got {version_policy!r}")
    return config


def served_versions(models, version_policy):
    """``(name, version, version folder)`` of every version the server will load."""
    return [(name, version, os.path.join(folder, str(version))) for name, folder, versions in models
            for version in (versions if version_policy == "all" else versions[-1:])]


def read_curves(path):
    """The stored throughput curves (``{"<model>/<version>": {...}}``), empty if there are none yet."""
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            curves = json.load(f)
    except (OSError, ValueError) as e:
        raise ModelFolderError(path, f"not a throughput curves file ({e})") from e
    if not isinstance(curves, dict):
        raise ModelFolderError(path, "not a throughput curves file (expected a JSON object)")
    return curves


def measure(version_dir, args):
    """Loads a version and measures its ``serving_default`` throughput curve; returns (record, loaded model)."""
    from tfnlp.serving import throughput
    from tfnlp.serving.served_model import ServedModel

    model = ServedModel.load(version_dir)
    specs = model.input_specs("serving_default")
    if len(specs) != 1 or next(iter(specs.values())).dtype.name != "string":
        raise ConfigurationError(f"{version_dir}: serving_default does not take texts (inputs {sorted(specs)})")
    texts, source = throughput.benchmark_texts(model.kind(), args.data_dir or None)
    curve = throughput.measure_throughput(model.signature("serving_default"), next(iter(specs)), texts,
                                          batch_sizes=args.batch_size_list(), texts_per_size=args.measure_texts)
    record = {"curve": curve, "texts": source, "machine": throughput.machine_description()}
    return record, model


def batch_settings(record, args):
    """(allowed batch sizes, max_enqueued_batches, comment lines) from a curve record, or the defaults."""
    from tfnlp.serving import server_config, throughput

    if record is None:
        return DEFAULT_BATCH_SIZES, DEFAULT_MAX_ENQUEUED_BATCHES, [
            "No throughput measured for this version (python -m pipelines.serving.config --measure): "
            f"the defaults, batch sizes {', '.join(map(str, DEFAULT_BATCH_SIZES))} (the MiniLM exports' choice on "
            f"a 2-core machine), max_enqueued_batches {DEFAULT_MAX_ENQUEUED_BATCHES}."]
    curve = record["curve"]
    sizes = throughput.choose_batch_sizes(curve, args.min_gain)
    point = next(p for p in curve if p["batch_size"] == sizes[-1])
    queue = server_config.max_enqueued_batches(point, args.queue_seconds)
    machine = record["machine"]
    lines = [f"Throughput of serving_default measured on {machine['date']}, {machine['cores']} cores "
             f"({machine['cpu']}; load average {machine['load_average'][0]}), {record['texts']} texts; busy: "
             "cores / CPU seconds per text (the rate with every core busy, which other processes hardly change), "
             "one caller: wall time of consecutive batches:"]
    lines += [f"  batch {p['batch_size']:>3}: busy {p[throughput.SATURATED]:8.1f} texts/s; one caller "
              f"{p['texts_per_second']:8.1f} texts/s, {1000 * p['seconds_per_batch']:8.1f} ms per batch"
              for p in curve]
    lines += [f"max_batch_size {sizes[-1]}: no larger batch gains {args.min_gain:.0%} more texts/s (busy).",
              f"max_enqueued_batches {queue}: about {args.queue_seconds:g} s of work at "
              f"{point[throughput.SATURATED]:.1f} texts/s; further requests are refused (UNAVAILABLE) "
              "instead of waiting longer."]
    return sizes, queue, lines


def per_model_comments(name, version, sizes, lines, ids_signatures):
    comments = [f"TF Serving batching parameters of {name} version {version} (--enable_batching "
                "--enable_per_model_batching_parameters), written by python -m pipelines.serving.config.", *lines,
                f"A request of more than {sizes[-1]} texts is refused (\"Task size ... is larger than maximum input "
                "batch size\"): send at most that many.",
                "A batch is padded to the next allowed size by repeating one of its texts.",
                "batch_timeout_micros 0 (the empty wrapper): a batch takes the requests already waiting, none is "
                "held back (the batching guide's start for CPU servers; try 1000-10000 under heavy load)."]
    if ids_signatures:
        comments.append(f"pad_variable_length_inputs false: {', '.join(ids_signatures)} batches only requests of one "
                        "length; pad ids to one length in the client (the server would pad with the first id, "
                        "which a BERT attends to).")
    return comments


def ids_signatures(model):
    """The signatures of a loaded version whose inputs have more than the batch dimension (token ids)."""
    return sorted(name for name in model.signatures
                  if any(spec.shape.rank != 1 for spec in model.input_specs(name).values()))


@dataclasses.dataclass
class ServingConfigArguments:
    """Which exports, how the server sees them, and how their batch throughput is measured."""

    saved_models_dir: str = field("saved_models", "Folder of the model folders.")
    output: str | None = field(None, "Where to write models.config (None: <saved-models-dir>/models.config).")
    base_path: str | None = field(None, "The saved-models folder as the model server sees it, e.g. /models in the "
                                        "tensorflow/serving container (None: its absolute path here).")
    version_policy: str = field("latest", "Serve each model's newest version, or every version.",
                                choices=("latest", "all"))
    measure: bool = field(False, f"Measure each served version's throughput curve here (stored in {CURVES_FILE}).")
    data_dir: str = field("", "Folder holding ag_news/ and conll2003/ for --measure ('' = $TFNLP_DATA_DIR).")
    batch_sizes: str = field("1,2,4,8,16,32,64", "Batch sizes --measure times.")
    measure_texts: int = field(128, "Texts timed per batch size and pass.")
    min_gain: float = field(0.10, "Throughput a larger batch must add to be allowed (a fraction).")
    num_threads: int = field(os.cpu_count(), "Cores the server gets: batch threads and TensorFlow's thread pools.")
    queue_seconds: float = field(1.0, "Work a model's batch queue may hold, in seconds at the measured throughput.")

    def __post_init__(self):
        sizes = self.batch_size_list()
        if list(sizes) != sorted(set(sizes)) or sizes[0] < 1:
            raise ValueError("--batch-sizes must be ascending positive ints")
        if self.measure_texts < 1 or self.num_threads < 1 or self.queue_seconds <= 0 or self.min_gain < 0:
            raise ValueError("--measure-texts and --num-threads must be at least 1, --queue-seconds above 0, "
                             "--min-gain at least 0")

    def batch_size_list(self):
        """--batch-sizes as a tuple of int."""
        try:
            return tuple(int(size) for size in self.batch_sizes.split(","))
        except ValueError:
            raise ValueError(f"--batch-sizes must be comma-separated ints, got {self.batch_sizes!r}") from None


def main(argv=None):
    (args,) = parse_arguments(__doc__, ServingConfigArguments, argv=argv)
    with cli.user_errors(ValueError):  # A library check on an export or its warm-up file (the message names it).
        return write_files(args)


def write_files(args):
    """Writes every file (see the module docstring); returns a dict of what was written and decided."""
    import tensorflow as tf

    from tfnlp.serving import server_config, warmup
    from tfnlp.serving.op_audit import audit_saved_model
    from tfnlp.serving.served_model import ServedModel, op_error_message

    root = args.saved_models_dir
    models = find_model_folders(root)
    if not models:
        raise ModelFolderError(root, "holds no model folder (<model>/<version>/saved_model.pb)")
    server_folder = (args.base_path or os.path.abspath(root)).rstrip("/")
    versions = served_versions(models, args.version_policy)
    release, release_reasons, unservable = server_config.oldest_release(
        {f"{name}/{version}": audit_saved_model(path).minimum_release() for name, version, path in versions})
    warnings = [f"WARNING: {key}: no TF Serving release runs it ({why}); the server will fail to load it: remove "
                "it from the folder (or from models.config)" for key, why in unservable.items()]

    curves_path = os.path.join(root, CURVES_FILE)
    curves = read_curves(curves_path)
    settings = {}
    for name, version, path in versions:
        key, loaded = f"{name}/{version}", None
        if args.measure:
            measured = ", ".join(map(str, args.batch_size_list()))
            print(f"{key}: measuring serving_default at batch sizes {measured} ...", flush=True)
            curves[key], loaded = measure(path, args)
            atomic_write_json(curves_path, curves)
        loaded = loaded or ServedModel.load(path)
        sizes, queue, lines = batch_settings(curves.get(key), args)
        atomic_write_text(os.path.join(path, "batching_params.pbtxt"), server_config.to_text(
            server_config.batching_parameters(sizes, max_enqueued_batches=queue),
            per_model_comments(name, version, sizes, lines, ids_signatures(loaded))))
        try:
            added, split = warmup.cover_batch_sizes(path, loaded.signatures, sizes)
        except tf.errors.OpError as e:
            raise ConfigurationError(f"{path}: a warm-up request of the allowed batch sizes fails: "
                                     f"{op_error_message(e)}") from e
        settings[key] = {"allowed_batch_sizes": list(sizes), "max_enqueued_batches": queue,
                         "measured": key in curves, "warmup_added": added, "warmup_split": split}
        print(f"{key}: allowed batch sizes {', '.join(map(str, sizes))}, max_enqueued_batches {queue} "
              f"({'measured curve' if key in curves else 'defaults'}); warm-up: {added} request(s) added, "
              f"{split} split to at most {sizes[-1]} texts")
        if key in curves:
            print("\n".join("   " + line.strip() for line in lines[1:-2]))  # The curve.

    smallest = min(settings.values(), key=lambda s: (s["allowed_batch_sizes"][-1], s["max_enqueued_batches"]))
    global_text = server_config.to_text(
        server_config.batching_parameters(
            smallest["allowed_batch_sizes"], max_enqueued_batches=smallest["max_enqueued_batches"],
            num_batch_threads=args.num_threads, thread_pool_name=server_config.THREAD_POOL_NAME),
        ["TF Serving batching parameters for every model (--enable_batching --batching_parameters_file), written "
         "by python -m pipelines.serving.config.",
         f"num_batch_threads {args.num_threads}: one thread per core, shared by all models.",
         "With --enable_per_model_batching_parameters only the thread pool is read from here; each version's "
         "batching_params.pbtxt gives the rest.",
         "Without it, these settings apply to every model: the smallest max_batch_size and queue of the served "
         "versions (" + ", ".join(f"{key}: {s['allowed_batch_sizes'][-1]}" for key, s in settings.items()) + ")."])
    files = {
        "models.config": args.output or os.path.join(root, "models.config"),
        "batching_parameters.txt": os.path.join(root, "batching_parameters.txt"),
        "monitoring.config": os.path.join(root, "monitoring.config"),
        COMMANDS_FILE: os.path.join(root, COMMANDS_FILE),
    }
    atomic_write_text(files["models.config"],
                      text_format.MessageToString(build_config(models, args.base_path, args.version_policy)))
    atomic_write_text(files["batching_parameters.txt"], global_text)
    atomic_write_text(files["monitoring.config"], server_config.to_text(
        server_config.monitoring_config(),
        [f"Prometheus metrics at http://<host>:{server_config.REST_PORT}{server_config.PROMETHEUS_PATH} "
         "(--monitoring_config_file; needs --rest_api_port)."]))

    flags = server_config.server_flags(server_folder, num_threads=args.num_threads)
    if args.output:  # models.config written elsewhere: point the server at it.
        flags = [f"--model_config_file={os.path.abspath(args.output)}" if flag.startswith("--model_config_file=")
                 else flag for flag in flags]
    commands = (
        "".join(f"# {warning}\n" for warning in warnings)
        + f"# The oldest TF Serving release that runs every served export and flag: {release} "
        f"(set by {'; '.join(release_reasons)}; python -m pipelines.serving.audit_ops).\n"
        f"# The files are read at {server_folder}/; the docker container mounts {os.path.abspath(root)} there.\n"
        f"# {args.num_threads} cores: --cpus for docker, TensorFlow's thread pools and the batch threads.\n\n"
        + server_config.model_server_command(flags) + "\n\n"
        + server_config.docker_command(flags, release=release, local_folder=os.path.abspath(root),
                                       server_folder=server_folder, num_threads=args.num_threads) + "\n")
    atomic_write_text(files[COMMANDS_FILE], commands)
    for name, folder, found in models:
        print(f"{name}: {folder} (versions {', '.join(map(str, found))})")
    print(f"wrote {', '.join(files.values())} ({len(models)} models) and {len(settings)} batching_params.pbtxt")
    print(commands)
    for warning in warnings:
        print(warning, file=sys.stderr)
    return {"files": files, "settings": settings, "release": release, "unservable": unservable, "flags": flags,
            "commands": commands}


if __name__ == "__main__":
    cli.run(main)
