"""IOB2 tags and named entities, below both training and serving: the one place that knows the tagging scheme.

- `tfnlp.tagging.iob`: the ``I-`` form of each label, the IOB2 transition rules, the decodings
  (``"argmax"``, ``"iob"``) of a sentence's tags in NumPy (the evaluation's);
- `tfnlp.tagging.iob_decoding`: the ``"iob"`` decoding in TensorFlow ops (the export's);
- `tfnlp.tagging.entity_grouping`: per-token labels grouped into entities in TensorFlow ops, as HF's
  token-classification pipeline groups them.
"""

from tfnlp.tagging.entity_grouping import group_entities, label_tags
from tfnlp.tagging.iob import DECODINGS, decode_tags, inside_label_ids, iob_transitions
from tfnlp.tagging.iob_decoding import iob_piece_labels, viterbi_decode, word_starts

__all__ = ["DECODINGS", "decode_tags", "group_entities", "inside_label_ids", "iob_piece_labels", "iob_transitions",
           "label_tags", "viterbi_decode", "word_starts"]
