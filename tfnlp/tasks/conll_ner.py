"""The CoNLL-2003 NER recipe `pipelines.conll_ner` runs: data, model, optimizer, window counting, evaluation with
seqeval, checkpoint averaging under the classifiers' rule, and the check against HF's ``pipeline``.

The fit script is its arguments (duck-typed here: ``args``, ``model_args``, ``train_args`` are its argument
groups) and a ``main`` calling these functions in order.
"""

import copy
import time

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf

from tfnlp import pretrained
from tfnlp.data import load_conll2003_examples
from tfnlp.data.conll2003 import CONLL2003_LABELS
from tfnlp.errors import ConfigurationError
from tfnlp.models.bert_token_classifier import build_bert_token_classifier, hf_token_classifier, token_classifier_model
from tfnlp.serving.ner_predictor import check_same_entities, hf_pipeline_entities
from tfnlp.training import cli
from tfnlp.training.evaluation import keep_better_average
from tfnlp.training.losses import MaskedSparseCategoricalCrossentropy
from tfnlp.training.ner_metrics import TokenAccuracy, evaluate_ner
from tfnlp.training.optimization import create_optimizer

LESSON_SENTENCE = "My name is Dmitry and I work at Moscow Aviation Institute in Moscow."
# Checked after the export: the lesson's sentence, empty and blank texts, non-Latin scripts, unknown characters.
SMOKE_TEXTS = (LESSON_SENTENCE, "", "  \n\t ", "Владимир Путин посетил Москву.", "東京でソニーの会議があった。",
               "Angela Merkel met Emmanuel Macron in Paris 🙂 ∰ ☃.")
HF_PARITY_SENTENCES = 50


def load_splits(args):
    """The CoNLL-2003 train, validation and test sentences (`tfnlp.data.ConllExamples`)."""
    options = dict(data_dir=args.data_dir or None)
    return {"train": load_conll2003_examples("train", max_examples=args.max_train_examples, **options),
            "validation": load_conll2003_examples("validation", max_examples=args.max_eval_examples, **options),
            "test": load_conll2003_examples("test", max_examples=args.max_eval_examples, **options)}


def check_max_length(model_args):
    """Raises ConfigurationError if windows of --max-length tokens do not fit the model's position embeddings."""
    from transformers import BertConfig

    folder = pretrained.resolve_pretrained(model_args.pretrained or None)
    positions = BertConfig.from_pretrained(folder).max_position_embeddings
    if model_args.max_length > positions:
        raise ConfigurationError(f"--max-length {model_args.max_length} exceeds the {positions} positions of "
                                 f"{folder}")


def build_model(model_args, runtime):
    """The HF token classifier (pretrained encoder, new head) and its functional Keras wrapper."""
    with runtime.scope():
        bert = build_bert_token_classifier(model_args.pretrained or None, labels=CONLL2003_LABELS,
                                           casing=model_args.casing)
        return token_classifier_model(bert)


def compile_model(model, train_args, runtime, num_train_steps):
    """AdamW from ``transformers.create_optimizer``; cross-entropy over the labelled tokens; token accuracy."""
    with runtime.scope():
        model.compile(
            optimizer=create_optimizer(train_args.learning_rate, num_train_steps, warmup_ratio=train_args.warmup_ratio,
                                       weight_decay=train_args.weight_decay, implementation="transformers",
                                       lazy_sparse_updates=train_args.lazy_embedding_updates,
                                       global_clipnorm=train_args.max_grad_norm or None),
            loss=MaskedSparseCategoricalCrossentropy(), metrics=[TokenAccuracy()], **runtime.compile_options())


def evaluate(model, preprocessor, sequences, decoding):
    """seqeval figures on each evaluation split, and how long predicting took."""
    results = {}
    for name, split in sequences.items():
        start = time.perf_counter()
        results[name] = evaluate_ner(model, preprocessor, split, decoding=decoding)
        results[name]["predict_seconds"] = time.perf_counter() - start
    return results


