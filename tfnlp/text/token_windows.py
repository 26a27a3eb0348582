"""Overlapping windows over token sequences, and merging per-window predictions back, in the graph.

A BERT reads at most ``max_position_embeddings`` tokens, so a longer sequence
(a long sentence, a document read as context, a 20,000-character request) is
cut into windows of at most ``window_length`` tokens, consecutive windows
sharing ``stride`` tokens (HF's ``stride``: the overlap). The last window is
aligned to the end of the sequence, so every window but the one of a short
sequence is full. A token seen by several windows takes its prediction from
the window where it has the most context on its nearer side (BERT's SQuAD
"maximum context" rule; a side where the window reaches the sequence's edge
counts as complete), so no token is ever predicted without being seen and none
twice.

Example:
>>> pieces = tf.ragged.constant([[10, 11, 12, 13, 14, 15, 16], [20]])
>>> windows = split_windows(pieces.row_lengths(), window_length=4, stride=2)
>>> gather_windows(pieces, windows).to_list()
[[10, 11, 12, 13], [12, 13, 14, 15], [13, 14, 15, 16], [20]]
>>> merged = merge_windows(gather_windows(pieces, windows), windows)  # Each token once, from its best window.
>>> merged.to_list()
[[10, 11, 12, 13, 14, 15, 16], [20]]
"""

import collections

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf

Windows = collections.namedtuple("Windows", ["sequence", "start", "length", "sequence_lengths"])
Windows.__doc__ = """Where the windows of a batch of sequences lie.

Attributes:
    sequence: int64 ``[windows]``. The sequence each window comes from; windows are in sequence order.
    start: int64 ``[windows]``. Position of the window's first token in its sequence.
    length: int64 ``[windows]``. Tokens in the window (at most ``window_length``).
    sequence_lengths: int64 ``[sequences]``. Tokens of each sequence.
"""


def split_windows(lengths, window_length, stride=0):
    """Places windows over sequences of ``lengths`` tokens.

    A sequence of ``n <= window_length`` tokens is one window (an empty
    sequence too: one empty window, so every sequence reaches the model). A
    longer one gets ``ceil((n - window_length) / step) + 1`` windows starting
    every ``step = window_length - stride`` tokens, the last one moved back to
    end at the sequence's end.

    Args:
        lengths: int Tensor ``[sequences]``. Tokens per sequence.
        window_length: int. Tokens per window (the model's limit, without special tokens).
        stride: int. Tokens shared by consecutive windows, in ``[0, window_length)``.

    Returns:
        Windows.
    """
    if window_length < 1:
        raise ValueError(f"window_length must be at least 1, got {window_length}")
    if not 0 <= stride < window_length:
        raise ValueError(f"stride must lie in [0, window_length={window_length}), got {stride}")
    step = window_length - stride
    lengths = tf.cast(lengths, tf.int64)
    extra = tf.maximum(lengths - window_length, 0)
    counts = (extra + step - 1) // step + 1
    index = tf.ragged.range(counts)
    sequence = index.value_rowids()
    sequence_length = tf.gather(lengths, sequence)
    start = tf.minimum(index.flat_values * step, tf.maximum(sequence_length - window_length, 0))
    return Windows(sequence=sequence, start=start, length=tf.minimum(sequence_length - start, window_length),
                   sequence_lengths=lengths)


def gather_windows(values, windows):
    """The tokens of each window: ``values[sequence, start:start + length]``.

    Args:
        values: RaggedTensor ``[sequences, (tokens), ...]`` (ragged rank 1).
        windows: Windows from `split_windows` on ``values.row_lengths()``.

    Returns:
        RaggedTensor ``[windows, (tokens), ...]``.
    """
    first = tf.gather(values.row_starts(), windows.sequence) + windows.start
    positions = tf.ragged.range(first, first + windows.length)
    return positions.with_flat_values(tf.gather(values.flat_values, positions.flat_values))


def context_scores(windows):
    """How much context each token of each window has: ``[windows, (tokens)]`` int64.

    The score of a token is the smaller of its context to the left and to the
    right within the window; a side where the window reaches the end of its
    sequence counts as complete (there is nothing more to see there).
    """
    local = tf.ragged.range(windows.length)
    unbounded = tf.reduce_max(tf.concat([[0], windows.sequence_lengths], axis=0)) + 1
    starts_sequence = tf.gather(windows.start, local.value_rowids()) == 0
    ends_sequence = tf.gather(windows.start + windows.length - tf.gather(windows.sequence_lengths, windows.sequence),
                              local.value_rowids()) == 0
    left = tf.where(starts_sequence, unbounded, local.flat_values)
    right = tf.where(ends_sequence, unbounded, tf.gather(windows.length, local.value_rowids()) - 1 - local.flat_values)
    return local.with_flat_values(tf.minimum(left, right))


def merge_windows(window_values, windows):
    """Puts per-window values back into their sequences, each token from its window with the most context.

    Args:
        window_values: RaggedTensor ``[windows, (tokens), ...]`` (ragged rank 1), e.g. logits, with the
            windows' lengths.
        windows: Windows from `split_windows`.

    Returns:
        RaggedTensor ``[sequences, (tokens), ...]``: every token of every sequence exactly once.
    """
    scores = context_scores(windows)
    num_windows = tf.size(windows.sequence, out_type=tf.int64)
    window = scores.value_rowids()
    # Unique keys: more context wins; between equal contexts, the earlier window.
    keys = scores.flat_values * (num_windows + 1) + (num_windows - window)
    sequence_starts = tf.concat([[0], tf.cumsum(windows.sequence_lengths)], axis=0)[:-1]
    position = (tf.gather(sequence_starts, tf.gather(windows.sequence, window)) + tf.gather(windows.start, window)
                + (tf.range(tf.size(window, out_type=tf.int64)) - tf.gather(scores.row_starts(), window)))
    total = tf.reduce_sum(windows.sequence_lengths)
    best = tf.math.unsorted_segment_max(keys, position, total)
    chosen = tf.where(tf.equal(keys, tf.gather(best, position)))[:, 0]
    values = tf.gather(window_values.flat_values, chosen)
    flat_shape = tf.concat([[total], tf.shape(values, out_type=tf.int64)[1:]], axis=0)
    merged = tf.scatter_nd(tf.gather(position, chosen)[:, tf.newaxis], values, flat_shape)
    return tf.RaggedTensor.from_row_lengths(merged, windows.sequence_lengths, validate=False)
