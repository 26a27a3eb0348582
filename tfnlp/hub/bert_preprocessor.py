"""`BertPreprocessor`: a TF-Hub BERT preprocessing model, as ``bert_en_uncased_preprocess/3``, on tfnlp's tokenizer."""

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf
from official.nlp.modeling import layers as nlp_layers
from official.nlp.tools.export_tfhub_lib import BertPackInputsSavedModelWrapper

_TEXTS = tf.TensorSpec([None], tf.string, name="sentences")


class _SpecialTokens(tf.Module):
    """``tokenize.get_special_tokens_dict()``: the special token ids, for packing inputs yourself."""

    def __init__(self, ids):
        super().__init__()
        self._ids = dict(ids)

    @tf.function(input_signature=[])
    def __call__(self):
        return {key: tf.constant(value, tf.int32) for key, value in self._ids.items()}


class _Tokenize(tf.Module):
    """``tokenize(texts)``: WordPiece ids ``[batch, (words), (pieces)]``, as in TF-Hub preprocessors."""

    def __init__(self, tokenizer):
        super().__init__()
        self.tokenizer = tokenizer
        self.get_special_tokens_dict = _SpecialTokens(tokenizer.special_token_ids())

    @tf.function(input_signature=[_TEXTS])
    def __call__(self, sentences):
        return self.tokenizer.tokenize(sentences)


class _PackInputs(BertPackInputsSavedModelWrapper):
    """tf-models-official's wrapper, also callable from Python before saving.

    The wrapper puts its `tf.function` on the instance as ``__call__`` (that is what gets saved);
    Python's ``wrapper(...)`` looks ``__call__`` up on the class, so it is forwarded from here.
    """

    def __call__(self, *args, **kwargs):
        return vars(self)["__call__"](*args, **kwargs)


class BertPreprocessor(tf.Module):
    """The preprocessing half of a TF-Hub BERT: raw text to ``input_word_ids`` / ``input_mask`` / ``input_type_ids``.

    Saved with `tf.saved_model.save`, it implements TF Hub's preprocessor API
    for text encoders (https://www.tensorflow.org/hub/common_saved_model_apis/text),
    like ``https://tfhub.dev/tensorflow/bert_en_uncased_preprocess/3``:

    - called on a ``tf.string`` batch ``[batch]``, it returns int32
      ``input_word_ids``, ``input_mask`` and ``input_type_ids`` of shape
      ``[batch, seq_length]`` (``[CLS] pieces [SEP]``, truncated and padded);
    - ``tokenize(texts)`` returns the WordPiece ids as a RaggedTensor
      ``[batch, (words), (pieces)]``, and ``tokenize.get_special_tokens_dict()``
      the special token ids;
    - ``bert_pack_inputs(segments, seq_length=...)`` packs one or two tokenized
      segments (sentence pairs) to any length, as tf-models-official's
      ``BertPackInputs`` (the same code TF Hub's preprocessors run).

    Tokenization is `tfnlp.text.BertTokenizer`'s exact path, so ids match
    Hugging Face's ``BertTokenizerFast``. The vocabulary is a SavedModel asset.
    Loading the SavedModel needs ``import tensorflow_text`` (its ops), not tfnlp.

    Args:
        tokenizer: `tfnlp.text.BertTokenizer`. Vocabulary and casing.
        seq_length: int. Output length of the root call, and the default of ``bert_pack_inputs``.
        name: str or None. Module name.

    Example:
    >>> from tfnlp.text import BertTokenizer
    >>> tokenizer = BertTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "i", "love", "transform", "##ers"])
    >>> preprocessor = BertPreprocessor(tokenizer, seq_length=8)
    >>> preprocessor(tf.constant(["I love transformers"]))["input_word_ids"].numpy()
    array([[2, 4, 5, 6, 7, 3, 0, 0]], dtype=int32)
    >>> tokens = preprocessor.tokenize(tf.constant(["I love transformers"]))
    >>> preprocessor.bert_pack_inputs([tokens, tokens], seq_length=6)["input_type_ids"].numpy()
    array([[0, 0, 0, 0, 1, 1]], dtype=int32)
    """

    def __init__(self, tokenizer, seq_length=128, name=None):
        super().__init__(name=name)
        if not isinstance(seq_length, int) or seq_length < 2:
            raise ValueError(f"seq_length must be an int >= 2 ([CLS] and [SEP]), got {seq_length!r}")
        self.seq_length = seq_length
        self.tokenize = _Tokenize(tokenizer)
        special = tokenizer.special_token_ids()
        pack = nlp_layers.BertPackInputs(
            seq_length=seq_length,
            special_tokens_dict={key: special[key] for key in ("start_of_sequence_id", "end_of_segment_id",
                                                                "padding_id")})
        self.bert_pack_inputs = _PackInputs(pack)
        # `export_tfhub_lib` keeps the vocabulary as an asset on the root object too.
        self.vocab_file = tokenizer.vocabulary_file
        self.do_lower_case = tf.Variable(bool(tokenizer.lower_case), trainable=False, name="do_lower_case")

    @tf.function(input_signature=[_TEXTS])
    def __call__(self, sentences):
        return self.bert_pack_inputs([self.tokenize(sentences)], seq_length=self.seq_length)
