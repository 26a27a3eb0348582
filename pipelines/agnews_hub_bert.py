"""Train the lesson's TF-Hub BERT classifier on AG News: frozen encoder first, then AdamW fine-tuning.

    python -m pipelines.agnews_hub_bert --output-dir runs/agnews_hub_bert

The model is the lesson's: ``hub.KerasLayer(preprocess)`` + ``hub.KerasLayer(encoder)``
+ dropout + dense, on the mean of ``sequence_output`` over the real tokens
(``--pooling mean``, all-MiniLM-L6-v2's sentence vector) or on ``pooled_output``
(``--pooling pooled_output``, the lesson's choice). By default the two TF-Hub SavedModels
are built offline from the packaged all-MiniLM-L6-v2 (``pipelines.export_hub_bert``,
written once to --hub-dir); online, the lesson's handles work as they are:

    --preprocess https://tfhub.dev/tensorflow/bert_en_uncased_preprocess/3 \\
    --encoder https://tfhub.dev/tensorflow/small_bert/bert_en_uncased_L-4_H-128_A-2/1

Stage 1 (frozen encoder) computes the pooled text vectors once, caches
them in <output-dir>/frozen/features/, and trains the dropout + dense head on
them, so every head epoch after the first skips the encoder. Stage 2 fine-tunes
everything with AdamW (tf-models-official), linear warm-up and decay, weight
decay off LayerNorm and biases; the best epoch on validation is kept, or, with
``--average-snapshots N``, the average of N weight snapshots over the end of the
training if it scores higher on validation. Texts are batched by length, each
batch padded to its longest text. Each stage writes its checkpoints, logs, history.csv and
metrics.json under <output-dir>/<stage>/; config.json and the run's summary
metrics.json go to <output-dir>. The exported SavedModel takes raw text; serving it
needs ``import tensorflow_text`` (the preprocessor's ops), not tfnlp.
"""

import dataclasses
import logging
import os
import time

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf
import tensorflow_hub as hub

from tfnlp.data.batching import batch_splits, encode_splits
from tfnlp.hub import DEFAULT_HUB_DIR, export_hub_bert, hub_artifact_dirs, is_saved_model
from tfnlp.models import build_encoder_classifier, build_hub_bert_classifier, classifier_head, pooled_output_model
from tfnlp.models.hub_bert_classifier import POOLINGS
from tfnlp.serving import export_text_classifier
from tfnlp.training import RunFolder, Runtime, RuntimeArguments, cli, field, parse_arguments
from tfnlp.training.arguments import check_local_folder_or_hub_name, check_saved_model_or_url
from tfnlp.training.classification import compile_classifier, train_frozen_head
from tfnlp.training.evaluation import fit_and_evaluate
from tfnlp.training.weight_averaging import weight_snapshots
from tfnlp.utils import atomic_write_json

from pipelines.common import (DataArguments, FrozenArguments, check_stages, count_examples, fine_tune_arguments,
                              load_splits, write_two_stage_metrics)

logger = logging.getLogger("agnews_hub_bert")

FROZEN, FINE_TUNE = RunFolder.FROZEN, RunFolder.FINE_TUNE


