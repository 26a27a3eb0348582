"""The shared training runtime: distribution strategy, precision, XLA, seeds, callbacks, resume.

Every fit script builds one `Runtime` from its `RuntimeArguments`, builds and
compiles its model inside ``runtime.scope()`` with ``runtime.compile_options()``,
and trains with ``runtime.callbacks(...)``. Datasets given to ``fit`` must have
a known cardinality when ``--steps-per-execution`` is above 1
(`tfnlp.data.batching.with_known_cardinality`). Running a script again with the same
``--output-dir`` resumes an interrupted run from its last completed epoch
(`tf_keras.callbacks.BackupAndRestore`), and skips a training that finished
(`tfnlp.training.evaluation.fit_model`).

Multi-worker training (``--strategy multi_worker``, `MultiWorkerMirroredStrategy`
configured by ``TF_CONFIG``): every worker runs the same command with the same
``--output-dir``, a folder they all see (a shared file system; one local folder
when the workers share a machine). The chief alone writes there; the others
write what they must (Keras' temporary checkpoints, their logs, caches, their
copy of the export) to a folder of their own that is deleted when they end
(`Runtime.worker_path`). Batches are split between the workers as Keras splits
a global batch (``AutoShardPolicy.DATA``: each worker reads the same in-memory
data and keeps its share of every batch), so a run on N workers takes the same
steps as one process with the same ``--batch-size``. A worker that dies makes
the others stop within ``--worker-timeout`` seconds (TensorFlow's coordination
service notices the missing heartbeats) with one line saying which one
(`tfnlp.training.cli.cluster_failure_message`); starting every worker again resumes the run.
"""

import atexit
import copy
import csv
import dataclasses
import json
import logging
import os
import secrets
import shlex
import shutil
import tempfile
import time

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf
import tf_keras

from tfnlp.errors import ConfigurationError
from tfnlp.training.arguments import field
from tfnlp.training.run_folder import RunFolder
from tfnlp.utils import atomic_write_json, atomic_write_text

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
    worker_timeout: int = field(30, "--strategy multi_worker: seconds without a heartbeat after which a worker is "
                                    "taken for dead and the others stop with an error (raise it when busy "
                                    "machines stall workers for longer).")

    def __post_init__(self):
        if not self.output_dir:
            raise ValueError("--output-dir must not be empty")
        if self.steps_per_execution < 1:
            raise ValueError("--steps-per-execution must be at least 1")
        if self.worker_timeout < 1:
            raise ValueError("--worker-timeout must be at least 1 (seconds)")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}, not {self.strategy!r}")
        if self.tpu and self.strategy != "tpu":
            raise ValueError(f"--tpu {self.tpu} names a TPU, which only --strategy tpu uses (not {self.strategy})")
        if self.strategy == "multi_worker" and not os.environ.get("TF_CONFIG"):
            raise ValueError("--strategy multi_worker needs the TF_CONFIG environment variable "
                             "(cluster spec and this worker's task)")


