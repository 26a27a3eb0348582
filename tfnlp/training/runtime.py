"""The shared training runtime: distribution strategy, precision, XLA, seeds, callbacks, resume.

Every fit script builds one `Runtime` from its `RuntimeArguments`, builds and
compiles its model inside ``runtime.scope()`` with ``runtime.compile_options()``,
and trains with ``runtime.callbacks(...)``. Datasets given to ``fit`` must have
a known cardinality when ``--steps-per-execution`` is above 1
(`tfnlp.data.batching.with_known_cardinality`). Running a script again with the same
``--output-dir`` resumes an interrupted run from its last completed epoch
(`tf_keras.callbacks.BackupAndRestore`).
"""

import copy
import csv
import dataclasses
import json
import logging
import os
import time

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf
import tf_keras

from tfnlp.training.arguments import field
from tfnlp.utils import atomic_write_json

logger = logging.getLogger(__name__)

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


@dataclasses.dataclass
class RuntimeArguments:
    """Where and how to train: output folder, distribution, precision, compilation, seed."""

    output_dir: str = field("runs/run", "Folder for config.json, checkpoints, TensorBoard logs and metrics.json. "
                                        "Running again with the same folder resumes an interrupted run.")
    strategy: str = field("default", "tf.distribute strategy: default (one device), mirrored (all local GPUs, "
                                     "or CPU), multi_worker (reads TF_CONFIG), tpu.", choices=STRATEGIES)
    tpu: str = field("", "TPU name or address for --strategy tpu ('' = the local/Colab TPU).")
    mixed_precision: bool = field(False, "Compute in float16 (bfloat16 on TPU) with float32 variables.")
    jit_compile: bool = field(False, "Compile the train step with XLA.")
    steps_per_execution: int = field(32, "Training steps run per call into the TF graph (fewer Python round "
                                        "trips: faster for small models, and needed to keep TPUs busy).")
    seed: int = field(42, "Seed for Python, NumPy and TensorFlow (data order, initialisation, dropout).")
    deterministic_ops: bool = field(False, "Make TensorFlow ops deterministic (slower; bit-exact repeated runs).")

    def __post_init__(self):
        if not self.output_dir:
            raise ValueError("--output-dir must not be empty")
        if self.steps_per_execution < 1:
            raise ValueError("--steps-per-execution must be at least 1")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}, not {self.strategy!r}")
        if self.strategy == "multi_worker" and not os.environ.get("TF_CONFIG"):
            raise ValueError("--strategy multi_worker needs the TF_CONFIG environment variable "
                             "(cluster spec and this worker's task)")