@dataclasses.dataclass
class ModelArguments:
    """The TF-Hub preprocessor and encoder, and the classifier head."""

    encoder: str = field("", "TF-Hub BERT encoder: URL (tfhub.dev, Kaggle) or local SavedModel folder. '' = "
                             "--pretrained exported to --hub-dir (built on first use).")
    preprocess: str = field("", "Its TF-Hub preprocessor: URL or local folder. '' = the one exported beside "
                                "the default encoder (required when --encoder is given).")
    pretrained: str = field("", "BERT for the default artifacts: '' = packaged all-MiniLM-L6-v2, or a local HF "
                                "BERT folder.")
    hub_dir: str = field(DEFAULT_HUB_DIR, "Folder of the default artifacts (see pipelines.export_hub_bert).")
    sequence_length: int = field(128, "Maximum WordPiece tokens per text; batches are padded only to their longest.")
    pooling: str = field("mean", "Text vector for the head: mean (of sequence_output over the real tokens: "
                                 "all-MiniLM-L6-v2's sentence embedding) or pooled_output (the encoder's, as the "
                                 "lesson).",
                         choices=POOLINGS)
    dropout: float = field(0.1, "Dropout on the pooled output, in [0, 1).")

    def __post_init__(self):
        if self.encoder and not self.preprocess:
            raise ValueError("--encoder needs its --preprocess (the preprocessor matching its vocabulary)")
        if self.preprocess and not self.encoder:
            raise ValueError("--preprocess needs its --encoder")
        if self.encoder and self.pretrained:
            raise ValueError("--pretrained builds the default artifacts; with --encoder and --preprocess it is unused")
        check_saved_model_or_url("--encoder", self.encoder)
        check_saved_model_or_url("--preprocess", self.preprocess)
        check_local_folder_or_hub_name("--pretrained", self.pretrained)
        if self.sequence_length < 3:
            raise ValueError("--sequence-length must be at least 3 ([CLS], a token, [SEP])")
        if not 0 <= self.dropout < 1:
            raise ValueError("--dropout must lie in [0, 1)")


FineTuneArguments = fine_tune_arguments(epochs=5, learning_rate=3e-5, export_dir="saved_models/agnews_hub_bert")


def resolve_handles(args, runtime):
    """The (preprocess, encoder) handles: the given ones, or the default artifacts (exported if missing).

    Multi-worker, the chief exports missing artifacts while the others wait; a worker that cannot see the
    chief's --hub-dir (another machine) builds its own copy in its temporary folder.
    """
    if args.encoder:
        return args.preprocess, args.encoder
    artifacts = export_hub_bert(args.pretrained or None, args.hub_dir) if runtime.is_chief else None
    runtime.barrier()
    if artifacts is None:
        artifacts = hub_artifact_dirs(args.pretrained or None, args.hub_dir)
        if not (is_saved_model(artifacts.preprocess) and is_saved_model(artifacts.encoder)):
            artifacts = export_hub_bert(args.pretrained or None, runtime.worker_path(args.hub_dir))
    return tuple(artifacts)


def token_ids_encoder(preprocess, sequence_length):
    """A texts -> ``input_word_ids`` function from a TF-Hub preprocessor's ``tokenize`` and ``bert_pack_inputs``.

    The ids are packed to ``sequence_length``; `bucketed_splits` then drops the
    padding, which must be id 0 (as in every BERT vocabulary).
    """
    preprocessor = hub.load(preprocess)
    padding_id = int(preprocessor.tokenize.get_special_tokens_dict()["padding_id"])
    if padding_id != 0:
        raise ValueError(f"{preprocess}: padding id is {padding_id}; batching by length needs 0")

    def encode(texts):
        tokens = preprocessor.tokenize(texts)
        return preprocessor.bert_pack_inputs([tokens], seq_length=sequence_length)["input_word_ids"]

    return encode


def encoder_inputs(ids):
    """``input_word_ids`` (padded with 0) -> the encoder's input dict."""
    return {"input_word_ids": ids, "input_mask": tf.cast(ids != 0, tf.int32), "input_type_ids": tf.zeros_like(ids)}


def make_batches(encoded, sequence_length, batch_size, runtime):
    """The encoded splits batched by length, as ``(encoder inputs, label)``."""
    batches = batch_splits(encoded, max_length=sequence_length, batch_size=batch_size, seed=runtime.args.seed,
                           pad_to_boundary=runtime.args.jit_compile)
    return {name: dataset.map(lambda ids, label: (encoder_inputs(ids), label)) for name, dataset in batches.items()}


def run_frozen_stage(classifier, batches, class_names, args, runtime, cache_key):
    """Stage 1: the frozen encoder's pooled outputs cached, the head trained on them (`train_frozen_head`)."""
    with runtime.scope():
        head = classifier_head(classifier)
    return train_frozen_head(pooled_output_model(classifier), head, batches, class_names, runtime,
                             cache_key=cache_key, settings=dataclasses.asdict(args), epochs=args.frozen_epochs,
                             batch_size=args.frozen_batch_size, learning_rate=args.frozen_learning_rate)


