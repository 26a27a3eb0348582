"""Train the lesson's custom Keras Transformer on AG News and export a SavedModel that serves raw text.

    python -m pipelines.agnews_transformer --output-dir runs/agnews_transformer

Reads AG News from --data-dir / $TFNLP_DATA_DIR (the ag_news_csv files), else
from tfds. Writes config.json, TensorBoard logs, checkpoints, history.csv and
metrics.json to --output-dir, and the SavedModel to <export-dir>/<version>/.
Started again with the same arguments, a run killed at any moment resumes from
its last completed epoch, or skips a training that had finished. The terminal
shows the configuration, progress, one line per epoch and the results
(--verbose: the frameworks' logs too; --quiet: warnings and results only);
errors are one line (--debug: their traceback).

The defaults tokenize with the packaged all-MiniLM-L6-v2 WordPiece vocabulary
(in-graph) and use its frozen WordPiece vectors, projected to a narrow
Transformer that is trained from scratch with the classifier, next to a bag of
hashed WordPiece bigrams (fastText's; `tfnlp.layers.HashedNgramBag`). While
training, the pooled text vector also learns to predict the frozen MiniLM's
sentence embedding of each text (`tfnlp.models.SentenceEmbeddingDistiller`;
the embeddings are computed once and cached in <output-dir>/teacher); the
export is the classifier alone. The last epoch is tested and exported
(``--restore-best-epoch`` for the best one on validation). The lesson
notebook's configuration (TextVectorization 20,000 tokens, texts padded to
256, embedding 32, 2 heads, feed-forward 32) is
``--args-file pipelines/configs/agnews_transformer_lesson.json``.
"""

import logging

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

from tfnlp.serving import export_text_classifier
from tfnlp.tasks.ag_news import DataArguments, count_examples, load_splits
from tfnlp.tasks.agnews_transformer import (ModelArguments, TrainingArguments, attach_teacher_embeddings,
                                            build_model, build_trainer, build_vectorizer, compile_model,
                                            export_model, make_batches)
from tfnlp.training import Runtime, RuntimeArguments, cli, parse_arguments
from tfnlp.training.evaluation import fit_and_evaluate
from tfnlp.utils import atomic_write_json

logger = logging.getLogger("agnews_transformer")


def main(argv=None):
    data_args, model_args, train_args, runtime_args = parse_arguments(
        __doc__, DataArguments, ModelArguments, TrainingArguments, RuntimeArguments, argv=argv)
    runtime = Runtime(runtime_args)  # First: a multi-worker or TPU strategy must exist before any TensorFlow op.
    splits, class_names = load_splits(data_args)  # Next: a missing data set fails in seconds.
    runtime.write_config(data=data_args, model=model_args, training=train_args, runtime=runtime_args)

    teacher_dim, teacher_seconds = None, 0.0
    if train_args.distillation_weight:
        splits["train"], teacher_dim, teacher_seconds = attach_teacher_embeddings(
            splits["train"], model_args, train_args, runtime)
        runtime.reseed()  # The same initial weights whether the teacher ran or its embeddings were cached.
    num_train = count_examples(splits["train"])
    vectorizer = build_vectorizer(model_args, splits["train"], num_train)
    batches = make_batches(splits, vectorizer, model_args, train_args, runtime)
    steps_per_epoch = int(batches["train"].cardinality())  # Each length bucket may end in a partial batch.

    with runtime.scope():
        model = build_model(model_args, vectorizer, len(class_names))
        trainer = build_trainer(model, train_args, teacher_dim)
        compile_model(trainer, train_args, runtime, steps_per_epoch * train_args.epochs, len(class_names))
    cli.describe_model(model, logger)

    metrics, _ = fit_and_evaluate(trainer, runtime, batches, epochs=train_args.epochs, num_train=num_train,
                                  class_names=class_names, restore_best=train_args.restore_best_epoch)
    metrics["teacher_seconds"] = teacher_seconds
    cli.log_result("test accuracy %.4f (validation %.4f); training %.0f s in %d session(s), %.0f examples/s; "
                   "teacher embeddings %.0f s", metrics["test"]["accuracy"], metrics["validation_accuracy"],
                   metrics["train_wall_seconds"], metrics["training_sessions"],
                   metrics["train_examples_per_second"] or float("nan"), teacher_seconds, log=logger)

    if train_args.export_dir:  # On every worker (saving reads distributed variables); the chief's is the export.
        metrics["export"] = export_text_classifier(export_model(model, vectorizer, model_args.sequence_length),
                                                   class_names, runtime.worker_path(train_args.export_dir))
    if runtime.is_chief:
        atomic_write_json(runtime.folder.metrics_file, metrics)
        cli.log_result("wrote %s; SavedModel: %s", runtime.folder.metrics_file,
                       metrics["export"]["path"] if "export" in metrics else "none (--export-dir '')", log=logger)
    return metrics


if __name__ == "__main__":
    cli.run(main)
