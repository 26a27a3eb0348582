"""Grouping per-token labels into entities in the graph, as HF's token-classification pipeline does.

`group_entities` is HF's ``aggregation_strategy="simple"``
(``TokenClassificationPipeline.group_entities``) in TensorFlow ops, so a
SavedModel can return the entities themselves to a client that has no
tokenizer:

- every token takes its most likely label (its score: that label's probability);
- a tag is the label without its ``B-``/``I-`` prefix (a label without one is
  its own tag, like ``O``);
- consecutive tokens form one group while the tag stays the same and no token
  is labelled ``B-`` (a ``B-`` token always opens a new group; an ``I-`` token
  after another tag opens one too);
- a group's score is the mean of its tokens' scores, its span runs from its
  first token's start to its last token's end;
- groups of an ignored tag (``O``) are dropped.

Example:
>>> labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
>>> groups = group_entities(tf.ragged.constant([[1, 2, 0, 3, 4, 3]]), tf.ragged.constant([[0.9, 0.7, 1.0, 0.8, 0.6, 0.5]]),
...                         tf.ragged.constant([[0, 5, 10, 13, 17, 22]], tf.int64),
...                         tf.ragged.constant([[4, 9, 12, 16, 21, 27]], tf.int64), labels)
>>> groups["entity_group"].to_list(), groups["start"].to_list(), groups["end"].to_list()
([[b'PER', b'LOC', b'LOC']], [[0, 13, 22]], [[9, 21, 27]])
>>> [[round(float(s), 2) for s in row] for row in groups["score"].to_list()]
[[0.8, 0.7, 0.5]]
"""

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf

IGNORE_TAGS = ("O",)


def label_tags(labels):
    """Splits label names into (tags, tag id of each label, whether each label begins an entity).

    Example:
    >>> label_tags(["O", "B-PER", "I-PER", "MISC"])
    (['O', 'PER', 'MISC'], [0, 1, 1, 2], [False, True, False, False])
    """
    tags, tag_ids, begins = [], [], []
    for label in labels:
        tag = label[2:] if label.startswith(("B-", "I-")) else label
        if tag not in tags:
            tags.append(tag)
        tag_ids.append(tags.index(tag))
        begins.append(label.startswith("B-"))
    return tags, tag_ids, begins


def group_entities(label_ids, scores, starts, ends, labels, ignore_tags=IGNORE_TAGS):
    """Groups the tokens of each sequence into entities (HF's ``aggregation_strategy="simple"``).

    Args:
        label_ids: int RaggedTensor ``[sequences, (tokens)]``. Each token's label (special tokens left out).
        scores: float RaggedTensor ``[sequences, (tokens)]``. Each token's label probability.
        starts: int64 RaggedTensor ``[sequences, (tokens)]``. Start offset of each token.
        ends: int64 RaggedTensor ``[sequences, (tokens)]``. End offset (exclusive) of each token.
        labels: sequence of str. Label names.
        ignore_tags: sequence of str. Tags whose groups are dropped.

    Returns:
        dict of RaggedTensors ``[sequences, (entities)]``: ``entity_group`` (tf.string, the tag),
        ``score`` (float32, the mean of the group's token scores), ``start`` and ``end`` (int64).
    """
    tags, tag_ids, begins = label_tags(labels)
    flat_labels = tf.cast(label_ids.flat_values, tf.int32)
    tag = tf.gather(tf.constant(tag_ids, tf.int32), flat_labels)
    begin = tf.gather(tf.constant(begins), flat_labels)
    row = label_ids.value_rowids()
    first_in_row = tf.equal(tf.range(tf.size(row, out_type=tf.int64)), tf.gather(label_ids.row_starts(), row))
    previous_tag = tf.concat([[-1], tag[:-1]], axis=0)
    opens = first_in_row | tf.not_equal(tag, previous_tag) | begin
    group = tf.cumsum(tf.cast(opens, tf.int64)) - 1
    num_groups = tf.reduce_sum(tf.cast(opens, tf.int64))
    # A token closes its group when the next token opens one, or when it is the last token of all.
    closes = tf.concat([opens[1:], tf.ones_like(opens[:1])], axis=0)
    flat_scores = tf.cast(scores.flat_values, tf.float32)
    score = (tf.math.unsorted_segment_sum(flat_scores, group, num_groups)
             / tf.math.unsorted_segment_sum(tf.ones_like(flat_scores), group, num_groups))
    group_tag = tf.boolean_mask(tag, opens)
    keep = tf.reduce_all(tf.not_equal(group_tag[:, tf.newaxis],
                                      tf.constant([tags.index(t) for t in ignore_tags if t in tags] or [-1])),
                         axis=1)
    group_row = tf.boolean_mask(tf.boolean_mask(row, opens), keep)
    values = {
        "entity_group": tf.gather(tf.constant(tags), tf.boolean_mask(group_tag, keep)),
        "score": tf.boolean_mask(score, keep),
        "start": tf.boolean_mask(tf.boolean_mask(tf.cast(starts.flat_values, tf.int64), opens), keep),
        "end": tf.boolean_mask(tf.boolean_mask(tf.cast(ends.flat_values, tf.int64), closes), keep),
    }
    return {key: tf.RaggedTensor.from_value_rowids(value, group_row, nrows=label_ids.nrows(), validate=False)
            for key, value in values.items()}