def run_fine_tuning(classifier, batches, class_names, args, runtime, num_train):
    """Stage 2: the encoder trainable, AdamW with warm-up and decay. Returns its metrics."""
    steps = int(batches["train"].cardinality()) * args.epochs
    with runtime.scope():
        classifier.get_layer("encoder").trainable = True
        compile_classifier(classifier, runtime, learning_rate=args.learning_rate, num_train_steps=steps,
                           warmup_ratio=args.warmup_ratio, weight_decay=args.weight_decay,
                           lazy_sparse_updates=args.lazy_embedding_updates)
    metrics, _ = fit_and_evaluate(classifier, runtime, batches, epochs=args.epochs, num_train=num_train,
                                  class_names=class_names, snapshots=weight_snapshots(args, runtime, steps))
    logger.info("fine-tuning: test accuracy %.4f, training %.0f s, %.1f examples/s", metrics["test"]["accuracy"],
                metrics["train_wall_seconds"], metrics["train_examples_per_second"] or float("nan"))
    if runtime.is_chief:
        atomic_write_json(runtime.folder.metrics_file, metrics)
    return metrics


def main(argv=None):
    data_args, model_args, frozen_args, tune_args, runtime_args = parse_arguments(
        __doc__, DataArguments, ModelArguments, FrozenArguments, FineTuneArguments, RuntimeArguments, argv=argv,
        validate=check_stages)
    runtime = Runtime(runtime_args)
    splits, class_names = load_splits(data_args)  # First: a missing data set fails before the artifacts are built.
    preprocess, encoder = resolve_handles(model_args, runtime)
    runtime.write_config(data=data_args, model=model_args, frozen=frozen_args, fine_tune=tune_args,
                         runtime=runtime_args, handles={"preprocess": preprocess, "encoder": encoder})

    with runtime.scope():
        classifier = build_encoder_classifier(encoder, len(class_names), trainable=False, dropout=model_args.dropout,
                                              pooling=model_args.pooling)
    cli.describe_model(classifier, logger)

    metrics = {"handles": {"preprocess": preprocess, "encoder": encoder}}
    start = time.perf_counter()
    # Tokenized once, batched at each stage's batch size.
    encoded = encode_splits(splits, token_ids_encoder(preprocess, model_args.sequence_length),
                            max_length=model_args.sequence_length)
    if not frozen_args.skip_frozen_stage:
        batches = make_batches(encoded, model_args.sequence_length, frozen_args.frozen_batch_size, runtime)
        cache_key = "|".join(map(str, (os.path.abspath(encoder) if os.path.exists(encoder) else encoder,
                                       model_args.sequence_length, model_args.pooling, data_args)))
        metrics[FROZEN] = run_frozen_stage(classifier, batches, class_names, frozen_args, runtime.stage(FROZEN),
                                           cache_key)
    if not tune_args.skip_fine_tuning:
        batches = make_batches(encoded, model_args.sequence_length, tune_args.batch_size, runtime)
        metrics[FINE_TUNE] = run_fine_tuning(classifier, batches, class_names, tune_args, runtime.stage(FINE_TUNE),
                                             count_examples(splits["train"]))
    metrics["wall_seconds"] = time.perf_counter() - start

    if tune_args.export_dir:  # On every worker (saving reads distributed variables); the chief's is the export.
        serving_model = build_hub_bert_classifier(preprocess, classifier, len(class_names),
                                                  seq_length=model_args.sequence_length, return_truncated=True)
        metrics["export"] = export_text_classifier(serving_model, class_names,
                                                   runtime.worker_path(tune_args.export_dir))
    return write_two_stage_metrics(metrics, runtime, (FROZEN, FINE_TUNE), log=logger)


if __name__ == "__main__":
    cli.run(main)