def create_strategy(name, tpu="", worker_timeout=30):
    """Returns the `tf.distribute.Strategy` called ``name`` (one of `STRATEGIES`).

    Args:
        name: str. "default", "mirrored", "multi_worker" or "tpu".
        tpu: str. TPU name/address for "tpu" ('' = local TPU, as in Colab).
        worker_timeout: int. "multi_worker": seconds without a heartbeat before a worker is taken for dead.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        try:
            _configure_coordination_service(worker_timeout)
            return tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as error:
            if "program startup" not in str(error):
                raise
            raise RuntimeError("--strategy multi_worker: MultiWorkerMirroredStrategy must be created before TensorFlow "
                               "runs anything; build the Runtime first in the fit script's main") from error
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}")


class Runtime:
    """Sets up seeds, precision and the strategy once; builds callbacks and writes run files.

    Args:
        args: RuntimeArguments. Its ``output_dir`` becomes ``folder``, the run's `tfnlp.training.RunFolder`, where
            every file of the run goes.

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
        if args.strategy == "multi_worker":
            _log_cluster_join()
        self.strategy = create_strategy(args.strategy, args.tpu, args.worker_timeout)
        self._scratch = None  # This worker's own folder (`worker_path`), made when first needed.
        policy = "float32"
        if args.mixed_precision:
            policy = "mixed_bfloat16" if args.strategy == "tpu" else "mixed_float16"
        # Set even when float32: the policy is process-global, and an earlier run may have left a mixed one.
        tf_keras.mixed_precision.set_global_policy(policy)
        self.compute_dtype = policy.split("_")[-1]
        self.config = None  # Set by `write_config`.
        self.folder = RunFolder(args.output_dir).makedirs()
        if self.num_workers > 1:
            self._check_shared_output_dir()

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

    @property
    def num_workers(self):
        """Workers training together (the chief included): 1 unless multi-worker."""
        resolver = getattr(self.strategy, "cluster_resolver", None)
        if resolver is None or not getattr(resolver, "task_type", None):
            return 1
        jobs = resolver.cluster_spec().as_dict()
        return sum(len(jobs.get(job, ())) for job in ("chief", "worker"))

    def worker_path(self, path):
        """Where this worker writes the file or folder ``path``: ``path`` itself on the chief.

        Another worker of a multi-worker cluster gets the same path inside a
        temporary folder of its own, deleted when the process ends, so that only
        the chief's files land in the output folder and the export folder (its
        parent folder is created). Use it
        for what every worker must write, such as caches and the export (saving
        a SavedModel reads distributed variables, which takes every worker),
        as Keras' own callbacks do for checkpoints and logs.

        Args:
            path: str. A path as the chief writes it (e.g. ``runtime.folder.teacher_file``).
        """
        if self.is_chief:
            return path
        if self._scratch is None:
            self._scratch = tempfile.mkdtemp(prefix="tfnlp-worker-")
            atexit.register(shutil.rmtree, self._scratch, ignore_errors=True)
        private = os.path.join(self._scratch, os.path.abspath(path).lstrip(os.sep))
        os.makedirs(os.path.dirname(private), exist_ok=True)
        return private

    def barrier(self):
        """Returns when every worker has called it (at once unless multi-worker).

        For example, before workers read a file the chief has just written.
        """
        if self.num_workers > 1:
            self._sum_over_workers(0.0)

    def shard_by_data(self, dataset):
        """``dataset`` set to be split between workers batch by batch (`tf.data.experimental.AutoShardPolicy.DATA`).

        The fit scripts' datasets are in memory (no files to share out), and
        their global batches must stay as one process would build them: each
        worker reads the same data, and Keras gives each its share of every
        batch. Without it, the automatic policy looks for files first and warns.
        No effect unless multi-worker.
        """
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return dataset.with_options(options)

    def _sum_over_workers(self, value):
        """The sum of one float from each worker (an all-reduce: every worker must call it, in the same order)."""
        local_replicas = len(self.strategy.extended.worker_devices)

        @tf.function
        def all_reduce(value):
            def replica_fn(value):
                context = tf.distribute.get_replica_context()
                first_local = tf.equal(context.replica_id_in_sync_group % local_replicas, 0)  # Once per worker.
                return context.all_reduce(tf.distribute.ReduceOp.SUM, tf.where(first_local, value, 0.0))

            return self.strategy.run(replica_fn, args=(value,))

        result = all_reduce(tf.constant(value, tf.float64))
        return float(self.strategy.experimental_local_results(result)[0])

    def _check_shared_output_dir(self):
        """Raises ConfigurationError on every worker unless all of them see the chief's files in the output folder.

        They must: a resumed run, the best epoch and the finished training are read back from the chief's files
        (Keras' `BackupAndRestore` and `ModelCheckpoint` expect the same). Costs two all-reduces of one number.
        """
        path = self.folder.cluster_check_file
        token = secrets.randbits(48) if self.is_chief else 0  # Exact in float64.
        if self.is_chief:
            atomic_write_text(path, str(token))
        token = int(self._sum_over_workers(float(token)))  # Also a barrier: the chief has written the file.
        try:
            with open(path, encoding="utf-8") as f:
                seen = f.read().strip() == str(token)
        except OSError:
            seen = False
        blind = int(self._sum_over_workers(0.0 if seen else 1.0))  # Everyone has read the file after this.
        if self.is_chief:
            os.remove(path)
        if blind:
            raise ConfigurationError(
                f"--output-dir {self.args.output_dir}: {blind} of the {self.num_workers} workers do not see the "
                f"chief's files there; multi-worker training needs an output folder that every worker shares (a "
                f"shared file system, or the same local folder when the workers run on one machine)")

    def scope(self):
        """The strategy scope: build and compile models inside it."""
        return self.strategy.scope()

    def stage(self, name):
        """A Runtime for one stage of a multi-stage run: same strategy and settings, files in ``<output_dir>/<name>``.

        Each stage gets its own checkpoints, backup (resume), logs and history.
        """
        stage = copy.copy(self)
        stage.folder = self.folder.stage(name).makedirs()
        stage.args = dataclasses.replace(self.args, output_dir=stage.folder.root)
        return stage

    def write_config(self, **sections):
        """Writes the run's configuration to ``<output_dir>/config.json`` and logs it in a few lines.

        The log names the file, the environment (versions, strategy, replicas,
        precision) and the options that differ from their defaults; with
        ``--verbose``, the whole configuration.

        Args:
            **sections: dataclass instances or dicts, one per argument group.
        """
        from tfnlp.training import cli

        config = {name: dataclasses.asdict(value) if dataclasses.is_dataclass(value) else dict(value)
                  for name, value in sections.items()}
        config["environment"] = {
            "tensorflow": tf.__version__, "tf_keras": tf_keras.__version__, "tfnlp": tfnlp.__version__,
            "strategy": type(self.strategy).__name__, "replicas": self.num_replicas,
            "compute_dtype": self.compute_dtype,
        }
        self.config = config
        if self.is_chief:
            atomic_write_json(self.folder.config_file, config)
        environment = config["environment"]
        logger.info("configuration in %s: TensorFlow %s, tf_keras %s, tfnlp %s; %d replica(s) (%s), %s",
                    self.folder.config_file, environment["tensorflow"], environment["tf_keras"],
                    environment["tfnlp"], environment["replicas"], environment["strategy"],
                    environment["compute_dtype"])
        if cli.verbosity == "verbose":
            logger.info("configuration:\n%s", json.dumps(config, indent=2, sort_keys=True, default=str))
        else:
            logger.info("options: %s", _changed_options(sections) or "all defaults")
        return config

    def callbacks(self, examples_per_epoch, monitor="val_accuracy", mode="max", early_stopping_patience=None,
                  extra=(), keep_backup=False):
        """The callbacks every pipeline uses, built in one place.

        - `BackupAndRestore` in ``<output_dir>/backup``: a run killed mid-training resumes from its last
          completed epoch when started again with the same output folder (and logs ``resuming from epoch N``);
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
            keep_backup: bool. Keep the backup when training ends (`tfnlp.training.evaluation.fit_model` deletes
                it once the final weights are saved, so that a kill in between loses nothing).
        """
        # Throughput comes first: it adds its figures to the epoch logs that the later callbacks write.
        callbacks = [
            Throughput(examples_per_epoch),
            tf_keras.callbacks.BackupAndRestore(self.folder.backup_dir, delete_checkpoint=not keep_backup),
            tf_keras.callbacks.ModelCheckpoint(self.folder.best_weights, monitor=monitor, mode=mode,
                                               save_best_only=True, save_weights_only=True,
                                               initial_value_threshold=self._resumed_best(monitor, mode)),
            tf_keras.callbacks.TensorBoard(self.folder.logs_dir),
            tf_keras.callbacks.CSVLogger(self.worker_path(self.folder.history_file), append=True),
            ResumeNotice(self.folder.backup_dir),  # After BackupAndRestore, which restores in on_train_begin.
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
        history = self.folder.history_file
        if not tf.train.latest_checkpoint(self.folder.chief_backup_dir) or not os.path.exists(history):
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
        prefix = self.folder.best_weights
        if tf.train.latest_checkpoint(os.path.dirname(prefix)) or os.path.exists(prefix + ".index"):
            model.load_weights(prefix).expect_partial()
            return True
        return False


def _log_cluster_join():
    """Logs which worker of the ``TF_CONFIG`` cluster this process is: creating the strategy waits for all of them."""
    try:
        config = json.loads(os.environ.get("TF_CONFIG", ""))
        task, cluster = config["task"], config["cluster"]
        workers = sum(len(cluster.get(job, ())) for job in ("chief", "worker"))
        logger.info("joining the TF_CONFIG cluster as %s %s of %d workers (waiting until every worker has started)",
                    task["type"], task["index"], workers)
    except (ValueError, KeyError, TypeError, AttributeError):
        pass  # TensorFlow reports a malformed TF_CONFIG itself.


def _configure_coordination_service(heartbeat_seconds):
    """Configures TensorFlow's coordination service as `MultiWorkerMirroredStrategy` does, with our heartbeat timeout.

    The strategy keeps a service configured before it is created. TensorFlow's
    own timeout (10 s) takes a worker whose process is starved of CPU for that
    long (a busy machine, a long first trace) for dead and stops the cluster.
    """
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context

    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    spec = resolver.cluster_spec()
    if resolver.task_type not in ("chief", "worker") or context.context().coordination_service is not None:
        return
    jobs = [coordination_config_pb2.CoordinatedJob(name=job, num_tasks=spec.num_tasks(job))
            for job in ("chief", "worker") if job in spec.jobs]
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=multi_worker_util.coordination_leader(spec),
        coordinated_jobs=jobs, heartbeat_timeout_in_ms=int(heartbeat_seconds * 1000))


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


