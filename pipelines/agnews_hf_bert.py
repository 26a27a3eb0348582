"""Train HuggingFace ``TFBertForSequenceClassification`` on AG News: frozen encoder first, then fine-tuning.

    python -m pipelines.agnews_hf_bert --output-dir runs/agnews_hf_bert

The lesson's HuggingFace model (``TFBertForSequenceClassification`` with the
AG News ``id2label``), from the packaged all-MiniLM-L6-v2 by default
(``--pretrained``: a local HF BERT folder, or a hub name such as
``bert-base-uncased`` online). Texts are tokenized once, in the graph, by
`tfnlp.text.BertTokenizer` inside ``tf.data`` (no ``py_function``), cached, and
batched by length, each batch padded to its own longest text.

Stage 1 (the lesson's ``model.layers[0].trainable = False``): the encoder's
vectors are computed once per split and cached in <output-dir>/frozen/features/,
and only the head (dropout + classifier; with ``--frozen-features cls`` also the
pooler) trains on them. Stage 2 fine-tunes everything with
``transformers.create_optimizer`` (linear warm-up, then linear decay; weight
decay not on LayerNorm and bias weights), starting from the stage-1 head; the
best epoch on validation is kept, or, with ``--average-snapshots N``, the average
of N weight snapshots over the end of the training if it scores higher on
validation. Each stage writes checkpoints, logs, history.csv and metrics.json under
<output-dir>/<stage>/; config.json and the run's metrics.json go to <output-dir>.

The export, <export-dir>/<version>/, has two signatures: ``serving_default``
(``text``) and ``serving_ids`` (``input_ids``, ``attention_mask``,
``token_type_ids``, for clients that tokenize themselves); it needs
``import tensorflow_text`` to load, not tfnlp. Beside the SavedModel,
<version>/hf_model/ holds the ``save_pretrained`` folder (config.json with the
labels, tf_model.h5, tokenizer files) that ``from_pretrained`` reloads.
"""

import dataclasses
import logging
import os
import time

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

from tfnlp import pretrained
from tfnlp.data.batching import batch_splits, encode_splits
from tfnlp.models.hf_bert_classifier import (build_hf_bert_classifier, frozen_feature_extractor, frozen_head,
                                             hf_inputs, ids_classifier, text_classifier)
from tfnlp.serving import export_text_classifier
from tfnlp.text import BertTokenizer
from tfnlp.errors import ConfigurationError
from tfnlp.training import RunFolder, Runtime, RuntimeArguments, cli, field, parse_arguments
from tfnlp.training.arguments import check_local_folder_or_hub_name
from tfnlp.training.classification import compile_classifier, train_frozen_head
from tfnlp.training.evaluation import fit_and_evaluate
from tfnlp.training.weight_averaging import weight_snapshots
from tfnlp.utils import atomic_write_json

from pipelines.common import (DataArguments, FrozenArguments, check_stages, count_examples, fine_tune_arguments,
                              load_splits, write_two_stage_metrics)

logger = logging.getLogger("agnews_hf_bert")

FROZEN, FINE_TUNE = RunFolder.FROZEN, RunFolder.FINE_TUNE
FROZEN_FEATURES = ("cls", "pooler_output")
HF_MODEL_FOLDER = "hf_model"


@dataclasses.dataclass
class ModelArguments:
    """The pretrained BERT, its tokenizer and the classifier head."""

    pretrained: str = field("", "'' = packaged all-MiniLM-L6-v2, a local HF BERT folder (TF or safetensors "
                                "weights), or a hub name (online).")
    sequence_length: int = field(128, "Maximum WordPiece tokens per text ([CLS] and [SEP] included); batches are "
                                      "padded only to their longest text.")
    classifier_dropout: float = field(0.1, "Dropout before the classifier, in [0, 1).")
    frozen_features: str = field("cls", "What stage 1 caches: cls (the [CLS] hidden state; the pooler's dense + "
                                        "tanh then trains with the classifier) or pooler_output (all of the "
                                        "encoder frozen, pooler included, as the lesson).",
                                 choices=FROZEN_FEATURES)

    def __post_init__(self):
        check_local_folder_or_hub_name("--pretrained", self.pretrained)
        if not 3 <= self.sequence_length <= 512:
            raise ValueError("--sequence-length must lie in [3, 512] ([CLS], a token, [SEP]; BERT's positions)")
        if not 0 <= self.classifier_dropout < 1:
            raise ValueError("--classifier-dropout must lie in [0, 1)")


# Chosen on the validation slice (see the README): 4 epochs at 1e-4, the weights at the ends of the last three averaged.
FineTuneArguments = fine_tune_arguments(epochs=4, learning_rate=1e-4, export_dir="saved_models/agnews_hf_bert",
                                       optimizer="transformers.create_optimizer", max_grad_norm=0.0,
                                       average_snapshots=3, average_fraction=0.5)


def make_batches(encoded, sequence_length, batch_size, runtime):
    """The encoded splits batched by length, as ``(HF inputs, label)``."""
    batches = batch_splits(encoded, max_length=sequence_length, batch_size=batch_size, seed=runtime.args.seed,
                           pad_to_boundary=runtime.args.jit_compile)
    return {name: dataset.map(lambda ids, label: (hf_inputs(ids), label)) for name, dataset in batches.items()}


