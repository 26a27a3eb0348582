"""NER evaluation: entity-level precision, recall and F1 with seqeval, sentence by sentence.

The figures are those of the CoNLL-2003 shared task (``conlleval``): an entity
counts as found only if its type and both its boundaries are right. Each
sentence is a separate sequence for seqeval (not all predictions flattened
into one, which would merge entities across sentence ends), and each word's
tag comes from its first sub-word piece.

Example:
>>> report = entity_report([["B-PER", "I-PER", "O"], ["B-LOC"]], [["B-PER", "I-PER", "O"], ["B-ORG"]])
>>> report["f1"], report["per_type"]["PER"]["f1"], report["per_type"]["LOC"]["recall"]
(0.5, 1.0, 0.0)
"""

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf
import tf_keras

from tfnlp.data.ner_features import IGNORE_INDEX
from tfnlp.tagging.iob import DECODINGS, decode_tags


def entity_report(true_tags, predicted_tags):
    """Entity-level precision, recall and F1, overall (micro) and per entity type (seqeval, conlleval rules).

    Args:
        true_tags: list of list of str. IOB2 tags of each sentence.
        predicted_tags: list of list of str. Predicted tags, same shape.

    Returns:
        A JSON-ready dict: ``precision``, ``recall``, ``f1`` (micro over entities), ``accuracy``
        (of word tags), ``num_sentences``, ``num_entities`` (true ones), and ``per_type``:
        ``{type: {precision, recall, f1, support}}``.
    """
    from seqeval import metrics

    if len(true_tags) != len(predicted_tags) or any(
            len(t) != len(p) for t, p in zip(true_tags, predicted_tags)):
        raise ValueError("true_tags and predicted_tags must have the same sentences and lengths")
    per_type = metrics.classification_report(true_tags, predicted_tags, output_dict=True, zero_division=0)
    words = sum(len(t) for t in true_tags)
    correct = sum(a == b for t, p in zip(true_tags, predicted_tags) for a, b in zip(t, p))
    return {
        "precision": float(metrics.precision_score(true_tags, predicted_tags, zero_division=0)),
        "recall": float(metrics.recall_score(true_tags, predicted_tags, zero_division=0)),
        "f1": float(metrics.f1_score(true_tags, predicted_tags, zero_division=0)),
        "accuracy": correct / words if words else float("nan"),
        "num_sentences": len(true_tags),
        "num_entities": int(sum(v["support"] for k, v in per_type.items() if not k.endswith(" avg"))),
        "per_type": {name: {"precision": float(v["precision"]), "recall": float(v["recall"]),
                            "f1": float(v["f1-score"]), "support": int(v["support"])}
                     for name, v in sorted(per_type.items()) if not name.endswith(" avg")},
    }


def evaluate_ner(model, preprocessor, sequences, *, decoding="argmax", words_per_call=2048):
    """Entity-level figures of ``model`` on labelled sequences (`entity_report`), sentence by sentence.

    Args:
        model: tf_keras.Model. Model inputs (`tfnlp.data.ner_features.NerPreprocessor`) to logits.
        preprocessor: tfnlp.data.ner_features.NerPreprocessor.
        sequences: tfnlp.data.ner_features.NerSequences. Sentences, or documents (then the model
            reads each sentence with its neighbours, and is scored on each sentence).
        decoding: str. As in `tfnlp.tagging.decode_tags`: the decoding of the returned figures.
        words_per_call: int. Words (of consecutive sequences) per model call.

    Returns:
        `entity_report`'s dict for ``decoding``, plus ``decoding`` and ``f1_by_decoding`` (the F1 of
        every decoding, from the same predictions).
    """
    if decoding not in DECODINGS:
        raise ValueError(f"decoding must be one of {DECODINGS}, got {decoding!r}")
    word_logits = sequences.sentence_values(preprocessor.predict_word_logits(model, sequences,
                                                                             words_per_call=words_per_call))
    names = preprocessor.labels
    true_tags = [[names[i] for i in tags] for tags in sequences.sentence_values(sequences.tags)]
    reports = {}
    for name in DECODINGS:
        predicted = [[names[i] for i in decode_tags(logits, names, name)] for logits in word_logits]
        reports[name] = entity_report(true_tags, predicted)
    return {**reports[decoding], "decoding": decoding,
            "f1_by_decoding": {name: report["f1"] for name, report in reports.items()}}


@tf_keras.utils.register_keras_serializable(package="tfnlp")
class TokenAccuracy(tf_keras.metrics.Mean):
    """Accuracy of per-token argmax predictions over the labelled tokens (labels other than ``ignore_index``).

    A cheap progress figure for ``fit``'s logs; the NER figure is `evaluate_ner`'s entity F1.

    Args:
        ignore_index: int. The label of tokens to skip.
        name: str. Metric name.

    Example:
    >>> metric = TokenAccuracy()
    >>> _ = metric.update_state(tf.constant([[1, 0, -100]]), tf.constant([[[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]]))
    >>> float(metric.result())
    0.5
    """

    def __init__(self, ignore_index=IGNORE_INDEX, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.ignore_index = int(ignore_index)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = tf.cast(y_true, tf.int32)
        mask = tf.not_equal(y_true, self.ignore_index)
        correct = tf.cast(tf.equal(tf.cast(tf.argmax(y_pred, axis=-1), tf.int32), y_true), self.dtype)
        return super().update_state(tf.boolean_mask(correct, mask))

    def get_config(self):
        config = super().get_config()
        config.update({"ignore_index": self.ignore_index})
        return config
