"""Train HF TFBertForTokenClassification for CoNLL-2003 NER, evaluate with seqeval, export a raw-text SavedModel.

    python -m pipelines.conll_ner --output-dir runs/conll_ner

The lesson's recipe (label alignment, ``transformers.create_optimizer`` with
weight decay 0.01, loss ignoring -100), made complete:

- **Features** in ``tf.data`` (`tfnlp.data.ner_features.NerPreprocessor`): the
  in-graph tokenizer on the CoNLL words, the first piece of a word takes its
  tag and the later ones its ``I-`` form (``--subword-labels inside``, the
  lesson's) or -100 (``ignore``); windows of ``--max-length`` tokens cover
  sequences longer than the model reads (never cut), batches are bucketed by
  length and padded to their own longest window, labels with -100.
- **Context** (``--context sentence``, the default): each sentence alone, as
  the lesson; ``document`` reads each CoNLL document whole, in windows, so a
  sentence comes with its neighbours (the BERT paper's NER set-up; lower
  validation F1 on MiniLM here).
- **Casing** (``--casing``): the uncased MiniLM lowercases its input; the casing
  of each piece (lower, Title, UPPER, ...) is embedded at the encoder's input
  (`tfnlp.models.build_bert_token_classifier`).
- **Model**: the packaged all-MiniLM-L6-v2 (``--pretrained ''``), a local HF BERT
  folder, or ``bert-base-cased`` online, with ``id2label``/``label2id`` for
  the 9 CoNLL tags; AdamW (``transformers.create_optimizer``) with linear
  warm-up and decay, the gradient clipped to norm 1.0 and only the vocabulary
  rows a batch uses updated (``--lazy-embedding-updates``: 1.6x faster steps).
- **Evaluation** with seqeval at entity level, sentence by sentence, each word
  tagged from its first piece and decoded as the most likely valid IOB2
  sequence (``--decoding iob``, the default; ``argmax``: each word alone):
  precision, recall, F1 overall and per type, on validation and test,
  in ``<output-dir>/metrics.json``.
- **Export** to ``<export-dir>/<version>/``: ``serving_default`` takes ``text``
  (`tf.string` ``[None]``) and returns the grouped entities (HF's
  ``aggregation_strategy="simple"``) with character offsets, computed in the
  graph with the same ``--decoding``, plus per-token labels
  (`tfnlp.serving.TokenClassifierModule`); a text is read up to ``--max-pieces``
  word pieces, in windows, and marked ``truncated`` if it had more. The script reloads it and checks it
  against the trained model, compares the predictor, decoding with argmax as
  HF does, with HF's ``pipeline`` on validation sentences (when the model reads
  no casing, which HF's tokenizer cannot provide), and reports the lesson's
  example sentence.
"""

import dataclasses
import logging
import time
from typing import Optional

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

from tfnlp.data.conll2003 import CONLL2003_LABELS
from tfnlp.data.ner_features import CONTEXTS, SUBWORD_LABELS, NerPreprocessor, conll_sequences
from tfnlp.serving.export import export_token_classifier
from tfnlp.serving.ner_predictor import NerPredictor
from tfnlp.serving.token_classifier_module import DEFAULT_MAX_PIECES
from tfnlp.tagging import DECODINGS
from tfnlp.tasks.conll_ner import (LESSON_SENTENCE, SMOKE_TEXTS, build_model, check_max_length, compile_model,
                                   count_windows, evaluate_final_weights, hf_pipeline_parity, load_splits)
from tfnlp.training import Runtime, RuntimeArguments, cli, field, parse_arguments
from tfnlp.training.arguments import (AVERAGE_FRACTION_HELP, AVERAGE_SNAPSHOTS_HELP, LAZY_HELP, MAX_GRAD_NORM_HELP,
                                      check_local_folder_or_hub_name, check_optimization_arguments)
from tfnlp.training.evaluation import fit_model
from tfnlp.training.report import write_run_report
from tfnlp.training.weight_averaging import weight_snapshots
from tfnlp.utils import atomic_write_json

logger = logging.getLogger("conll_ner")

