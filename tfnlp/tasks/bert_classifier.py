"""The two-stage BERT classifier run both BERT fit scripts share: frozen encoder first, then fine-tuning, then export.

`pipelines.agnews_hub_bert` (TF-Hub BERT) and `pipelines.agnews_hf_bert` (HuggingFace BERT) differ in their
models, tokenizers and exports; the run around them is this module's `run_two_stages`:

1. stage 1 (unless ``--skip-frozen-stage``), in ``<output-dir>/frozen/``: the frozen encoder's vectors computed
   once and cached, the head trained on them (`tfnlp.training.classification.train_frozen_head`);
2. stage 2 (unless ``--skip-fine-tuning``), in ``<output-dir>/fine_tune/``: every weight trained with AdamW, linear
   warm-up and decay; the best epoch on validation kept, or the average of ``--average-snapshots`` weight snapshots
   if it scores higher on validation (`tfnlp.training.evaluation.fit_and_evaluate`);
3. the export (unless ``--export-dir ''``), then the run's ``metrics.json`` (`tfnlp.tasks.ag_news`).

Each stage's batches are the same encoded texts, batched by length at the stage's batch size (`make_batches`).
"""

import dataclasses
import time

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

from tfnlp.data.batching import batch_splits
from tfnlp.tasks.ag_news import write_two_stage_metrics
from tfnlp.training import RunFolder, cli
from tfnlp.training.classification import compile_classifier, train_frozen_head
from tfnlp.training.evaluation import fit_and_evaluate
from tfnlp.training.weight_averaging import weight_snapshots
from tfnlp.utils import atomic_write_json

FROZEN, FINE_TUNE = RunFolder.FROZEN, RunFolder.FINE_TUNE


def make_batches(encoded, sequence_length, batch_size, runtime, model_inputs):
    """The encoded splits batched by length, as ``(model_inputs(ids), label)`` batches.

    Args:
        encoded: dict of split name -> dataset of ``(token ids, label)`` (`tfnlp.data.batching.encode_splits`).
        sequence_length: int. The longest sequence (ids padded with 0 to their batch's longest).
        batch_size: int. Texts per batch.
        runtime: tfnlp.training.Runtime. Its seed shuffles the training batches; with ``--jit-compile`` batches are
            padded to length boundaries (fewer XLA shapes).
        model_inputs: callable. Padded ids ``[batch, length]`` -> the model's input dict.

    Example:
    >>> import tensorflow as tf
    >>> from tfnlp.training import Runtime, RuntimeArguments
    >>> runtime = Runtime(RuntimeArguments(output_dir="/tmp/tfnlp-doc-batches"))
    >>> texts = tf.data.Dataset.from_generator(lambda: iter([([2, 5, 3], 1), ([2, 3], 0)]),
    ...     output_signature=(tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32)))
    >>> batches = make_batches({"train": texts}, 8, 2, runtime, lambda ids: {"input_ids": ids})
    >>> [sorted(inputs["input_ids"].numpy().tolist()) for inputs, _ in batches["train"]]  # Shuffled: sorted here.
    [[[2, 3, 0], [2, 5, 3]]]
    """
    batches = batch_splits(encoded, max_length=sequence_length, batch_size=batch_size, seed=runtime.args.seed,
                           pad_to_boundary=runtime.args.jit_compile)
    return {name: dataset.map(lambda ids, label: (model_inputs(ids), label)) for name, dataset in batches.items()}


@dataclasses.dataclass
class TwoStageModel:
    """What differs between the BERT classifiers, for `run_two_stages`.

    Args:
        model_inputs: callable. Padded token ids -> the model's input dict (`make_batches`).
        frozen_parts: callable. ``runtime`` (stage 1's) -> ``(extractor, head)`` for
            `tfnlp.training.classification.train_frozen_head`: encoder inputs -> the vectors the head reads, and
            the head, sharing its layers with the classifier.
        frozen_settings: dict. Stage 1's own settings (with the cache key, whether an earlier stage 1 is reused).
        fine_tune_model: callable. Makes the encoder trainable and returns the model stage 2 fits (called in the
            strategy's scope).
        export: callable. Export base folder -> the export's summary (`tfnlp.serving.export_text_classifier`'s).
        optimizer: str. The optimizer implementation (`tfnlp.training.optimization.create_optimizer`).
    """

    model_inputs: object
    frozen_parts: object
    frozen_settings: dict
    fine_tune_model: object
    export: object
    optimizer: str = "official"