class ResumeNotice(tf_keras.callbacks.Callback):
    """Logs ``resuming from epoch N of M`` when `BackupAndRestore` (placed before it) restored a backup.

    Attributes:
        resumed_epoch: int. The 0-based epoch training continues from (0 when it starts afresh).
    """

    def __init__(self, backup_dir):
        super().__init__()
        self.backup_dir = backup_dir
        self.resumed_epoch = 0

    def on_train_begin(self, logs=None):
        state = getattr(self.model, "_training_state", None)
        saved_epoch = int(tf_keras.backend.get_value(state._ckpt_saved_epoch)) if state is not None else -1
        self.resumed_epoch = max(saved_epoch + 1, 0)
        epochs = (self.params or {}).get("epochs")
        if epochs is not None and self.resumed_epoch >= epochs:
            logger.info("all %d epochs finished in an earlier session (backup in %s): nothing left to train",
                        epochs, self.backup_dir)
        elif self.resumed_epoch:
            logger.info("resuming from epoch %d of %s (%d finished in an earlier session; backup in %s)",
                        self.resumed_epoch + 1, epochs or "?", self.resumed_epoch, self.backup_dir)


class EpochLog(tf_keras.callbacks.Callback):
    """One line per epoch: its number, the losses and metrics, its time and training examples per second.

    Place it after `Throughput`, whose figures it prints. ``fit(verbose=0)`` then shows nothing else.
    """

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        seconds = logs.pop("train_seconds", None)
        rate = logs.pop("examples_per_second", None)
        figures = ", ".join(f"{name} {float(value):.4f}" for name, value in logs.items()
                            if name != "learning_rate" and _is_number(value))
        timing = f" ({seconds:.1f} s, {rate:,.0f} examples/s)" if seconds is not None and rate is not None else ""
        logger.info("epoch %d/%s: %s%s", epoch + 1, self.params.get("epochs", "?"), figures, timing)