@dataclasses.dataclass
class DataArguments:
    """Which CoNLL-2003 data to read, and how much of it."""

    data_dir: str = field("", "Folder with conll2003/{train,valid,test}.txt (or that folder itself); "
                              "'' = $TFNLP_DATA_DIR, else HF datasets online.")
    max_train_examples: Optional[int] = field(None, "Use only the first N training sentences (quick runs).")
    max_eval_examples: Optional[int] = field(None, "Use only the first N validation and test sentences.")

    def __post_init__(self):
        for name in ("max_train_examples", "max_eval_examples"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")


@dataclasses.dataclass
class ModelArguments:
    """The pretrained BERT, what it reads (context, casing, window) and how pieces are labelled."""

    pretrained: str = field("", "BERT to fine-tune: '' = the packaged all-MiniLM-L6-v2 (uncased), a local HF BERT "
                                "folder, or a hub name such as bert-base-cased (online).")
    context: str = field("sentence", "What the model reads as one text: each sentence alone (the lesson), or each "
                                     "CoNLL document, in windows, so sentences come with their neighbours.",
                         choices=CONTEXTS)
    casing: bool = field(False, "Embed each piece's casing (lower, Title, UPPER, ...) at the encoder's input "
                                "(for uncased models, whose ids lose it).")
    max_length: int = field(256, "Tokens per window, [CLS] and [SEP] included (at most the model's "
                                 "max_position_embeddings).")
    stride: Optional[int] = field(None, "Pieces shared by consecutive windows when predicting (HF's stride); "
                                        "None = half a window.")
    train_stride: int = field(0, "Pieces shared by consecutive training windows (0: each piece trained once per "
                                 "epoch, in one window).")
    subword_labels: str = field("inside", "Label of a word's later pieces: inside (the I- form of its tag, as the "
                                          "lesson) or ignore (-100).", choices=SUBWORD_LABELS)

    def __post_init__(self):
        check_local_folder_or_hub_name("--pretrained", self.pretrained)
        if self.max_length < 3:
            raise ValueError("--max-length must be at least 3 ([CLS], a piece, [SEP])")
        for name in ("stride", "train_stride"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.max_length - 2:
                raise ValueError(f"--{name.replace('_', '-')} must lie in [0, --max-length - 2)")


@dataclasses.dataclass
class TrainingArguments:
    """Fine-tuning (AdamW, linear warm-up and decay), evaluation and export."""

    epochs: int = field(3, "Training epochs.")
    batch_size: int = field(16, "Windows per batch (global, split across replicas).")
    learning_rate: float = field(1e-4, "Peak AdamW learning rate (transformers.create_optimizer).")
    warmup_ratio: float = field(0.1, "Fraction of the steps with linear warm-up from 0.")
    weight_decay: float = field(0.01, "AdamW weight decay (never on LayerNorm and bias weights).")
    max_grad_norm: float = field(1.0, MAX_GRAD_NORM_HELP)
    lazy_embedding_updates: bool = field(True, LAZY_HELP)
    restore_best_epoch: bool = field(False, "Evaluate and export the epoch with the best validation token "
                                            "accuracy instead of the last one.")
    average_snapshots: int = field(0, AVERAGE_SNAPSHOTS_HELP + " The average is kept if it beats the last epoch on "
                                                               "validation (entity F1).")
    average_fraction: float = field(0.25, AVERAGE_FRACTION_HELP)
    decoding: str = field("iob", "Word tags from their first piece's logits, in the evaluation and the export: "
                                 "iob (the most likely valid IOB2 sequence of each text's words), or argmax (each "
                                 "word alone, as HF's pipeline).", choices=DECODINGS)
    export_dir: str = field("saved_models/conll_ner", "Export base folder; the SavedModel goes to "
                                                      "<export-dir>/<next version>/. '' = no export.")
    max_pieces: int = field(DEFAULT_MAX_PIECES, "Export: word pieces the served model reads per text (in windows); "
                                                "a longer text is read up to there and marked truncated, so one "
                                                "text costs at most about 1 s on 2 cores at the default.")

    def __post_init__(self):
        check_optimization_arguments(self)
        if self.max_pieces < 1:
            raise ValueError("--max-pieces must be at least 1")
        if self.average_snapshots and self.restore_best_epoch:
            raise ValueError("--average-snapshots averages the last steps' weights: not with --restore-best-epoch")


def main(argv=None):
    data_args, model_args, train_args, runtime_args = parse_arguments(
        __doc__, DataArguments, ModelArguments, TrainingArguments, RuntimeArguments, argv=argv)
    examples = load_splits(data_args)  # First: a missing data set fails in seconds.
    check_max_length(model_args)
    runtime = Runtime(runtime_args)
    runtime.write_config(data=data_args, model=model_args, training=train_args, runtime=runtime_args)

    preprocessor = NerPreprocessor.from_pretrained(
        model_args.pretrained or None, labels=CONLL2003_LABELS, max_length=model_args.max_length,
        stride=model_args.stride, subword_labels=model_args.subword_labels, casing=model_args.casing)
    sequences = {name: conll_sequences(split, model_args.context) for name, split in examples.items()}
    batches = {name: preprocessor.training_batches(
                   sequences[name], batch_size=train_args.batch_size, shuffle=name == "train",
                   seed=runtime_args.seed, stride=model_args.train_stride if name == "train" else None,
                   pad_to_boundary=runtime_args.jit_compile, progress=f"preparing the {name} windows")
               for name in ("train", "validation")}
    num_train, num_tokens = count_windows(batches["train"])  # Windows and their tokens in a training epoch.
    model = build_model(model_args, runtime)
    total_steps = int(batches["train"].cardinality()) * train_args.epochs
    compile_model(model, train_args, runtime, total_steps)
    cli.describe_model(model, logger)
    snapshots = weight_snapshots(train_args, runtime, total_steps)  # None without --average-snapshots.

    cpu_start = time.process_time()
    metrics, _ = fit_model(model, runtime, batches, epochs=train_args.epochs, num_train=num_train,
                           restore_best=train_args.restore_best_epoch,
                           extra_callbacks=[snapshots] if snapshots else ())
    # CPU time of this process while training (this session): unlike the wall time, not inflated by other
    # processes sharing the machine; divided by the cores, what the training needs on an idle machine.
    metrics["train_cpu_seconds_this_session"] = time.process_time() - cpu_start
    metrics["train_windows"] = metrics.pop("train_examples")
    metrics["train_tokens"] = num_tokens
    metrics["train_sentences"] = len(examples["train"])
    if metrics["train_examples_per_second"]:
        metrics["train_tokens_per_second"] = metrics["train_examples_per_second"] * num_tokens / num_train
    # The last epoch's weights, or the snapshots' average if it wins on validation (the classifiers' rule).
    metrics.update(evaluate_final_weights(model, preprocessor, sequences, train_args.decoding, snapshots, log=logger))
    for name in ("validation", "test"):
        per_type = ", ".join(f"{t} {v['f1']:.3f}" for t, v in metrics[name]["per_type"].items())
        cli.log_result("%s: F1 %.4f (precision %.4f, recall %.4f); %s", name, metrics[name]["f1"],
                       metrics[name]["precision"], metrics[name]["recall"], per_type, log=logger)
    cli.log_result("training %.0f s in %d session(s), %.1f windows/s (%.0f tokens/s)", metrics["train_wall_seconds"],
                   metrics.get("training_sessions", 1), metrics["train_examples_per_second"] or float("nan"),
                   metrics.get("train_tokens_per_second") or float("nan"), log=logger)

    predictor = NerPredictor.from_model(model, preprocessor, decoding=train_args.decoding,
                                        max_pieces=train_args.max_pieces)
    if runtime.is_chief:
        if not model_args.casing:  # HF's pipeline decodes with argmax: compared with ours decoding the same way.
            hf_like = predictor if train_args.decoding == "argmax" else NerPredictor.from_model(
                model, preprocessor, max_pieces=train_args.max_pieces)
            metrics["hf_pipeline_parity"] = hf_pipeline_parity(model, model_args, examples["validation"], hf_like)
            cli.log_result("predictor = HF pipeline on %d validation sentences (%d entities; scores within %.1g)",
                           metrics["hf_pipeline_parity"]["texts"], metrics["hf_pipeline_parity"]["entities"],
                           metrics["hf_pipeline_parity"]["max_score_difference"], log=logger)
        if train_args.export_dir:
            metrics["export"] = export_token_classifier(predictor.module, train_args.export_dir,
                                                        smoke_texts=SMOKE_TEXTS)
            metrics["lesson_example"] = {"text": LESSON_SENTENCE, "entities": metrics["export"]["smoke_entities"][0]}
        else:
            metrics["lesson_example"] = {"text": LESSON_SENTENCE, "entities": predictor(LESSON_SENTENCE)}
        cli.log_result("%s -> %s", LESSON_SENTENCE, [(e["entity_group"], e["word"], e["start"], e["end"],
                                                       round(e["score"], 4))
                                                      for e in metrics["lesson_example"]["entities"]], log=logger)
        metrics["plots"] = write_run_report(runtime.folder, metrics)  # Curves, per-entity P/R/F1 bars.
        atomic_write_json(runtime.folder.metrics_file, metrics)
        cli.log_result("wrote %s; SavedModel: %s", runtime.folder.metrics_file,
                       metrics["export"]["path"] if "export" in metrics else "none (--export-dir '')", log=logger)
    return metrics


if __name__ == "__main__":
    cli.run(main)
