"""In-graph BERT tokenization: raw strings (or words) to ``input_ids``, ``attention_mask``, ``token_type_ids``.

`BertTokenizer` is a Keras layer that runs entirely in the TensorFlow graph
(no Python callbacks into the graph), so it works inside ``tf.data.Dataset.map``, inside a
Keras functional model on a ``tf.string`` input, and inside an exported
SavedModel that serves raw text.

It reproduces HuggingFace ``BertTokenizerFast`` (the ``tokenizers``
``BertNormalizer`` + ``BertPreTokenizer`` + ``WordPiece`` pipeline), word ids
and character offsets included, rather than tensorflow-text's own normalizer:
``FastBertNormalizer`` applies NFKD and case folding (``"½"`` becomes
``1⁄2``, ``"ß"`` becomes ``ss``) and turns control characters into spaces
instead of removing them (``"co\\u00adop"`` becomes two words), which differs
from HF on thousands of code points. Here the normalization is a per-character
table computed once from Python's ``unicodedata`` with HF's rules:

1. drop NUL, U+FFFD and control/format/private-use characters (Cc, Cf, Co,
   except tab, newline, carriage return); map every whitespace to a space;
2. surround CJK ideographs with spaces (``tokenize_chinese_chars``);
3. NFD and drop non-spacing marks (``strip_accents``), then lowercase
   (``lower_case``);
4. surround punctuation (ASCII punctuation or Unicode P*) with spaces.

In the graph each code point is looked up in that table (a binary search over
runs of code points), the result is split on spaces into words, and the words
go through tensorflow-text's ``FastWordpieceTokenizer`` (the WordPiece half of
``FastBertTokenizer``). Every normalized character remembers the original
character it came from, which gives HF's ``offset_mapping`` in code points.
When only ids are requested, texts of printable ASCII (where NFKD and case
folding are plain lowercasing, so tensorflow-text agrees with HF) take
tensorflow-text's fused ``FastBertTokenizer`` instead, about three times faster.

Known differences from HF: characters assigned after the Unicode version of
HF's ``tokenizers`` tables (a few hundred code points of rare scripts added in
Unicode 10 to 14) may be categorized differently; and literal special-token
strings in the text (``"[SEP]"``) are tokenized as text, as with HF's
``split_special_tokens=True``, instead of becoming special tokens.
"""

import functools
import unicodedata

import tfnlp  # noqa: F401  (selects Keras 2 before TensorFlow is imported)

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text
import tf_keras

from tfnlp import pretrained