class EpochProgress(tf_keras.callbacks.Callback):
    """A line about every ``interval`` seconds inside an epoch: batches done of total, examples/s, loss, time left.

    Long epochs (BERT fine-tuning, NER) otherwise show nothing between two
    `EpochLog` lines. The lines go to the ``logging`` module at INFO level, as
    the epoch lines do: a terminal, output redirected to a file and a notebook
    all get the same plain lines (no progress bar), and ``--quiet`` hides them
    (`tfnlp.training.cli.configure_output`). For example::

        epoch 2/4: batch 120/469 (26%), 41 examples/s, loss 0.3127, about 4 min 10 s left
        epoch 2/4: validation batch 30/~80, 25 s, about 42 s left

    - With ``steps_per_execution`` above 1 Keras calls back once per
      execution, so the count moves by that many batches.
    - The total is Keras' steps per epoch; when the dataset's size is unknown,
      the count of the epoch before, marked ``~`` (none in the first epoch,
      which then shows batches/s and no time left). Validation totals always
      come from the validation before.
    - Rates are measured from the end of the epoch's first call into the graph,
      which traces the model in the first epoch: a line after that call alone
      gives the time so far instead of a rate and the time left. Examples/s
      assumes the epoch's examples are spread evenly over its batches.
    - The loss is the mean over the epoch so far, as Keras reports it.
    - No line at the last batch: the epoch line (or validation) follows.

    Args:
        examples_per_epoch: int or None. Training examples in one epoch (None: batches/s instead of examples/s).
        interval: float. Least seconds between two lines.
        log: logging.Logger or None. Where the lines go (this module's logger by default).

    Example:
    >>> model = tf_keras.Sequential([tf_keras.Input((2,)), tf_keras.layers.Dense(1)])
    >>> model.compile(loss="mse", steps_per_execution=2)
    >>> data = tf.data.Dataset.from_tensor_slices((tf.ones((12, 2)), tf.ones((12, 1)))).batch(2)
    >>> progress = EpochProgress(examples_per_epoch=12, interval=0.0)
    >>> _ = model.fit(data, epochs=1, verbose=0, callbacks=[progress])
    >>> progress.lines[0].split(",")[0]
    'epoch 1/1: batch 2/6 (33%)'
    """

    def __init__(self, examples_per_epoch=None, interval=30.0, log=None):
        super().__init__()
        if interval < 0:
            raise ValueError(f"interval must not be negative, got {interval}")
        self.examples_per_epoch = examples_per_epoch
        self.interval = float(interval)
        self.log = log or logger
        self.lines = []  # Every line logged, in order.
        self._supports_tf_logs = True  # Tensors stay tensors until a line needs the loss: no sync per batch.
        self._counted_steps = None  # Training batches in the last full epoch (when Keras does not know them).
        self._validation_steps = None
        self._epoch = 0
        self._last_line = self._validating = None
        self._traced = set()  # "train", "test": the graph functions that have run in this fit.

    def on_train_begin(self, logs=None):
        self._traced = set()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._last_line = time.perf_counter()
        self._phase("train", self._last_line)
        self._done = 0

    def on_train_batch_end(self, batch, logs=None):
        self._done = batch + 1
        now = self._update(batch + 1)
        if now is None:
            return
        total, estimated = self._training_total()
        if total is not None and batch + 1 >= total:
            return
        rate = self._rate(batch + 1, now)
        parts = [f"batch {_of(batch + 1, total, estimated)}"]
        if rate is not None and total and self.examples_per_epoch:
            parts.append(f"{self.examples_per_epoch / total * rate:,.0f} examples/s")
        elif rate is not None:
            parts.append(f"{rate:,.1f} batches/s")
        loss = (logs or {}).get("loss")
        if loss is not None:
            parts.append(f"loss {float(loss):.4f}")
        if rate is None:
            parts.append(f"{_duration(now - self._phase_start)} so far, tracing the model included")
        elif total is not None:
            parts.append(f"about {_duration((total - batch - 1) / rate)} left")
        self._emit(", ".join(parts), now)

    def on_epoch_end(self, epoch, logs=None):
        if not self.params.get("steps") and self._done:
            self._counted_steps = self._done

    def on_test_begin(self, logs=None):
        self._validating = True
        self._phase("test", time.perf_counter())

    def on_test_batch_end(self, batch, logs=None):
        now = self._update(batch + 1)
        total = self._validation_steps
        if now is None or (total is not None and batch + 1 >= total):
            return
        parts = [f"validation batch {_of(batch + 1, total, True)}", f"{now - self._phase_start:.0f} s"]
        rate = self._rate(batch + 1, now)
        if total is not None and rate is not None:
            parts.append(f"about {_duration((total - batch - 1) / rate)} left")
        self._emit(", ".join(parts), now)

    def on_test_end(self, logs=None):
        if self._validating and self._done_in_phase:
            self._validation_steps = self._done_in_phase
        self._validating = False

    def _phase(self, kind, now):
        """Starts timing a run of batches: an epoch's training (``kind`` "train") or its validation ("test")."""
        self._phase_start, self._first_call, self._done_in_phase = now, None, 0
        self._cold = kind not in self._traced  # Its first call traces the graph function.
        self._traced.add(kind)

    def _update(self, done):
        """Records ``done`` batches; returns the time when a line is due, else None."""
        now = time.perf_counter()
        self._done_in_phase = done
        if self._first_call is None:
            self._first_call = (now, done)
        if self._last_line is None or now - self._last_line < self.interval:
            return None
        return now

    def _rate(self, done, now):
        """Batches per second since the end of the phase's first call; None while that call is the only one.

        After one call only, the rate since the phase's start is given instead, unless that call traced the model.
        """
        first_time, first_done = self._first_call
        if done > first_done and now > first_time:
            return (done - first_done) / (now - first_time)
        if self._cold or now <= self._phase_start:
            return None
        return done / (now - self._phase_start)

    def _training_total(self):
        steps = self.params.get("steps")
        if steps:
            return int(steps), False
        return self._counted_steps, True

    def _emit(self, text, now):
        line = f"epoch {self._epoch + 1}/{self.params.get('epochs', '?')}: {text}"
        self.lines.append(line)
        self.log.info("%s", line)
        self._last_line = now


def _of(done, total, estimated):
    """``120/469 (26%)``, ``120/~469 (26%)`` for an estimated total, or ``120``."""
    if total is None:
        return f"{done:,}"
    return f"{done:,}/{'~' if estimated else ''}{total:,} ({100 * done / total:.0f}%)"


def _duration(seconds):
    """``45 s``, ``4 min 10 s``, ``1 h 05 min``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"

def _is_number(value):
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


def _changed_options(sections):
    """``--name value`` for each dataclass field that differs from its default; dict sections in full."""
    changed = []
    for name, value in sections.items():
        if not dataclasses.is_dataclass(value):
            changed.extend(f"{name}.{key}={item}" for key, item in dict(value).items())
            continue
        for field_ in dataclasses.fields(value):
            current = getattr(value, field_.name)
            if field_.default is dataclasses.MISSING or current == field_.default:
                continue
            flag = "--" + field_.name.replace("_", "-")
            if isinstance(current, bool):
                changed.append(flag if current else "--no-" + flag[2:])
            else:
                changed.append(f"{flag} {shlex.quote(str(current))}")
    return " ".join(changed)