def run_frozen_stage(model, batches, class_names, args, runtime, cache_key):
    """Stage 1: the frozen encoder's vectors cached once, the head trained on them (`train_frozen_head`)."""
    extractor, head = model.frozen_parts(runtime)
    return train_frozen_head(extractor, head, batches, class_names, runtime, cache_key=cache_key,
                             settings=model.frozen_settings, epochs=args.frozen_epochs,
                             batch_size=args.frozen_batch_size, learning_rate=args.frozen_learning_rate,
                             implementation=model.optimizer)


def run_fine_tuning(model, batches, class_names, args, runtime, num_train, log=None):
    """Stage 2: every weight trained with AdamW, warm-up and decay; writes and returns the stage's metrics."""
    steps = int(batches["train"].cardinality()) * args.epochs
    with runtime.scope():
        trainer = model.fine_tune_model()
        compile_classifier(trainer, runtime, learning_rate=args.learning_rate, num_train_steps=steps,
                           warmup_ratio=args.warmup_ratio, weight_decay=args.weight_decay,
                           implementation=model.optimizer, lazy_sparse_updates=args.lazy_embedding_updates,
                           global_clipnorm=getattr(args, "max_grad_norm", 0.0) or None)
    metrics, _ = fit_and_evaluate(trainer, runtime, batches, epochs=args.epochs, num_train=num_train,
                                  class_names=class_names, snapshots=weight_snapshots(args, runtime, steps))
    cli.log_result("fine-tuning: test accuracy %.4f, training %.0f s, %.1f examples/s", metrics["test"]["accuracy"],
                   metrics["train_wall_seconds"], metrics["train_examples_per_second"] or float("nan"), log=log)
    if runtime.is_chief:
        atomic_write_json(runtime.folder.metrics_file, metrics)
    return metrics


def run_two_stages(model, runtime, encoded, class_names, *, sequence_length, frozen_args, tune_args, cache_key,
                   num_train, metrics, start=None, log=None):
    """Stage 1, stage 2 and the export of a BERT classifier; writes the run's metrics.json and returns it.

    Args:
        model: TwoStageModel. The classifier's parts.
        runtime: tfnlp.training.Runtime. The run's (each stage runs in its own `Runtime.stage`).
        encoded: dict of split name -> dataset of ``(token ids, label)``, tokenized once for both stages.
        class_names: list of str.
        sequence_length: int. The longest token sequence.
        frozen_args: the ``FrozenArguments`` of `tfnlp.tasks.ag_news`.
        tune_args: a ``FineTuneArguments`` of `tfnlp.tasks.ag_news.fine_tune_arguments`.
        cache_key: str. What stage 1's cached vectors depend on (encoder, tokenization, data).
        num_train: int. Training texts.
        metrics: dict. The run's metrics so far (what the script adds: its pretrained model or handles).
        start: float or None. ``time.perf_counter()`` when the run's timed work began (before tokenizing);
            None = now.
        log: logging.Logger or None. The script's logger.

    Returns:
        dict: ``metrics`` with ``frozen`` and ``fine_tune`` (each stage's), ``wall_seconds`` and ``export``.
    """
    start = time.perf_counter() if start is None else start
    if not frozen_args.skip_frozen_stage:
        batches = make_batches(encoded, sequence_length, frozen_args.frozen_batch_size, runtime, model.model_inputs)
        metrics[FROZEN] = run_frozen_stage(model, batches, class_names, frozen_args, runtime.stage(FROZEN), cache_key)
    if not tune_args.skip_fine_tuning:
        batches = make_batches(encoded, sequence_length, tune_args.batch_size, runtime, model.model_inputs)
        metrics[FINE_TUNE] = run_fine_tuning(model, batches, class_names, tune_args, runtime.stage(FINE_TUNE),
                                             num_train, log=log)
    metrics["wall_seconds"] = time.perf_counter() - start

    if tune_args.export_dir:  # On every worker (saving reads distributed variables); the chief's is the export.
        metrics["export"] = model.export(runtime.worker_path(tune_args.export_dir))
    return write_two_stage_metrics(metrics, runtime, (FROZEN, FINE_TUNE), log=log)
