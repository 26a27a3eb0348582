"""A serving module for NER: raw text in, grouped entities with character offsets out, all in the graph.

Signature ``serving_default`` takes ``text`` (`tf.string` ``[None]``), and
returns, per text, the entities HF's ``token-classification`` pipeline gives
with ``aggregation_strategy="simple"`` (`tfnlp.tagging.entity_grouping`) as
padded tensors a REST client reads without any tokenizer:

- ``entity_group`` (`tf.string` ``[batch, max_entities]``, padded with ``b""``),
  ``score`` (float32), ``word`` (`tf.string`: the text's characters
  ``start:end``), ``start``, ``end`` (int64, offsets in Unicode code points, as
  HF's pipeline gives for a Python ``str``), ``num_entities`` (int64 ``[batch]``);
- per token (WordPiece, special tokens left out): ``token_label``
  (`tf.string` ``[batch, max_tokens]``), ``token_score`` (float32),
  ``token_start``, ``token_end`` (int64), ``num_tokens`` (int64 ``[batch]``);
- ``truncated`` (bool ``[batch]``): the text was read only up to ``max_pieces`` pieces (below).

With ``decoding="iob"`` the labels are the most likely valid IOB2 sequence
of the text's words (`tfnlp.tagging.iob_decoding`), as the evaluation's
``--decoding iob``; with ``"argmax"`` each piece's most likely label, as HF's
pipeline. Rows past ``num_entities`` / ``num_tokens`` are padding.

A text longer than the model's window is not cut to it: its pieces are cut
into overlapping windows the model can read and every piece is predicted from
the window where it has the most context (`tfnlp.text.token_windows`), so a
document gives its sentences context, as in training. What a request costs is
bounded all the same: each text is read up to its first ``max_pieces`` word
pieces (`DEFAULT_MAX_PIECES`; set when exporting), and the output
``truncated`` (bool ``[batch]``) is True for a text that had more, whose
pieces, tokens and entities past that point are left out. The casing feature, when
the model was trained with it, is computed in the graph from the text. The
export needs only ``import tensorflow_text`` to load (tensorflow-text's
WordPiece ops), not tfnlp.
"""

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf

from tfnlp.tagging.entity_grouping import group_entities
from tfnlp.tagging.iob import DECODINGS
from tfnlp.tagging.iob_decoding import iob_piece_labels, word_starts

ENTITY_OUTPUTS = ("entity_group", "score", "word", "start", "end")
TOKEN_OUTPUTS = ("token_label", "token_score", "token_start", "token_end")
# Word pieces read per text: 8 windows of 256 tokens (stride 127), about 1 s of MiniLM on this project's
# 2-core machine (README, Serving). A text of any length then costs at most that.
DEFAULT_MAX_PIECES = 1024


