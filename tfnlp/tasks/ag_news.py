"""What the AG News fit scripts and benchmarks share: data arguments, splits and counting, the frozen and
fine-tuning argument groups, and the end of a two-stage run."""

import dataclasses
from typing import Optional

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np

from tfnlp import data
from tfnlp.training import cli, field
from tfnlp.training.arguments import (AVERAGE_FRACTION_HELP, AVERAGE_SNAPSHOTS_HELP, LAZY_HELP, MAX_GRAD_NORM_HELP,
                                      check_optimization_arguments)
from tfnlp.utils import atomic_write_json


@dataclasses.dataclass
class DataArguments:
    """Which AG News data to read and how much of it."""

    data_dir: str = field("", "Folder with ag_news/{train,test}.csv (or the ag_news folder itself); "
                              "'' = $TFNLP_DATA_DIR, else tfds ag_news_subset.")
    validation_size: float = field(0.1, "Validation slice: the last fraction (< 1) or count (>= 1) of train.csv.")
    max_train_examples: Optional[int] = field(None, "Use only the first N training examples (quick runs).")
    max_eval_examples: Optional[int] = field(None, "Use only the first N validation and test examples.")

    def __post_init__(self):
        if self.validation_size <= 0:
            raise ValueError("--validation-size must be positive (the best epoch is chosen on it)")
        if self.validation_size >= 1:
            if self.validation_size != int(self.validation_size):
                raise ValueError("--validation-size of 1 or more is a number of examples: it must be whole")
            self.validation_size = int(self.validation_size)  # A count, as `data.load_ag_news` expects.
        for name in ("max_train_examples", "max_eval_examples"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")


@dataclasses.dataclass
class FrozenArguments:
    """Stage 1: the encoder frozen, its pooled outputs cached, the head trained on them."""

    skip_frozen_stage: bool = field(False, "Skip stage 1 (the head then starts untrained in stage 2).")
    frozen_epochs: int = field(30, "Head epochs (each after the first reads the cached features).")
    frozen_batch_size: int = field(32, "Head batch size.")
    frozen_learning_rate: float = field(1e-3, "Head AdamW learning rate (warm-up, then linear decay).")

    def __post_init__(self):
        if self.frozen_epochs < 1 or self.frozen_batch_size < 1:
            raise ValueError("--frozen-epochs and --frozen-batch-size must be at least 1")
        if self.frozen_learning_rate <= 0:
            raise ValueError("--frozen-learning-rate must be positive")


def fine_tune_arguments(*, epochs, learning_rate, export_dir, optimizer="AdamW, linear warm-up and decay",
                        lazy_embedding_updates=False, max_grad_norm=None, average_snapshots=0, average_fraction=0.25):
    """A fit script's stage-2 argument group (a dataclass): fine-tuning of everything, and the export.

    The TF-Hub and HF pipelines share the options and their checks; only the defaults differ (each chosen on
    its own validation runs), so each script builds its group here with its defaults. ``max_grad_norm``:
    the default of a ``--max-grad-norm`` option (transformers' optimizer); None = no such option
    (tf-models-official's optimizer always clips at 1.0). ``average_snapshots``/``average_fraction``: the
    checkpoint averaging defaults (`tfnlp.training.weight_averaging`; 0 snapshots = none).
    """
    fields = [
        ("skip_fine_tuning", bool, field(False, "Skip stage 2 (export the frozen-encoder model).")),
        ("epochs", int, field(epochs, "Fine-tuning epochs (the best on validation is kept).")),
        ("batch_size", int, field(16, "Fine-tuning global batch size (split across replicas).")),
        ("learning_rate", float, field(learning_rate, "Peak AdamW learning rate (reached at the end of warm-up).")),
        ("warmup_ratio", float, field(0.1, "Fraction of the fine-tuning steps with linear warm-up.")),
        ("weight_decay", float, field(0.01, "AdamW weight decay (never on LayerNorm and bias weights).")),
        ("lazy_embedding_updates", bool, field(lazy_embedding_updates, LAZY_HELP)),
    ]
    if max_grad_norm is not None:
        fields.append(("max_grad_norm", float, field(max_grad_norm, MAX_GRAD_NORM_HELP)))
    fields += [
        ("average_snapshots", int, field(average_snapshots, AVERAGE_SNAPSHOTS_HELP + " The average is kept if it "
                                                            "beats the best epoch on validation.")),
        ("average_fraction", float, field(average_fraction, AVERAGE_FRACTION_HELP)),
        ("export_dir", str, field(export_dir, "Export base folder; the SavedModel goes to <export-dir>/<next "
                                              "version>/. '' = no export.")),
    ]
    namespace = {"__doc__": f"Stage 2: everything trained with {optimizer}; and the export.",
                 "__post_init__": check_optimization_arguments}
    return dataclasses.make_dataclass("FineTuneArguments", fields, namespace=namespace)


def check_stages(*groups):
    """Rejects skipping both stages of a two-stage fit script when its arguments are parsed (``validate=``)."""
    skip_frozen = any(getattr(group, "skip_frozen_stage", False) for group in groups)
    skip_tuning = any(getattr(group, "skip_fine_tuning", False) for group in groups)
    if skip_frozen and skip_tuning:
        raise ValueError("--skip-frozen-stage and --skip-fine-tuning together leave nothing to train")

def load_splits(args):
    """The train, validation and test datasets of (text, label), and the class names."""
    options = dict(data_dir=args.data_dir or None, validation_size=args.validation_size)
    train, class_names = data.load_ag_news("train", max_examples=args.max_train_examples, **options)
    validation, _ = data.load_ag_news("validation", max_examples=args.max_eval_examples, **options)
    test, _ = data.load_ag_news("test", max_examples=args.max_eval_examples, **options)
    return {"train": train, "validation": validation, "test": test}, class_names


def count_examples(dataset):
    """The number of elements of an (unbatched) dataset, counted in one pass."""
    return int(dataset.reduce(np.int64(0), lambda count, _: count + 1).numpy())


def write_two_stage_metrics(metrics, runtime, stages, log=None):
    """The chief writes ``metrics.json``; every worker logs each stage's test accuracy and the export's path.

    Returns:
        ``metrics``, for ``main`` to return.
    """
    if runtime.is_chief:
        atomic_write_json(runtime.folder.metrics_file, metrics)
    accuracies = "; ".join(f"{stage} test accuracy {metrics[stage]['test']['accuracy']:.4f}"
                           for stage in stages if stage in metrics)
    cli.log_result("%s; %.0f s; wrote %s; SavedModel: %s", accuracies, metrics["wall_seconds"],
                   runtime.folder.metrics_file, metrics["export"]["path"] if "export" in metrics else "none",
                   log=log)
    return metrics
