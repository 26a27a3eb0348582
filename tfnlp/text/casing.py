"""The casing of sub-word pieces, computed in the graph from the original characters.

An uncased BERT (all-MiniLM-L6-v2, ``bert-base-uncased``) lowercases its input,
so "Apple" the company and "apple" the fruit reach the encoder as the same
ids. `piece_casing` recovers the lost signal per WordPiece token from the
characters the token covers in the original text: one of `CASING_NAMES`, an
integer a model can embed next to the token id (see
`tfnlp.models.build_bert_token_classifier`, ``casing=True``).

Cased letters are those of Unicode categories Lu, Lt (upper and title case) and
Ll (lower case); letters of caseless scripts (CJK, Arabic, ...), digits and
punctuation count as uncased. The per-character table is computed once from
Python's ``unicodedata`` and looked up in the graph (a binary search over runs
of code points), so the casing needs only core TensorFlow ops.

Example:
>>> texts = tf.constant(["Moscow IBM iPhone 42"])
>>> chars = tf.strings.unicode_decode(texts, "UTF-8")
>>> ids = piece_casing(chars, tf.constant([0, 0, 0, 0]), tf.constant([0, 7, 11, 18]), tf.constant([6, 10, 17, 20]))
>>> [CASING_NAMES[i] for i in ids.numpy()]
['title', 'upper', 'mixed', 'uncased']
"""

import functools
import unicodedata

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import tensorflow as tf

# Casing ids: 0 for special tokens and padding (no characters), then the shapes of a piece's characters.
CASING_NAMES = ("none", "uncased", "lower", "title", "upper", "mixed")
NUM_CASING_IDS = len(CASING_NAMES)
NONE, UNCASED, LOWER, TITLE, UPPER, MIXED = range(NUM_CASING_IDS)

_UNCASED_CHAR, _UPPER_CHAR, _LOWER_CHAR = 0, 1, 2
_MAX_UNICODE = 0x110000


@functools.lru_cache(maxsize=None)
def _case_table():
    """Runs of code points sharing a character case: ``(run_starts, run_cases)``, int32 NumPy arrays."""
    starts, cases = [], []
    for code_point in range(_MAX_UNICODE):
        category = unicodedata.category(chr(code_point))
        case = _UPPER_CHAR if category in ("Lu", "Lt") else _LOWER_CHAR if category == "Ll" else _UNCASED_CHAR
        if not cases or case != cases[-1]:
            starts.append(code_point)
            cases.append(case)
    return np.array(starts, np.int32), np.array(cases, np.int32)


def char_cases(code_points):
    """The case of each code point: 0 uncased, 1 upper or title case, 2 lower case (int32, same shape)."""
    run_starts, run_cases = (tf.constant(a) for a in _case_table())
    code_points = tf.cast(code_points, tf.int32)
    flat = tf.reshape(code_points, [-1])
    run = tf.searchsorted(run_starts[tf.newaxis], flat[tf.newaxis], side="right")[0] - 1
    return tf.reshape(tf.gather(run_cases, run), tf.shape(code_points))


def piece_casing(chars, rows, starts, ends):
    """The casing id of each piece: the shape of the original characters ``chars[row, start:end]``.

    - ``uncased``: no cased letter (digits, punctuation, caseless scripts);
    - ``lower``: cased letters, all lower case;
    - ``title``: exactly one upper-case letter, before any lower-case one ("Moscow", "A", "##Don");
    - ``upper``: two or more cased letters, all upper case ("IBM");
    - ``mixed``: anything else ("iPhone", "McD");
    - ``none`` (0): an empty span (``start == end``).

    Args:
        chars: RaggedTensor ``[rows, (characters)]`` of int32 code points (`tf.strings.unicode_decode`).
        rows: int Tensor ``[pieces]``. The row of ``chars`` each piece comes from.
        starts: int Tensor ``[pieces]``. First character of each piece, in code points of its row.
        ends: int Tensor ``[pieces]``. End (exclusive) of each piece, clipped to its row.

    Returns:
        int32 Tensor ``[pieces]`` of casing ids (indexes of `CASING_NAMES`).
    """
    rows, starts, ends = (tf.cast(x, tf.int64) for x in (rows, starts, ends))
    row_starts = tf.gather(chars.row_starts(), rows)
    lengths = tf.maximum(tf.minimum(ends, tf.gather(chars.row_lengths(), rows)) - starts, 0)
    # Positions of each piece's characters in chars.flat_values, as a ragged [pieces, (characters)].
    positions = tf.ragged.range(row_starts + starts, row_starts + starts + lengths)
    cases = char_cases(tf.gather(chars.flat_values, positions.flat_values))
    piece = positions.value_rowids()
    num_pieces = tf.size(rows)
    order = tf.range(tf.size(piece, out_type=tf.int64))

    def count(mask):
        return tf.math.unsorted_segment_sum(tf.cast(mask, tf.int32), piece, num_pieces)

    def first(mask):  # Position of the first character where mask holds (a large number when none does).
        return tf.math.unsorted_segment_min(tf.where(mask, order, tf.int64.max), piece, num_pieces)

    upper, lower = count(cases == _UPPER_CHAR), count(cases == _LOWER_CHAR)
    title = (upper == 1) & (first(cases == _UPPER_CHAR) < first(cases == _LOWER_CHAR))
    casing = tf.where(upper + lower == 0, UNCASED,
                      tf.where(upper == 0, LOWER,
                               tf.where(title, TITLE, tf.where(lower == 0, UPPER, MIXED))))
    return tf.where(lengths > 0, casing, NONE)