def create_strategy(name, tpu=""):
    """Returns the `tf.distribute.Strategy` called ``name`` (one of `STRATEGIES`).

    Args:
        name: str. "default", "mirrored", "multi_worker" or "tpu".
        tpu: str. TPU name/address for "tpu" ('' = local TPU, as in Colab).
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}")


class Runtime:
    """Sets up seeds, precision and the strategy once; builds callbacks and writes run files.

    Args:
        args: RuntimeArguments.

    Example:
    >>> runtime = Runtime(RuntimeArguments(output_dir="/tmp/tfnlp-doc-run"))
    >>> with runtime.scope():
    ...     model = tf_keras.Sequential([tf_keras.layers.Dense(1)])
    """

    def __init__(self, args):
        self.args = args
        tf_keras.utils.set_random_seed(args.seed)
        if args.deterministic_ops:
            tf.config.experimental.enable_op_determinism()
        self.strategy = create_strategy(args.strategy, args.tpu)
        policy = "float32"
        if args.mixed_precision:
            policy = "mixed_bfloat16" if args.strategy == "tpu" else "mixed_float16"
        # Set even when float32: the policy is process-global, and an earlier run may have left a mixed one.
        tf_keras.mixed_precision.set_global_policy(policy)
        self.compute_dtype = policy.split("_")[-1]
        os.makedirs(args.output_dir, exist_ok=True)

    def reseed(self):
        """Sets the seeds of Python, NumPy and TensorFlow again, as at construction.

        Call it after work that may or may not draw random numbers, such as
        building a teacher model that a cached run skips, so that the model
        built next is initialised the same either way.
        """
        tf_keras.utils.set_random_seed(self.args.seed)

    def compile_options(self):
        """Keyword arguments for ``model.compile``: XLA and steps per execution, as configured."""
        return {"jit_compile": self.args.jit_compile, "steps_per_execution": self.args.steps_per_execution}

    @property
    def num_replicas(self):
        return self.strategy.num_replicas_in_sync

    @property
    def is_chief(self):
        """True on the worker that writes files (always, unless multi-worker)."""
        resolver = getattr(self.strategy, "cluster_resolver", None)
        if resolver is None or not getattr(resolver, "task_type", None):
            return True
        if resolver.task_type == "chief":
            return True
        # Worker 0 writes only when the cluster has no separate chief task.
        has_chief = "chief" in resolver.cluster_spec().as_dict()
        return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief

    def scope(self):
        """The strategy scope: build and compile models inside it."""
        return self.strategy.scope()

    def stage(self, name):
        """A Runtime for one stage of a multi-stage run: same strategy and settings, files in ``<output_dir>/<name>``.

        Each stage gets its own checkpoints, backup (resume), logs and history.
        """
        stage = copy.copy(self)
        stage.args = dataclasses.replace(self.args, output_dir=self.path(name))
        os.makedirs(stage.args.output_dir, exist_ok=True)
        return stage

    def path(self, *parts):
        return os.path.join(self.args.output_dir, *parts)

    def write_config(self, **sections):
        """Logs the run's configuration and writes it to ``<output_dir>/config.json``.

        Args:
            **sections: dataclass instances or dicts, one per argument group.
        """
        config = {name: dataclasses.asdict(value) if dataclasses.is_dataclass(value) else dict(value)
                  for name, value in sections.items()}
        config["environment"] = {
            "tensorflow": tf.__version__, "tf_keras": tf_keras.__version__, "tfnlp": tfnlp.__version__,
            "strategy": type(self.strategy).__name__, "replicas": self.num_replicas,
            "compute_dtype": self.compute_dtype,
        }
        logger.info("configuration:\n%s", json.dumps(config, indent=2, sort_keys=True, default=str))
        if self.is_chief:
            atomic_write_json(self.path("config.json"), config)
        return config

    def callbacks(self, examples_per_epoch, monitor="val_accuracy", mode="max", early_stopping_patience=None,
                  extra=()):
        """The callbacks every pipeline uses, built in one place.

        - `BackupAndRestore` in ``<output_dir>/backup``: a run killed mid-training resumes from its last
          completed epoch when started again with the same output folder;
        - `ModelCheckpoint` of the best weights (by ``monitor``) in ``<output_dir>/checkpoints/best``;
        - `TensorBoard` logs in ``<output_dir>/logs``;
        - `CSVLogger` (appending, so a resumed run keeps its history) in ``<output_dir>/history.csv``;
        - `Throughput`: training examples per second, logged per epoch;
        - optional `EarlyStopping` restoring the best weights.

        Args:
            examples_per_epoch: int. Training examples in one epoch (for the throughput figure).
            monitor: str. Metric the best checkpoint (and early stopping) follow.
            mode: str. "max" or "min" for ``monitor``.
            early_stopping_patience: int or None. Epochs without improvement before stopping.
            extra: iterable of further callbacks, appended last.
        """
        # Throughput comes first: it adds its figures to the epoch logs that the later callbacks write.
        callbacks = [
            Throughput(examples_per_epoch),
            tf_keras.callbacks.BackupAndRestore(self.path("backup")),
            tf_keras.callbacks.ModelCheckpoint(self.path("checkpoints", "best"), monitor=monitor, mode=mode,
                                               save_best_only=True, save_weights_only=True,
                                               initial_value_threshold=self._resumed_best(monitor, mode)),
            tf_keras.callbacks.TensorBoard(self.path("logs")),
            tf_keras.callbacks.CSVLogger(self.path("history.csv"), append=True),
        ]
        if early_stopping_patience:
            callbacks.append(tf_keras.callbacks.EarlyStopping(monitor=monitor, mode=mode,
                                                              patience=early_stopping_patience,
                                                              restore_best_weights=True))
        callbacks.extend(extra)
        return callbacks

    def _resumed_best(self, monitor, mode):
        """The best ``monitor`` value of the interrupted run being resumed (None when starting afresh).

        `ModelCheckpoint` forgets its best value on restart: without it, the first resumed epoch would
        replace the best checkpoint even when worse. Read from the current run's rows of history.csv
        (those from its last epoch 0 on).
        """
        history = self.path("history.csv")
        if not tf.train.latest_checkpoint(self.path("backup", "chief")) or not os.path.exists(history):
            return None
        with open(history, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        start = max((i for i, row in enumerate(rows) if row.get("epoch") == "0"), default=0)
        values = [float(row[monitor]) for row in rows[start:] if row.get(monitor)]
        if not values:
            return None
        return max(values) if mode == "max" else min(values)

    def restore_best(self, model):
        """Loads the best checkpoint written by `callbacks` into ``model``, if there is one."""
        prefix = self.path("checkpoints", "best")
        if tf.train.latest_checkpoint(os.path.dirname(prefix)) or os.path.exists(prefix + ".index"):
            model.load_weights(prefix).expect_partial()
            return True
        return False


class Throughput(tf_keras.callbacks.Callback):
    """Records each epoch's training time and training examples per second.

    The clock stops where validation starts, so the figure is training speed
    only. Adds ``train_seconds`` and ``examples_per_second`` to the epoch logs
    (so they reach TensorBoard, the CSV log and the History) and keeps lists.

    Args:
        examples_per_epoch: int. Training examples in one epoch.
    """

    def __init__(self, examples_per_epoch):
        super().__init__()
        if examples_per_epoch <= 0:
            raise ValueError(f"examples_per_epoch must be positive, got {examples_per_epoch}")
        self.examples_per_epoch = int(examples_per_epoch)
        self.train_seconds = []
        self.examples_per_second = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._train_end = None

    def on_test_begin(self, logs=None):
        if getattr(self, "_train_end", 0) is None:
            self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = (self._train_end or time.perf_counter()) - self._start
        self.train_seconds.append(seconds)
        self.examples_per_second.append(self.examples_per_epoch / seconds)
        if logs is not None:
            logs["train_seconds"] = seconds
            logs["examples_per_second"] = self.examples_per_epoch / seconds