def hf_pipeline_parity(model, model_args, examples, predictor, count=HF_PARITY_SENTENCES):
    """Our predictor against HF's ``pipeline(..., aggregation_strategy="simple")`` on the same model.

    Texts are the first ``count`` validation sentences, words joined with spaces. Raises AssertionError
    if the groups or offsets differ or a score differs by more than 1e-4.
    """
    from transformers import BertTokenizerFast, pipeline

    texts = [" ".join(words) for words in examples.tokens[:count]]
    tokenizer = BertTokenizerFast.from_pretrained(pretrained.resolve_pretrained(model_args.pretrained or None))
    hf = pipeline("token-classification", model=hf_token_classifier(model), tokenizer=tokenizer,
                  aggregation_strategy="simple", framework="tf", dtype=None)
    expected = hf_pipeline_entities(hf, texts)
    ours = predictor(texts)
    check_same_entities(ours, expected, atol=1e-4, compare_words=False, context="predictor vs HF pipeline")
    difference = max((abs(a["score"] - b["score"]) for x, y in zip(ours, expected) for a, b in zip(x, y)),
                     default=0.0)
    return {"texts": len(texts), "entities": sum(map(len, ours)), "max_score_difference": difference,
            "same_groups_and_offsets": True}


def count_windows(batches):
    """``(windows, tokens)`` in one pass over ``batches`` of ``(inputs, labels)``: the training examples of an
    epoch, and their tokens (``[CLS]`` and ``[SEP]`` included, padding not)."""
    windows, tokens = 0, 0
    for inputs, _ in batches:
        windows += int(inputs["attention_mask"].shape[0])
        tokens += int(tf.reduce_sum(inputs["attention_mask"]))
    return windows, tokens


def evaluate_final_weights(model, preprocessor, sequences, decoding, snapshots=None, log=None):
    """The seqeval figures of the weights a run keeps: the last (or best) epoch's, or the snapshots' average if
    it has a higher entity F1 on validation (`tfnlp.training.evaluation.keep_better_average`, the classifiers'
    rule).

    Args:
        model: tf_keras.Model. The trained token classifier; left holding the kept weights.
        preprocessor: tfnlp.data.ner_features.NerPreprocessor.
        sequences: dict with ``validation`` and ``test`` sequences (`tfnlp.data.ner_features.conll_sequences`).
        decoding: str. ``"iob"`` or ``"argmax"``.
        snapshots: `tfnlp.training.weight_averaging.WeightSnapshots` or None (no ``--average-snapshots``).
        log: logging.Logger or None. The script's logger.

    Returns:
        dict: ``validation`` and ``test`` (`evaluate`'s figures of the kept weights); with ``snapshots``, also
        ``last_weights`` (the epoch's weights' figures), ``averaging`` (as the classifiers': the validation F1
        of both, how many snapshots, ``kept``), ``averaged_snapshots`` (their number) and, when the average
        was kept, ``weights: "averaged_snapshots"``.
    """
    splits = {"validation": sequences["validation"], "test": sequences["test"]}
    if snapshots is None:
        return evaluate(model, preprocessor, splits, decoding)
    results = {"last_weights": evaluate(model, preprocessor, splits, decoding)}
    results["averaging"], _ = keep_better_average(
        model, snapshots, lambda averaged: evaluate_ner(averaged, preprocessor, splits["validation"],
                                                        decoding=decoding)["f1"],
        results["last_weights"]["validation"]["f1"], metric="f1")
    results["averaged_snapshots"] = results["averaging"]["snapshots"]
    cli.log_result("last weights: validation F1 %.4f, test F1 %.4f; %d snapshots averaged: validation F1 %.4f, %s",
                   results["last_weights"]["validation"]["f1"], results["last_weights"]["test"]["f1"],
                   results["averaged_snapshots"], results["averaging"]["validation_f1_averaged"],
                   "the average is kept" if results["averaging"]["kept"] else "the last weights are kept", log=log)
    if results["averaging"]["kept"]:
        results["weights"] = "averaged_snapshots"  # As the classifiers say it.
        results.update(evaluate(model, preprocessor, splits, decoding))
    else:  # The last weights are back in the model: their figures are the run's.
        results.update(copy.deepcopy(results["last_weights"]))
    return results