class TokenClassifierModule(tf.Module):
    """Wraps a token classifier and its preprocessor for TF Serving (see the module docstring for the outputs).

    Args:
        model: tf_keras.Model. The preprocessor's model inputs (dict) to logits ``[windows, length, labels]``.
        preprocessor: tfnlp.data.ner_features.NerPreprocessor. The one the model was trained with
            (labels, window length and stride, casing).
        decoding: str. ``"argmax"`` (each piece's most likely label, as HF's pipeline) or ``"iob"``
            (the most likely valid IOB2 tags of the words, a word being a piece and its ``##``
            continuations; later pieces take their word's ``I-`` tag).
        max_pieces: int or None. Word pieces read per text (the rest is left out and the text marked
            ``truncated``); None reads every text whole, at a cost that grows with its length (for offline
            use, not for a server).
        name: str or None. Module name.

    Example:
    >>> module = TokenClassifierModule(model, preprocessor)  # doctest: +SKIP
    >>> outputs = module.serving_default(tf.constant(["I work at Moscow Aviation Institute."]))  # doctest: +SKIP
    >>> outputs["entity_group"].numpy(), outputs["start"].numpy(), outputs["end"].numpy()  # doctest: +SKIP
    (array([[b'ORG']], dtype=object), array([[10]]), array([[35]]))
    """

    def __init__(self, model, preprocessor, decoding="argmax", max_pieces=DEFAULT_MAX_PIECES, name=None):
        super().__init__(name=name)
        if decoding not in DECODINGS:
            raise ValueError(f"decoding must be one of {DECODINGS}, got {decoding!r}")
        if max_pieces is not None and (not isinstance(max_pieces, int) or max_pieces < 1):
            raise ValueError(f"max_pieces must be a positive int or None, got {max_pieces!r}")
        self.max_pieces = max_pieces
        _check_casing(model, preprocessor)
        self.decoding = decoding
        self._vocabulary = preprocessor.text_tokenizer.get_vocabulary() if decoding == "iob" else None
        self.model = model
        self.tokenizer = preprocessor.text_tokenizer  # Tracked: its vocabulary file goes to assets/.
        self.label_names = tf.constant(list(preprocessor.labels), tf.string)
        self._preprocessor = preprocessor

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serving_default(self, text):
        preprocessor = self._preprocessor
        pieces, chars = preprocessor.texts_to_pieces(text)
        if self.max_pieces is None:
            truncated = tf.zeros(tf.shape(text), tf.bool)
        else:
            truncated = pieces["input_ids"].row_lengths() > self.max_pieces
            pieces = {key: value[:, :self.max_pieces] for key, value in pieces.items()}
        logits = preprocessor.predict_logits(lambda inputs: self.model(inputs, training=False), pieces)
        if self.decoding == "iob":
            label_ids, scores = iob_piece_labels(logits, word_starts(pieces["input_ids"], self._vocabulary),
                                                 preprocessor.labels)
        else:
            probabilities = tf.nn.softmax(logits.flat_values, axis=-1)
            label_ids = logits.with_flat_values(tf.argmax(probabilities, axis=-1, output_type=tf.int32))
            scores = logits.with_flat_values(tf.reduce_max(probabilities, axis=-1))
        tokens = {"label_id": label_ids, "score": scores, "start": pieces["start"], "end": pieces["end"]}
        entities = group_entities(tokens["label_id"], tokens["score"], tokens["start"], tokens["end"],
                                  preprocessor.labels)
        entities["word"] = _substrings(chars, entities["start"], entities["end"])
        outputs = {key: entities[key].to_tensor(b"" if key in ("entity_group", "word") else 0)
                   for key in ENTITY_OUTPUTS}
        outputs["num_entities"] = entities["start"].row_lengths()
        outputs["token_label"] = tokens["label_id"].with_flat_values(
            tf.gather(self.label_names, label_ids.flat_values)).to_tensor(b"")
        outputs["token_score"] = tokens["score"].to_tensor(0.0)
        outputs["token_start"] = tokens["start"].to_tensor(0)
        outputs["token_end"] = tokens["end"].to_tensor(0)
        outputs["num_tokens"] = tokens["start"].row_lengths()
        outputs["truncated"] = truncated
        return outputs

    def signatures(self):
        """The signatures to export: ``{"serving_default": ...}``."""
        return {"serving_default": self.serving_default.get_concrete_function()}


def _check_casing(model, preprocessor):
    """A casing preprocessor gives casing ids as token types: the model's token-type table must hold them."""
    from transformers import TFBertForTokenClassification

    from tfnlp.text.casing import NUM_CASING_IDS

    for layer in getattr(model, "layers", ()):
        if isinstance(layer, TFBertForTokenClassification):
            types = layer.config.type_vocab_size
            if preprocessor.casing and types < NUM_CASING_IDS:
                raise ValueError(f"the preprocessor gives casing ids (up to {NUM_CASING_IDS - 1}) but the model has "
                                 f"{types} token types; build it with build_bert_token_classifier(..., casing=True)")


def _substrings(chars, starts, ends):
    """``text[start:end]`` for each span: from the texts' code points ``[texts, (chars)]``, spans ``[texts, (spans)]``."""
    first = tf.gather(chars.row_starts(), starts.value_rowids()) + starts.flat_values
    positions = tf.ragged.range(first, first + ends.flat_values - starts.flat_values)
    code_points = positions.with_flat_values(tf.gather(chars.flat_values, positions.flat_values))
    return starts.with_flat_values(tf.strings.unicode_encode(code_points, "UTF-8"))