def run_frozen_stage(bert_classifier, batches, class_names, args, model_args, runtime, cache_key):
    """Stage 1: the frozen encoder's vectors cached once, the head trained on them (`train_frozen_head`)."""
    train_pooler = model_args.frozen_features == "cls"
    with runtime.scope():
        extractor = frozen_feature_extractor(bert_classifier, train_pooler=train_pooler)
        head = frozen_head(bert_classifier, train_pooler=train_pooler)
    return train_frozen_head(extractor, head, batches, class_names, runtime, cache_key=cache_key,
                             settings={**dataclasses.asdict(args), "frozen_features": model_args.frozen_features},
                             epochs=args.frozen_epochs, batch_size=args.frozen_batch_size,
                             learning_rate=args.frozen_learning_rate, implementation="transformers")


def run_fine_tuning(bert_classifier, batches, class_names, args, runtime, num_train):
    """Stage 2: all weights trained, AdamW from ``transformers.create_optimizer``. Returns its metrics."""
    steps = int(batches["train"].cardinality()) * args.epochs
    with runtime.scope():
        bert_classifier.bert.trainable = True
        trainer = ids_classifier(bert_classifier)
        compile_classifier(trainer, runtime, learning_rate=args.learning_rate, num_train_steps=steps,
                           warmup_ratio=args.warmup_ratio, weight_decay=args.weight_decay,
                           implementation="transformers", lazy_sparse_updates=args.lazy_embedding_updates,
                           global_clipnorm=args.max_grad_norm or None)
    metrics, _ = fit_and_evaluate(trainer, runtime, batches, epochs=args.epochs, num_train=num_train,
                                  class_names=class_names, snapshots=weight_snapshots(args, runtime, steps))
    cli.log_result("fine-tuning: test accuracy %.4f, training %.0f s, %.1f examples/s", metrics["test"]["accuracy"],
                   metrics["train_wall_seconds"], metrics["train_examples_per_second"] or float("nan"), log=logger)
    if runtime.is_chief:
        atomic_write_json(runtime.folder.metrics_file, metrics)
    return metrics


def export(bert_classifier, pretrained_folder, class_names, model_args, export_dir):
    """The two-signature SavedModel in ``<export_dir>/<version>/``, with the ``save_pretrained`` folder inside."""
    tokenizer = BertTokenizer.from_pretrained(pretrained_folder, sequence_length=model_args.sequence_length,
                                              return_num_truncated_tokens=True, name="tokenizer")

    def save_hf_model(version_folder):
        pretrained.save_pretrained(bert_classifier, os.path.join(version_folder, HF_MODEL_FOLDER), pretrained_folder)

    return export_text_classifier(
        text_classifier(bert_classifier, tokenizer), class_names, export_dir,
        ids_model=ids_classifier(bert_classifier, name="hf_bert_ids_classifier"), tokenizer=tokenizer,
        max_length=bert_classifier.config.max_position_embeddings, extras=save_hf_model)


def check_sequence_length(folder, sequence_length):
    """Rejects a --sequence-length beyond the pretrained BERT's position embeddings (read from its config.json)."""
    limit = pretrained.read_config(folder).get("max_position_embeddings", 512)
    if sequence_length > limit:
        raise ConfigurationError(f"--sequence-length {sequence_length} exceeds the {limit} positions of the BERT in "
                                 f"{folder}")


def main(argv=None):
    data_args, model_args, frozen_args, tune_args, runtime_args = parse_arguments(
        __doc__, DataArguments, ModelArguments, FrozenArguments, FineTuneArguments, RuntimeArguments, argv=argv,
        validate=check_stages)
    runtime = Runtime(runtime_args)  # First: a multi-worker or TPU strategy must exist before any TensorFlow op.
    splits, class_names = load_splits(data_args)  # Next: a missing data set fails in seconds.
    folder = pretrained.resolve_pretrained(model_args.pretrained or None)  # Resolved once; used from here on.
    check_sequence_length(folder, model_args.sequence_length)
    runtime.write_config(data=data_args, model=model_args, frozen=frozen_args, fine_tune=tune_args,
                         runtime=runtime_args, pretrained={"folder": folder})

    tokenizer = BertTokenizer.from_pretrained(folder, sequence_length=model_args.sequence_length)
    with runtime.scope():
        bert_classifier = build_hf_bert_classifier(folder, class_names=class_names,
                                                   classifier_dropout=model_args.classifier_dropout)
    cli.describe_model(bert_classifier, logger)

    metrics = {"pretrained": folder}
    start = time.perf_counter()
    # Tokenized once (in the graph), batched at each stage's batch size.
    encoded = encode_splits(splits, tokenizer, max_length=model_args.sequence_length)
    if not frozen_args.skip_frozen_stage:
        batches = make_batches(encoded, model_args.sequence_length, frozen_args.frozen_batch_size, runtime)
        cache_key = "|".join(map(str, (folder, model_args.sequence_length, model_args.frozen_features, data_args)))
        metrics[FROZEN] = run_frozen_stage(bert_classifier, batches, class_names, frozen_args, model_args,
                                           runtime.stage(FROZEN), cache_key)
    if not tune_args.skip_fine_tuning:
        batches = make_batches(encoded, model_args.sequence_length, tune_args.batch_size, runtime)
        metrics[FINE_TUNE] = run_fine_tuning(bert_classifier, batches, class_names, tune_args,
                                             runtime.stage(FINE_TUNE), count_examples(splits["train"]))
    metrics["wall_seconds"] = time.perf_counter() - start

    if tune_args.export_dir:  # On every worker (saving reads distributed variables); the chief's is the export.
        metrics["export"] = export(bert_classifier, folder, class_names, model_args,
                                   runtime.worker_path(tune_args.export_dir))
    return write_two_stage_metrics(metrics, runtime, (FROZEN, FINE_TUNE), log=logger)


if __name__ == "__main__":
    cli.run(main)