_SELF = -1  # In a normalization template: "the input code point itself".
_SPACE = ord(" ")
_MAX_INPUT_CHARS_PER_WORD = 100  # HF WordPiece: longer words become the unknown token.
_MAX_UNICODE = 0x110000
_PRINTABLE_ASCII = r"[\t\n\r -~]*"
# The CJK Unified Ideographs blocks of HF's BertNormalizer.
_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
               (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def _is_punctuation(char):
    """HF's ``is_bert_punc``: ASCII punctuation (including ``$+<=>^`|~``) or Unicode category P*."""
    return (char.isascii() and char.isprintable() and not char.isalnum() and char != " "
            or unicodedata.category(char)[0] == "P")


def _normalize_char(char, lower_case, strip_accents, tokenize_chinese_chars):
    """Returns what HF's BertNormalizer + BertPreTokenizer make of one character, words split by spaces."""
    category = unicodedata.category(char)
    if char in "\t\n\r" or (char.isspace() and category[0] != "C"):
        return " "
    if char in "\0\ufffd" or category in ("Cc", "Cf", "Co"):
        return ""
    text = char
    if strip_accents:
        text = "".join(c for c in unicodedata.normalize("NFD", char) if unicodedata.category(c) != "Mn")
    if lower_case:
        text = text.lower()
    text = "".join(f" {c} " if _is_punctuation(c) else c for c in text)
    is_cjk = category == "Lo" and any(low <= ord(char) <= high for low, high in _CJK_RANGES)
    return f" {text} " if tokenize_chinese_chars and is_cjk else text


@functools.lru_cache(maxsize=None)
def _normalization_table(lower_case, strip_accents, tokenize_chinese_chars):
    """Tabulates `_normalize_char` over all of Unicode as runs of code points sharing one template.

    A template is the list of code points a character becomes, with `_SELF`
    standing for the character itself, so that e.g. all unchanged letters of a
    block, or all punctuation ``[32, _SELF, 32]``, form one run.

    Returns:
        (run_starts, template_splits, template_values): int32 numpy arrays;
        run ``i`` covers code points ``run_starts[i] .. run_starts[i + 1] - 1``
        and has template ``template_values[template_splits[i]:template_splits[i + 1]]``.
    """
    run_starts, templates = [], []
    for code_point in range(_MAX_UNICODE):
        char = chr(code_point)
        # HF keeps unassigned code points as they are; surrogates never come out of UTF-8 decoding.
        if unicodedata.category(char) in ("Cn", "Cs"):
            template = (_SELF,)
        else:
            normalized = _normalize_char(char, lower_case, strip_accents, tokenize_chinese_chars)
            template = tuple(_SELF if c == char else ord(c) for c in normalized)
        if not templates or template != templates[-1]:
            run_starts.append(code_point)
            templates.append(template)
    template_splits = np.cumsum([0] + [len(t) for t in templates])
    template_values = [value for template in templates for value in template]
    return (np.array(run_starts, np.int32), template_splits.astype(np.int32),
            np.array(template_values, np.int32))


def _index_in_row(ragged):
    """Returns the index of each value of a RaggedTensor (ragged rank 1) within its row, flat int64."""
    return tf.range(tf.size(ragged.flat_values, out_type=tf.int64)) - tf.gather(ragged.row_starts(),
                                                                               ragged.value_rowids())


def _split_words(normalized, owner):
    """Splits normalized code points on spaces.

    Args:
        normalized: int32 ``[n]``. Normalized code points, each string ending with a space.
        owner: int64 ``[n]``. For each, the index of the original character it came from.

    Returns:
        (words, word_owner): ragged int32 ``[n_words, (chars)]`` code points of
        each word, and flat int64 ``owner`` of those code points.
    """
    in_word = normalized != _SPACE
    follows_word = tf.concat([[False], in_word], axis=0)[:-1]
    starts = tf.boolean_mask(~follows_word, in_word)
    words = tf.RaggedTensor.from_row_starts(
        tf.boolean_mask(normalized, in_word), tf.where(starts)[:, 0], validate=False)
    return words, tf.boolean_mask(owner, in_word)


def _char_offsets(words, word_char, too_long, byte_starts, byte_ends):
    """Maps WordPiece byte offsets within normalized words to character offsets in the original strings.

    Args:
        words: ragged int32 ``[n_words, (chars)]``. Code points of each normalized word.
        word_char: int64, like ``words.flat_values``. Position of the original
            character each code point came from, in its string.
        too_long: bool ``[n_words]``. Words replaced by the unknown token, which spans the whole word.
        byte_starts: ragged ``[n_words, (pieces)]``. Piece start, in bytes of the UTF-8 word.
        byte_ends: ragged ``[n_words, (pieces)]``. Piece end (exclusive), in bytes.

    Returns:
        A dict of flat int32 ``starts`` and ``ends``, in characters of the original strings.
    """
    code_points = words.flat_values
    utf8_bytes = 1 + tf.add_n([tf.cast(code_points >= limit, tf.int64) for limit in (0x80, 0x800, 0x10000)])
    byte_to_char = tf.repeat(tf.range(tf.size(code_points, out_type=tf.int64)), utf8_bytes)
    byte_splits = tf.concat([[0], tf.cumsum(utf8_bytes)], axis=0)
    word_byte_start = tf.gather(byte_splits, words.row_starts())
    word_byte_length = tf.gather(byte_splits, words.row_limits()) - word_byte_start
    piece_word = byte_starts.value_rowids()
    piece_byte_end = tf.where(tf.gather(too_long, piece_word), tf.gather(word_byte_length, piece_word),
                              tf.cast(byte_ends.flat_values, tf.int64))
    base = tf.gather(word_byte_start, piece_word)
    starts = tf.gather(word_char, tf.gather(byte_to_char, base + tf.cast(byte_starts.flat_values, tf.int64)))
    ends = tf.gather(word_char, tf.gather(byte_to_char, base + piece_byte_end - 1)) + 1
    return {"starts": tf.cast(starts, tf.int32), "ends": tf.cast(ends, tf.int32)}


def _load_vocabulary(vocabulary):
    """Returns the token list of ``vocabulary``: a list of tokens or a vocab.txt path (one token a line)."""
    if not isinstance(vocabulary, str):
        return list(vocabulary)
    if not tf.io.gfile.exists(vocabulary):
        raise FileNotFoundError(f"{vocabulary}: vocabulary file not found")
    with tf.io.gfile.GFile(vocabulary, "r") as f:
        return [line.rstrip("\n") for line in f]


@tf_keras.utils.register_keras_serializable(package="tfnlp")
class BertTokenizer(tf_keras.layers.Layer):
    """Tokenizes a batch of strings for BERT, in the graph, as HF ``BertTokenizerFast`` does.

    Ids, word ids and offsets equal HF's (see the module docstring for the
    only known differences: recent Unicode characters, literal special tokens).

    Each text becomes ``[CLS] wordpieces [SEP]``, truncated to
    ``sequence_length`` tokens (``[SEP]`` is kept) and padded. Outputs, all
    int32 ``[batch, length]`` with ``length = sequence_length`` for
    ``padding="max_length"`` or the longest sequence of the batch for
    ``padding="longest"``:

    - ``input_ids``: token ids (``[PAD]`` id on padding);
    - ``attention_mask``: 1 on tokens, 0 on padding;
    - ``token_type_ids``: all 0 (single segment);
    - ``word_ids`` (``return_word_ids``): index of the word each token comes
      from, -1 for special tokens and padding (HF's ``None``). For raw text a
      word is a pre-token (a run of letters and digits, or one punctuation
      mark); for ``is_split_into_words`` input it is the input word;
    - ``offset_mapping`` (``return_offsets``): ``[batch, length, 2]`` start and
      end of each token in Unicode code points of the input string (of the
      input word for ``is_split_into_words``), ``(0, 0)`` for special tokens
      and padding, as HF's ``offset_mapping``;
    - ``num_truncated_tokens`` (``return_num_truncated_tokens``): int32
      ``[batch]``, the word pieces truncation cut from each text (0 when it
      was read whole), HF's ``num_truncated_tokens``: a served model says
      with it which texts it did not read to the end.

    A file vocabulary is tracked as a ``tf.saved_model.Asset``, so a SavedModel
    holding the layer gets a copy of it in ``assets/``. A list vocabulary is
    kept in the layer config; either way the WordPiece model is compiled into
    the graph, so a reloaded SavedModel never reads the vocabulary again.

    Args:
        vocabulary: str or list of str. Path of a ``vocab.txt`` (one token a
            line, line number = id) or the list of tokens.
        lower_case: bool. Lowercase the text (an uncased model).
        strip_accents: bool or None. Remove accents (NFD, then drop
            non-spacing marks). None follows ``lower_case``, as in HF.
        tokenize_chinese_chars: bool. Make each CJK ideograph its own word.
        sequence_length: int. Maximum number of tokens including ``[CLS]`` and
            ``[SEP]``; the fixed length for ``padding="max_length"``.
        padding: str. ``"longest"`` (the batch's longest sequence) or
            ``"max_length"`` (``sequence_length``).
        truncation: bool. Cut sequences to ``sequence_length`` tokens.
        return_word_ids: bool. Also output ``word_ids``.
        return_offsets: bool. Also output ``offset_mapping``.
        return_num_truncated_tokens: bool. Also output ``num_truncated_tokens``.
        is_split_into_words: bool. Inputs are words (a ``tf.RaggedTensor``
            ``[batch, (words)]``, or a dense ``[batch, words]``) instead of
            texts (``[batch]``), as HF's ``is_split_into_words=True``.
        unk_token: str. Unknown token; must be in the vocabulary.
        cls_token: str. Token opening every sequence.
        sep_token: str. Token closing every sequence.
        pad_token: str. Padding token.
        **kwargs: Standard layer arguments (``name``, ...).

    Examples:
    >>> tokenizer = BertTokenizer(
    ...     ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "sat", "##s", "."],
    ...     sequence_length=8)
    >>> tokenizer(tf.constant(["The cats sat.", "Cat"]))["input_ids"].numpy()
    array([[2, 4, 5, 7, 6, 8, 3],
           [2, 5, 3, 0, 0, 0, 0]], dtype=int32)
    """

    def __init__(self,
                 vocabulary,
                 lower_case=True,
                 strip_accents=None,
                 tokenize_chinese_chars=True,
                 sequence_length=128,
                 padding="longest",
                 truncation=True,
                 return_word_ids=False,
                 return_offsets=False,
                 return_num_truncated_tokens=False,
                 is_split_into_words=False,
                 unk_token="[UNK]",
                 cls_token="[CLS]",
                 sep_token="[SEP]",
                 pad_token="[PAD]",
                 **kwargs):
        super().__init__(**kwargs)
        if padding not in ("longest", "max_length"):
            raise ValueError(f"padding must be 'longest' or 'max_length', got {padding!r}")
        if not isinstance(sequence_length, int) or sequence_length < 2:
            raise ValueError(f"sequence_length must be an int >= 2 ([CLS] and [SEP]), got {sequence_length!r}")
        tokens = _load_vocabulary(vocabulary)
        source = vocabulary if isinstance(vocabulary, str) else "the vocabulary list"
        ids = {token: i for i, token in enumerate(tokens)}
        for token in (unk_token, cls_token, sep_token, pad_token):
            if token not in ids:
                raise ValueError(f"{source}: special token {token!r} is not in the vocabulary")

        # Sub-objects.
        self.wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=tokens, suffix_indicator="##", unknown_token=unk_token, no_pretokenization=True,
            max_bytes_per_word=4 * _MAX_INPUT_CHARS_PER_WORD, token_out_type=tf.int32)
        # The fast path for printable-ASCII texts when only ids are needed (see `_tokenize`).
        self.ascii_tokenizer = tf_text.FastBertTokenizer(
            vocab=tokens, suffix_indicator="##", unknown_token=unk_token,
            max_bytes_per_word=_MAX_INPUT_CHARS_PER_WORD, token_out_type=tf.int32,
            lower_case_nfd_strip_accents=bool(lower_case))
        self.vocabulary_file = tf.saved_model.Asset(vocabulary) if isinstance(vocabulary, str) else None

        # Computation.
        self._normalization = _normalization_table(
            bool(lower_case), bool(lower_case if strip_accents is None else strip_accents),
            bool(tokenize_chinese_chars))
        self._cls_id, self._sep_id, self._pad_id = ids[cls_token], ids[sep_token], ids[pad_token]
        self.vocabulary_size = len(tokens)

        # Config.
        self._vocabulary = vocabulary if isinstance(vocabulary, str) else tuple(tokens)
        self.lower_case = lower_case
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.sequence_length = sequence_length
        self.padding = padding
        self.truncation = truncation
        self.return_word_ids = return_word_ids
        self.return_offsets = return_offsets
        self.return_num_truncated_tokens = return_num_truncated_tokens
        self.is_split_into_words = is_split_into_words
        self.unk_token = unk_token
        self.cls_token = cls_token
        self.sep_token = sep_token
        self.pad_token = pad_token

    @classmethod
    def from_pretrained(cls, name_or_path=None, **kwargs):
        """Builds the tokenizer of a pretrained BERT: its ``vocab.txt`` and ``do_lower_case``.

        Args:
            name_or_path: str or None. None for the packaged all-MiniLM-L6-v2,
                a local HF BERT folder, or a Hugging Face Hub name (see
                `tfnlp.pretrained.tokenizer_files`).
            **kwargs: Other `BertTokenizer` arguments (``sequence_length``, ...).

        Example:
        >>> tokenizer = BertTokenizer.from_pretrained(sequence_length=16)  # doctest: +SKIP
        >>> tokenizer(tf.constant(["Hello world"]))["input_ids"].numpy()  # doctest: +SKIP
        array([[ 101, 7592, 2088,  102]], dtype=int32)
        """
        vocab_file, do_lower_case = pretrained.tokenizer_files(name_or_path)
        kwargs.setdefault("lower_case", do_lower_case)
        return cls(vocab_file, **kwargs)

    def call(self, inputs):
        """Tokenizes ``inputs`` (texts ``[batch]``, or words if ``is_split_into_words``) into a dict of tensors."""
        if self.is_split_into_words:
            features = self._tokenize_words(self._words(inputs))
        else:
            features = self._tokenize(self._texts(inputs))
        return self._pack(features)

    def tokenize(self, texts):
        """WordPiece ids grouped by word, without special tokens, padding or truncation.

        This is what a TF-Hub BERT preprocessor's ``tokenize`` returns (see
        `tfnlp.hub.BertPreprocessor`): pack it with ``bert_pack_inputs``.
        Always takes the exact (HF) normalization path.

        Args:
            texts: string Tensor ``[batch]``.

        Returns:
            int32 RaggedTensor ``[batch, (words), (pieces)]``.

        Example:
        >>> tokenizer = BertTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "##s", "."])
        >>> tokenizer.tokenize(tf.constant(["The cats."])).to_list()
        [[[4], [5, 6], [7]]]
        """
        return self._tokenize_exactly(self._texts(texts), by_word=True)

    def get_vocabulary(self):
        """The WordPiece vocabulary as a list of str; token ``i`` has id ``i``.

        Example:
        >>> BertTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "cat"]).get_vocabulary()[4]
        'cat'
        """
        return _load_vocabulary(self._vocabulary)

    def special_token_ids(self):
        """The ids of the special tokens, keyed as tf-models-official's ``BertPackInputs`` expects."""
        return {"start_of_sequence_id": self._cls_id, "end_of_segment_id": self._sep_id,
                "padding_id": self._pad_id, "vocab_size": self.vocabulary_size}

    def _texts(self, inputs):
        """Checks that ``inputs`` is a batch of texts, ``[batch]`` or ``[batch, 1]``, and returns it as ``[batch]``."""
        if isinstance(inputs, tf.RaggedTensor):
            raise ValueError(f"{self.name}: got a RaggedTensor of texts; pass words with is_split_into_words=True")
        inputs = tf.convert_to_tensor(inputs)
        if inputs.shape.rank == 2 and inputs.shape[-1] == 1:
            inputs = tf.squeeze(inputs, axis=-1)
        if inputs.shape.rank != 1 or inputs.dtype != tf.string:
            raise ValueError(f"{self.name}: expected a batch of texts, strings of shape [batch], got "
                             f"{inputs.dtype.name} of shape {inputs.shape}")
        return inputs

    def _words(self, inputs):
        """Checks that ``inputs`` is a batch of word lists, ``[batch, (words)]``, and returns it as a RaggedTensor."""
        if not isinstance(inputs, tf.RaggedTensor):
            inputs = tf.RaggedTensor.from_tensor(tf.convert_to_tensor(inputs))
        if inputs.shape.rank != 2 or inputs.dtype != tf.string:
            raise ValueError(f"{self.name}: expected a batch of words, strings of shape [batch, (words)], got "
                             f"{inputs.dtype.name} of shape {inputs.shape}")
        return inputs

    def _tokenize_words(self, words):
        """Tokenizes each word of ``words`` ``[batch, (words)]``; word ids and offsets refer to the input words."""
        features = self._tokenize(words.flat_values)
        if self.return_word_ids:
            word_in_sentence = _index_in_row(words)
            features["word_ids"] = features["ids"].with_flat_values(
                tf.cast(tf.gather(word_in_sentence, features["ids"].value_rowids()), tf.int32))
        return {key: tf.RaggedTensor.from_row_splits(value, words.row_splits, validate=False).merge_dims(1, 2)
                for key, value in features.items()}

    def _tokenize(self, strings):
        """Tokenizes ``strings`` ``[n]`` into ragged ``[n, (pieces)]`` features (see `_tokenize_exactly`).

        When only ids are needed, printable-ASCII strings go through
        ``ascii_tokenizer`` (tensorflow-text's fused normalizer, pre-tokenizer
        and WordPiece), which gives the same ids faster; the others, through
        `_tokenize_exactly`.
        """
        if self.return_word_ids or self.return_offsets:
            return self._tokenize_exactly(strings)
        is_ascii = tf.strings.regex_full_match(strings, _PRINTABLE_ASCII)
        ascii_rows, other_rows = tf.where(is_ascii)[:, 0], tf.where(~is_ascii)[:, 0]
        ids = tf.concat([self.ascii_tokenizer.tokenize(tf.gather(strings, ascii_rows)),
                         self._tokenize_exactly(tf.gather(strings, other_rows))["ids"]], axis=0)
        return {"ids": tf.gather(ids, tf.math.invert_permutation(tf.concat([ascii_rows, other_rows], axis=0)))}

    def _tokenize_exactly(self, strings, by_word=False):
        """Tokenizes ``strings`` ``[n]`` into ragged ``[n, (pieces)]`` features with the normalization table.

        Returns:
            With ``by_word``, only the ids as ``[n, (words), (pieces)]``. Otherwise a dict of int32 RaggedTensors sharing their row splits: ``ids``,
            plus ``word_ids`` (index of the word within its string) if
            ``return_word_ids`` and ``starts``, ``ends`` (character offsets) if
            ``return_offsets``.
        """
        # A trailing space ends the last word of every string, so no word spans two strings.
        chars = tf.strings.unicode_decode(tf.strings.join([strings, " "]), "UTF-8", errors="replace")
        normalized, owner = self._normalize(chars.flat_values)
        words, word_owner = _split_words(normalized, owner)
        word_string = tf.gather(chars.value_rowids(), tf.gather(word_owner, words.row_starts()))
        too_long = words.row_lengths() > _MAX_INPUT_CHARS_PER_WORD
        word_texts = tf.where(too_long, self.unk_token, tf.strings.unicode_encode(words, "UTF-8"))
        if self.return_offsets and not by_word:
            ids, byte_starts, byte_ends = self.wordpiece.tokenize_with_offsets(word_texts)
            word_char = tf.gather(_index_in_row(chars), word_owner)
            features = _char_offsets(words, word_char, too_long, byte_starts, byte_ends)
        else:
            ids = self.wordpiece.tokenize(word_texts)
            features = {}
        features["ids"] = ids.flat_values
        strings_words = tf.RaggedTensor.from_value_rowids(
            ids.row_splits[:-1], word_string, nrows=tf.size(strings, out_type=tf.int64), validate=False)
        if by_word:
            return tf.RaggedTensor.from_row_splits(ids, strings_words.row_splits, validate=False)
        if self.return_word_ids:
            word_in_string = tf.cast(_index_in_row(strings_words), tf.int32)
            features["word_ids"] = tf.gather(word_in_string, ids.value_rowids())
        row_splits = tf.gather(ids.row_splits, strings_words.row_splits)
        return {key: tf.RaggedTensor.from_row_splits(value, row_splits, validate=False)
                for key, value in features.items()}

    def _normalize(self, code_points):
        """Applies the normalization table to flat ``code_points``.

        Returns:
            (normalized, owner): the normalized code points, and for each the
            index in ``code_points`` of the character it came from.
        """
        run_starts, template_splits, template_values = (tf.constant(a) for a in self._normalization)
        run = tf.searchsorted(run_starts[tf.newaxis], code_points[tf.newaxis], side="right")[0] - 1
        templates = tf.RaggedTensor.from_row_splits(template_values, template_splits, validate=False)
        mapped = tf.gather(templates, run)
        owner = mapped.value_rowids()
        values = mapped.flat_values
        return tf.where(values == _SELF, tf.gather(code_points, owner), values), owner

    def _pack(self, features):
        """Truncates the ragged features, adds the special tokens, pads and returns the output dict."""
        ids = features["ids"]
        if self.truncation and self.padding == "max_length":
            content = self.sequence_length - 2
        else:
            content = ids.bounding_shape(axis=1)
            if self.truncation:
                content = tf.minimum(content, self.sequence_length - 2)
            elif self.padding == "max_length":
                content = tf.maximum(content, self.sequence_length - 2)
        lengths = tf.minimum(ids.row_lengths(), content)[:, tf.newaxis]
        positions = tf.range(content + 2, dtype=tf.int64)[tf.newaxis]
        is_last = positions == lengths + 1
        batch = ids.nrows()

        def pack(pieces, first, last, pad):
            dense = pieces.to_tensor(pad, shape=[batch, content])
            column = functools.partial(tf.fill, [batch, 1])
            return tf.where(is_last, last, tf.concat([column(first), dense, column(pad)], axis=1))

        outputs = {
            "input_ids": pack(ids, self._cls_id, self._sep_id, self._pad_id),
            "attention_mask": tf.cast(positions < lengths + 2, tf.int32),
        }
        outputs["token_type_ids"] = tf.zeros_like(outputs["attention_mask"])
        if self.return_word_ids:
            outputs["word_ids"] = pack(features["word_ids"], -1, -1, -1)
        if self.return_offsets:
            outputs["offset_mapping"] = tf.stack(
                [pack(features["starts"], 0, 0, 0), pack(features["ends"], 0, 0, 0)], axis=-1)
        if self.return_num_truncated_tokens:
            outputs["num_truncated_tokens"] = tf.cast(ids.row_lengths() - lengths[:, 0], tf.int32)
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update({
            "vocabulary": self._vocabulary if isinstance(self._vocabulary, str) else list(self._vocabulary),
            "lower_case": self.lower_case,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "sequence_length": self.sequence_length,
            "padding": self.padding,
            "truncation": self.truncation,
            "return_word_ids": self.return_word_ids,
            "return_offsets": self.return_offsets,
            "return_num_truncated_tokens": self.return_num_truncated_tokens,
            "is_split_into_words": self.is_split_into_words,
            "unk_token": self.unk_token,
            "cls_token": self.cls_token,
            "sep_token": self.sep_token,
            "pad_token": self.pad_token,
        })
        return config
