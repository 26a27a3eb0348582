"""IOB2 tags: the ``I-`` form of each label, which tag may follow which, and a sentence's tags from its logits.

A label is ``O``, ``B-X`` (the first word of an entity of type ``X``) or ``I-X``
(a later word of it). `inside_label_ids` gives each label's ``I-`` form (the
label of a word's later pieces); `iob_transitions` the IOB2 rules (``I-X``
only after ``B-X`` or ``I-X``, never first); `decode_tags` one sentence's tags,
each word's most likely (``"argmax"``) or the most likely valid sequence
(``"iob"``, Viterbi). `tfnlp.tagging.iob_decoding` is the same ``"iob"``
decoding in TensorFlow ops, for the export.

Example:
>>> labels = ["O", "B-PER", "I-PER"]
>>> inside_label_ids(labels), iob_transitions(labels)[1].tolist()
([0, 2, 2], [True, True, False])
"""

import numpy as np

DECODINGS = ("argmax", "iob")


def inside_label_ids(labels):
    """For each IOB2 label id, the id of its ``I-`` form (``B-X`` -> ``I-X``; others unchanged).

    Example:
    >>> inside_label_ids(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])
    [0, 2, 2, 4, 4]
    """
    ids = {label: i for i, label in enumerate(labels)}
    return [ids.get("I-" + label[2:], i) if label.startswith("B-") else i for i, label in enumerate(labels)]


def iob_transitions(labels):
    """Allowed IOB2 transitions: ``allowed[i, j]`` is True if tag ``j`` may follow tag ``i``; and allowed starts.

    ``I-X`` may only follow ``B-X`` or ``I-X`` (and never start a sentence); every other tag may follow any.

    Example:
    >>> allowed, start = iob_transitions(["O", "B-PER", "I-PER"])
    >>> allowed.astype(int).tolist(), start.astype(int).tolist()
    ([[1, 1, 0], [1, 1, 1], [1, 1, 1]], [1, 1, 0])
    """
    labels = list(labels)
    n = len(labels)
    allowed = np.ones((n, n), bool)
    start = np.ones(n, bool)
    for j, label in enumerate(labels):
        if label.startswith("I-"):
            start[j] = False
            allowed[:, j] = [previous[2:] == label[2:] and previous[:2] in ("B-", "I-") for previous in labels]
    return allowed, start


def decode_tags(logits, labels, decoding="argmax"):
    """The tag ids of one sentence's words from their logits.

    Args:
        logits: float array ``[words, labels]``.
        labels: sequence of str. The IOB2 tag names.
        decoding: str. ``"argmax"``: each word its most likely tag. ``"iob"``: the most likely
            sequence of tags that is valid IOB2 (Viterbi over log-probabilities: no ``I-X`` after
            anything but ``B-X``/``I-X``, none first).

    Returns:
        int array ``[words]``.

    Example:
    >>> logits = np.log([[0.1, 0.1, 0.8], [0.2, 0.1, 0.7]])  # I-PER, I-PER: invalid at the start.
    >>> decode_tags(logits, ["O", "B-PER", "I-PER"]).tolist(), decode_tags(logits, ["O", "B-PER", "I-PER"], "iob").tolist()
    ([2, 2], [1, 2])
    """
    if decoding not in DECODINGS:
        raise ValueError(f"decoding must be one of {DECODINGS}, got {decoding!r}")
    logits = np.asarray(logits, np.float64)
    if decoding == "argmax" or len(logits) == 0:
        return logits.argmax(axis=-1)
    log_probs = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
    allowed, start = iob_transitions(labels)
    penalty = np.where(allowed, 0.0, -np.inf)
    score = np.where(start, log_probs[0], -np.inf)
    back = np.zeros(log_probs.shape, np.int64)
    for t in range(1, len(log_probs)):
        candidates = score[:, None] + penalty
        back[t] = candidates.argmax(axis=0)
        score = candidates.max(axis=0) + log_probs[t]
    tags = [int(score.argmax())]
    for t in range(len(log_probs) - 1, 0, -1):
        tags.append(int(back[t, tags[-1]]))
    return np.array(tags[::-1])
