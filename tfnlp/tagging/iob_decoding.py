"""Valid-IOB2 decoding in the graph: the most likely tag sequence with no ``I-X`` out of place.

Argmax decoding tags each piece on its own and can give ``O I-ORG`` or
``B-LOC I-ORG``, which seqeval and HF's grouping then read as entities of their
own. `iob_piece_labels` decodes the words of each text instead (a word's
log-probabilities are its first piece's), by Viterbi under the IOB2 rules of
`tfnlp.tagging.iob.iob_transitions`, and gives every later piece of a word
the ``I-`` form of its word's tag (the lesson's label alignment). It is the
same decoding as ``tfnlp.tagging.iob.decode_tags(..., "iob")`` (NumPy, used by
the evaluation), in TensorFlow ops, so that the export decodes as the model
was evaluated; `tests/test_ner_serving.py` checks the two agree.

A word of raw text is what BERT's own pre-tokenization makes a word: a piece
that is not a ``##`` continuation starts one (`word_starts`). So punctuation is
a word of its own ("Moscow." is "Moscow" and "."), as in CoNLL's tokenization;
the few CoNLL words that BERT splits at punctuation ("U.S.") are decoded as
several words here, where the evaluation takes them as one.
"""

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf

from tfnlp.tagging.iob import inside_label_ids, iob_transitions

_NEVER = -1e9  # Log-probability of a forbidden transition (finite: no inf - inf).


def viterbi_decode(log_probs, allowed, start_allowed):
    """The most likely allowed tag sequence of each row.

    Args:
        log_probs: float32 RaggedTensor ``[sequences, (steps), tags]``.
        allowed: bool array ``[tags, tags]``; ``allowed[i, j]``: tag ``j`` may follow tag ``i``.
        start_allowed: bool array ``[tags]``; tags a sequence may start with.

    Returns:
        int32 RaggedTensor ``[sequences, (steps)]``.

    Example:
    >>> import numpy as np
    >>> log_probs = tf.ragged.constant(np.log([[[0.1, 0.1, 0.8], [0.2, 0.1, 0.7]]]), ragged_rank=1)
    >>> allowed, start = iob_transitions(["O", "B-PER", "I-PER"])
    >>> viterbi_decode(tf.cast(log_probs, tf.float32), allowed, start).to_list()
    [[1, 2]]
    """
    num_tags = len(start_allowed)
    transition = tf.where(tf.constant(allowed), 0.0, _NEVER)
    lengths = log_probs.row_lengths()
    # Two padding steps at the end: every batch has a first step and a transition, even when all its rows are
    # empty (tf.scan in a graph cannot stack zero steps of a partly unknown shape).
    dense = tf.pad(log_probs.to_tensor(0.0, shape=[None, None, num_tags]), [[0, 0], [0, 2], [0, 0]])
    valid = tf.sequence_mask(lengths, tf.shape(dense, out_type=tf.int64)[1])
    first = dense[:, 0] + tf.where(tf.constant(start_allowed), 0.0, _NEVER)
    stay = tf.range(num_tags)[tf.newaxis]  # Padding steps keep the tag (and the score) of the last real step.

    def forward(carry, step):
        score, _ = carry
        step_log_probs, step_valid = step
        candidates = score[:, :, tf.newaxis] + transition  # [sequences, previous tag, tag]
        back = tf.argmax(candidates, axis=1, output_type=tf.int32)
        new_score = tf.reduce_max(candidates, axis=1) + step_log_probs
        return (tf.where(step_valid[:, tf.newaxis], new_score, score),
                tf.where(step_valid[:, tf.newaxis], back, stay))

    steps = (tf.transpose(dense[:, 1:], [1, 0, 2]), tf.transpose(valid[:, 1:]))
    scores, backs = tf.scan(forward, steps, initializer=(first, tf.zeros_like(first, tf.int32)))
    final = tf.concat([first[tf.newaxis], scores], axis=0)[-1]
    last = tf.argmax(final, axis=-1, output_type=tf.int32)
    # backs[t][s, j]: the best tag at step t of sequence s given tag j at step t + 1.
    earlier = tf.scan(lambda tag, back: tf.gather(back, tag, batch_dims=1), backs, initializer=last, reverse=True)
    tags = tf.concat([tf.transpose(earlier), last[:, tf.newaxis]], axis=1)
    return tf.RaggedTensor.from_tensor(tags, lengths=lengths)


def word_starts(input_ids, vocabulary):
    """Whether each piece starts a word: it is not a ``##`` continuation (or it is its text's first piece).

    Args:
        input_ids: int RaggedTensor ``[texts, (pieces)]``. Special tokens left out.
        vocabulary: sequence of str. The WordPiece vocabulary.

    Returns:
        bool RaggedTensor ``[texts, (pieces)]``.

    Example:
    >>> word_starts(tf.ragged.constant([[0, 1, 2], []]), ["new", "##ark", "."]).to_list()
    [[True, False, True], []]
    """
    continuation = tf.constant([token.startswith("##") for token in vocabulary])
    starts = tf.logical_not(tf.gather(continuation, input_ids.flat_values))
    first_in_row = tf.equal(tf.range(tf.size(starts, out_type=tf.int64)),
                            tf.gather(input_ids.row_starts(), input_ids.value_rowids()))
    return input_ids.with_flat_values(starts | first_in_row)


def iob_piece_labels(logits, starts_word, labels):
    """Each piece's label and its probability, the words of each text decoded as valid IOB2.

    Args:
        logits: float RaggedTensor ``[texts, (pieces), labels]``. Special tokens left out.
        starts_word: bool RaggedTensor ``[texts, (pieces)]``. Whether each piece starts a word (`word_starts`);
            each text's first piece must.
        labels: sequence of str. The IOB2 label names.

    Returns:
        (int32 RaggedTensor ``[texts, (pieces)]`` of label ids, float32 RaggedTensor of their
        probabilities under each piece's own softmax).
    """
    allowed, start_allowed = iob_transitions(labels)
    flat_logits = tf.cast(logits.flat_values, tf.float32)
    rows = logits.value_rowids()
    word_start = starts_word.flat_values
    word_of_piece = tf.cumsum(tf.cast(word_start, tf.int64)) - 1
    word_log_probs = tf.RaggedTensor.from_value_rowids(
        tf.boolean_mask(tf.nn.log_softmax(flat_logits), word_start), tf.boolean_mask(rows, word_start),
        nrows=logits.nrows(), validate=False)
    word_tags = viterbi_decode(word_log_probs, allowed, start_allowed).flat_values
    piece_tags = tf.gather(word_tags, word_of_piece)
    piece_tags = tf.where(word_start, piece_tags, tf.gather(tf.constant(inside_label_ids(labels), tf.int32),
                                                            piece_tags))
    scores = tf.gather(tf.nn.softmax(flat_logits), piece_tags, batch_dims=1)
    return logits.with_flat_values(piece_tags), logits.with_flat_values(scores)
