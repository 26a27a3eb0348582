"""The run folder: every path a fit run writes under its ``--output-dir``, spelled in one place.

A fit script resolves its ``--output-dir`` once, into the `RunFolder` of its
`tfnlp.training.Runtime` (``runtime.folder``), and the library reads every path
from it. The layout (users, the README and resumed runs rely on it)::

    <output-dir>/
        config.json             the run's options and environment (`Runtime.write_config`)
        metrics.json            the run's figures, written last
        training_state.json     where the training stands: sessions, wall time, finished or not
        history.csv             one row per epoch (Keras' CSVLogger, appended across sessions)
        logs/                   TensorBoard
        backup/                 Keras' BackupAndRestore (resume after a kill); deleted when training ends
        checkpoints/best        the best epoch's weights (a checkpoint prefix)
        checkpoints/final       the weights training ended with (a checkpoint prefix)
        checkpoints/snapshots/  the weight snapshots of --average-snapshots (step-<n>)
        curves.png, confusion_matrix.png, entity_scores.png   the run report (`tfnlp.training.report`)
        features/<split>.npz    a frozen-encoder stage's cached vectors
        teacher/train.npz       the distillation teacher's cached sentence embeddings
        frozen/, fine_tune/     the stages of a two-stage run, each a run folder of its own
"""

import os


class RunFolder:
    """The paths of one run folder (a fit script's ``--output-dir``).

    Only paths: nothing is created or read here (`makedirs` creates the root).
    Checkpoint paths (``best_weights``, ``final_weights``) are prefixes, as
    ``model.save_weights`` takes them.

    Args:
        root: str or os.PathLike. The run folder.

    Example:
    >>> folder = RunFolder("runs/agnews_hf_bert")
    >>> folder.metrics_file
    'runs/agnews_hf_bert/metrics.json'
    >>> folder.stage(RunFolder.FINE_TUNE).best_weights
    'runs/agnews_hf_bert/fine_tune/checkpoints/best'
    >>> folder.features_file("train")
    'runs/agnews_hf_bert/features/train.npz'
    """

    # File names a run's metrics.json refers to (its "plots"), relative to the folder.
    CURVES = "curves.png"
    CONFUSION_MATRIX = "confusion_matrix.png"
    ENTITY_SCORES = "entity_scores.png"
    # The stages of a two-stage run (their folders, and their keys in the run's metrics.json).
    FROZEN = "frozen"
    FINE_TUNE = "fine_tune"
    STAGES = (FROZEN, FINE_TUNE)  # In training order.

    def __init__(self, root):
        root = os.fspath(root)
        if not root:
            raise ValueError("a run folder needs a path (--output-dir must not be empty)")
        self.root = root

    @classmethod
    def of(cls, folder):
        """``folder`` itself if it is a `RunFolder`, else the `RunFolder` of the path ``folder``."""
        return folder if isinstance(folder, cls) else cls(folder)

    def __repr__(self):
        return f"RunFolder({self.root!r})"

    def __eq__(self, other):
        return isinstance(other, RunFolder) and other.root == self.root

    def __hash__(self):
        return hash(self.root)

    def _join(self, *parts):
        return os.path.join(self.root, *parts)

    def makedirs(self):
        """Creates the folder (and its parents) if missing; returns ``self``."""
        os.makedirs(self.root, exist_ok=True)
        return self

    def stage(self, name):
        """The run folder of one stage of a multi-stage run, ``<root>/<name>`` (e.g. `FROZEN`, `FINE_TUNE`)."""
        return RunFolder(self._join(name))

    @property
    def name(self):
        """The folder's own name (the last part of its path), as figure titles show it."""
        return os.path.basename(os.path.normpath(self.root))

    @property
    def config_file(self):
        return self._join("config.json")

    @property
    def metrics_file(self):
        return self._join("metrics.json")

    @property
    def state_file(self):
        """``training_state.json``: the training's status and sessions (`tfnlp.training.evaluation.fit_model`)."""
        return self._join("training_state.json")

    @property
    def history_file(self):
        return self._join("history.csv")

    @property
    def logs_dir(self):
        """TensorBoard's folder."""
        return self._join("logs")

    @property
    def backup_dir(self):
        """Keras' `BackupAndRestore` folder."""
        return self._join("backup")

    @property
    def chief_backup_dir(self):
        """Where `BackupAndRestore` keeps the chief's checkpoints (``tf.train.latest_checkpoint`` reads it)."""
        return os.path.join(self.backup_dir, "chief")

    @property
    def checkpoints_dir(self):
        return self._join("checkpoints")

    @property
    def best_weights(self):
        """Checkpoint prefix of the best epoch's weights (`tf_keras.callbacks.ModelCheckpoint`)."""
        return os.path.join(self.checkpoints_dir, "best")

    @property
    def final_weights(self):
        """Checkpoint prefix of the weights training ended with."""
        return os.path.join(self.checkpoints_dir, "final")

    @property
    def snapshots_dir(self):
        """Folder of `tfnlp.training.weight_averaging.WeightSnapshots`."""
        return os.path.join(self.checkpoints_dir, "snapshots")

    @property
    def curves_file(self):
        return self._join(self.CURVES)

    @property
    def confusion_matrix_file(self):
        return self._join(self.CONFUSION_MATRIX)

    @property
    def entity_scores_file(self):
        return self._join(self.ENTITY_SCORES)

    @property
    def features_dir(self):
        """A frozen-encoder stage's cache of vectors (`tfnlp.training.classification.train_frozen_head`)."""
        return self._join("features")

    def features_file(self, split):
        """The cached vectors of one split (``train``, ``validation``, ``test``)."""
        return os.path.join(self.features_dir, f"{split}.npz")

    @property
    def teacher_file(self):
        """The distillation teacher's cached sentence embeddings of the training texts."""
        return self._join("teacher", "train.npz")

    @property
    def cluster_check_file(self):
        """A short-lived file by which multi-worker runs check that every worker sees the folder."""
        return self._join(".tfnlp-cluster")
