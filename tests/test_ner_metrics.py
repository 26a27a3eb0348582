"""NER evaluation: seqeval entity figures per sentence, valid-IOB decoding, the masked loss and token accuracy."""

import itertools

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import pytest
import tensorflow as tf
from seqeval import metrics as seqeval_metrics

from tfnlp.data import CONLL2003_LABELS
from tfnlp.tagging.iob import decode_tags, iob_transitions
from tfnlp.training.losses import MaskedSparseCategoricalCrossentropy
from tfnlp.training.ner_metrics import TokenAccuracy, entity_report


def test_entity_report_is_seqeval_per_sentence():
    true = [["B-PER", "I-PER", "O", "B-LOC"], ["I-ORG", "O"], ["B-MISC"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"], ["O"]]
    report = entity_report(true, predicted)
    assert report["f1"] == pytest.approx(seqeval_metrics.f1_score(true, predicted))
    assert report["precision"] == pytest.approx(2 / 3) and report["recall"] == pytest.approx(2 / 4)
    assert report["per_type"]["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert report["per_type"]["LOC"]["recall"] == 0.0 and report["per_type"]["MISC"]["support"] == 1
    assert report["num_entities"] == 4 and report["num_sentences"] == 3
    assert report["accuracy"] == pytest.approx(4 / 7)  # Word tags: I-ORG vs B-ORG counts as a wrong tag.


def test_sentences_are_not_flattened_into_one_sequence():
    """An entity ending one sentence and an I- tag starting the next are two entities, not one."""
    true = [["O", "B-PER"], ["I-PER", "O"]]
    report = entity_report(true, true)
    assert report["num_entities"] == 2 and report["f1"] == 1.0
    flattened = [sum(true, [])]
    assert seqeval_metrics.classification_report(flattened, flattened, output_dict=True)["PER"]["support"] == 1


def test_entity_report_checks_shapes():
    with pytest.raises(ValueError, match="same sentences"):
        entity_report([["O", "O"]], [["O"]])


def is_valid_iob(tags, labels):
    previous = "O"
    for tag in (labels[i] for i in tags):
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            return False
        previous = tag
    return True


@pytest.mark.parametrize("seed", range(4))
def test_iob_decoding_is_the_best_valid_sequence(seed):
    """Viterbi against exhaustive search over every tag sequence of a short sentence."""
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(4, len(labels))) * 3
    log_probs = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
    best = max((tags for tags in itertools.product(range(len(labels)), repeat=len(logits))
                if is_valid_iob(tags, labels)), key=lambda tags: log_probs[np.arange(len(tags)), tags].sum())
    decoded = decode_tags(logits, labels, "iob")
    assert tuple(decoded) == best and is_valid_iob(decoded, labels)
    assert list(decode_tags(logits, labels)) == list(logits.argmax(axis=-1))


def test_iob_transitions_of_conll():
    allowed, start = iob_transitions(CONLL2003_LABELS)
    assert not start[CONLL2003_LABELS.index("I-PER")] and start[CONLL2003_LABELS.index("B-PER")]
    assert allowed[CONLL2003_LABELS.index("B-PER"), CONLL2003_LABELS.index("I-PER")]
    assert not allowed[CONLL2003_LABELS.index("B-LOC"), CONLL2003_LABELS.index("I-PER")]
    assert not allowed[CONLL2003_LABELS.index("O"), CONLL2003_LABELS.index("I-MISC")]
    assert decode_tags(np.zeros((0, 9)), CONLL2003_LABELS, "iob").shape == (0,)


def test_masked_loss_is_the_mean_over_labelled_tokens_whatever_the_padding():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 9)).astype(np.float32)
    labels = np.array([[-100, 3, 4, 0, -100], [-100, 1, -100, -100, -100]])
    loss = MaskedSparseCategoricalCrossentropy()
    log_probs = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
    rows, cols = np.nonzero(labels != -100)
    expected = -log_probs[rows, cols, labels[rows, cols]].mean()
    assert float(loss(tf.constant(labels), tf.constant(logits))) == pytest.approx(expected, rel=1e-5)
    padded_logits = np.concatenate([logits, rng.normal(size=(2, 7, 9)).astype(np.float32)], axis=1)
    padded_labels = np.concatenate([labels, np.full((2, 7), -100)], axis=1)
    assert float(loss(tf.constant(padded_labels), tf.constant(padded_logits))) == pytest.approx(expected, rel=1e-5)
    assert float(loss(tf.constant([[-100]]), tf.constant(logits[:1, :1]))) == 0.0  # Nothing labelled: 0, not NaN.
    assert MaskedSparseCategoricalCrossentropy.from_config(loss.get_config()).ignore_index == -100


def test_token_accuracy_skips_unlabelled_tokens():
    metric = TokenAccuracy()
    logits = tf.one_hot([[2, 2, 0, 1]], 3)
    metric.update_state(tf.constant([[2, 1, -100, -100]]), logits)
    assert float(metric.result()) == 0.5
    assert TokenAccuracy.from_config(metric.get_config()).ignore_index == -100
