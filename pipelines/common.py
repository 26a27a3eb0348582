"""What the AG News fit scripts share: data arguments, splits, counting, the frozen-stage arguments."""

import dataclasses
from typing import Optional

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np

from tfnlp import data
from tfnlp.training import field


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


def check_optimization_arguments(args):
    """Validates the ``epochs``, ``batch_size``, ``learning_rate``, ``warmup_ratio`` and ``weight_decay`` of ``args``."""
    if args.epochs < 1 or args.batch_size < 1:
        raise ValueError("--epochs and --batch-size must be at least 1")
    if args.learning_rate <= 0:
        raise ValueError("--learning-rate must be positive")
    if not 0 <= args.warmup_ratio < 1:
        raise ValueError("--warmup-ratio must lie in [0, 1)")
    if args.weight_decay < 0:
        raise ValueError("--weight-decay must be >= 0")
