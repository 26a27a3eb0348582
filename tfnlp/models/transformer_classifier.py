"""The lesson's custom Transformer text classifier, end to end from raw strings to logits."""

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import tensorflow as tf
import tf_keras

from tfnlp.layers import HashedNgramBag, MaskedMeanPooling, PositionEmbedding, TokenAndPositionEmbedding, TransformerBlock
from tfnlp.layers._checks import check_positive_int, check_rate


def build_text_vectorizer(texts, *, vocabulary_size=20000, standardize="lower_and_strip_punctuation",
                          name="text_vectorizer"):
    """A `TextVectorization` layer adapted on `texts`, for `build_transformer_classifier`.

    It maps a `[batch]` string Tensor to int ids `[batch, length]`, 0 being
    padding and 1 out-of-vocabulary, padded to the longest text of the batch
    (`output_sequence_length=None`). It does not truncate: the classifier cuts
    ids to its `sequence_length`.

    Args:
        texts: `tf.data.Dataset` of string scalars or string batches, or a list
            or array of strings: the training texts.
        vocabulary_size: int. The vocabulary size including padding and
            out-of-vocabulary (`max_tokens`). Defaults to `20000` (the lesson).
        standardize: str or callable. `TextVectorization`'s `standardize`.
            Defaults to `"lower_and_strip_punctuation"` (the lesson's default).
        name: str. The layer name.

    Returns:
        The adapted `tf_keras.layers.TextVectorization`.

    Examples:

    >>> vectorizer = build_text_vectorizer(["the cat sat", "the cat", "the"], vocabulary_size=10)
    >>> " ".join(vectorizer.get_vocabulary())  # padding '', out-of-vocabulary, then by frequency
    ' [UNK] the cat sat'
    >>> vectorizer(tf.constant(["The cat!", "a dog sat here"])).numpy()
    array([[2, 3, 0, 0],
           [1, 1, 4, 1]])
    """
    vectorizer = tf_keras.layers.TextVectorization(
        max_tokens=check_positive_int("vocabulary_size", vocabulary_size),
        standardize=standardize,
        output_mode="int",
        output_sequence_length=None,
        name=name,
    )
    if isinstance(texts, tf.data.Dataset) and texts.element_spec.shape.rank == 0:
        texts = texts.batch(1024)
    vectorizer.adapt(texts)
    return vectorizer


def build_transformer_classifier(
    vectorizer,
    *,
    num_classes,
    vocabulary_size=None,
    sequence_length=256,
    embedding_dim=32,
    num_layers=1,
    num_heads=2,
    intermediate_dim=32,
    dropout=0.1,
    activation="relu",
    pretrained_embeddings=None,
    freeze_pretrained_embeddings=True,
    pool_pretrained_embeddings=True,
    learn_token_embeddings=False,
    pretrained_components=None,
    ngram_buckets=0,
    ngram_orders=(2,),
    ngram_dim=None,
    name="transformer_classifier",
):
    """A Keras model from raw text to class logits: vectorizer, Transformer blocks, masked mean pooling.

    `text` (a `[batch]` `tf.string` Tensor) -> `vectorizer` -> ids cut to
    `sequence_length` -> `TokenAndPositionEmbedding` -> `num_layers` x
    `TransformerBlock` -> `MaskedMeanPooling` (concatenated with the optional
    pooled features below) -> `Dropout` -> `Dense` -> `logits`
    `[batch, num_classes]`. Id 0 is padding: it is masked in attention
    and in pooling, so a text's logits do not depend on the batch it is in.
    Defaults are the lesson's hyper-parameters.

    The output is logits (no softmax), always float32, also under a
    `mixed_float16` policy: train with
    `tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)` and apply
    `tf.nn.softmax` for probabilities. With the vectorizer inside, the saved
    model takes raw strings.

    With `vectorizer=None` the model takes int ids `input_ids` `[batch,
    length]` instead: XLA (`jit_compile=True`) and TPUs cannot run string
    ops, so there, vectorize in `tf.data` and wrap the trained model for export
    as `tf_keras.Model(text, model(vectorizer(text)))`.

    Args:
        vectorizer: a `tf_keras.layers.Layer` mapping a `[batch]` string Tensor
            to int ids `[batch, length]` with 0 as padding (such as
            `build_text_vectorizer`'s `TextVectorization`), or to a dict holding
            them under `"input_ids"` (a WordPiece tokenizer layer with the
            pretrained BERT vocabulary); or None for a model on ids.
        num_classes: int. The number of classes (>= 2).
        vocabulary_size: int or None. The number of token ids. Defaults to
            `None`: `vectorizer.vocabulary_size()` (required without one).
        sequence_length: int. The maximum number of ids per text; longer texts
            are truncated. Defaults to `256`.
        embedding_dim: int. The width of token vectors. Defaults to `32`.
        num_layers: int. The number of Transformer blocks. Defaults to `1`.
        num_heads: int. Attention heads per block; must divide
            `embedding_dim`. Defaults to `2`.
        intermediate_dim: int. The feed-forward hidden size. Defaults to `32`.
        dropout: float. The dropout rate in the blocks and before the output
            layer, in [0, 1). Defaults to `0.1`.
        activation: str. The feed-forward activation of the blocks. Defaults
            to `"relu"` (the lesson's).
        pretrained_embeddings: dict or None. A pretrained BERT's WordPiece
            embeddings, as `tfnlp.pretrained.load_embedding_matrices` returns
            them (`word_embeddings` `[vocabulary_size, width]`,
            `layer_norm_gamma`, `layer_norm_beta`). The token vectors are then
            the pretrained ones, normalized by the BERT's embedding LayerNorm
            and projected to `embedding_dim` by a trained Dense layer, plus
            learned `PositionEmbedding`s. None (the lesson's way):
            `TokenAndPositionEmbedding` learned from scratch.
        freeze_pretrained_embeddings: bool. Keep the pretrained table and its
            LayerNorm fixed (on a small dataset, training 30,522 x 384 values
            overfits and is slow). Defaults to `True`.
        pool_pretrained_embeddings: bool. Also mean-pool the (normalized)
            pretrained token vectors and concatenate them to the pooled
            Transformer output, so the classifier sees the full-width
            pretrained vectors next to the narrower contextual ones. Defaults
            to `True`.
        learn_token_embeddings: bool. With `pretrained_embeddings`, also
            learn a token embedding of width `embedding_dim` from scratch and
            add it to the projected pretrained vectors: the pretrained part
            carries general knowledge, the learned part what is specific to
            the task. Defaults to `False`.
        pretrained_components: int or None. With frozen
            `pretrained_embeddings`, keep only the top `pretrained_components`
            principal components of the normalized pretrained vectors
            (computed once, here), scaled to unit variance overall: a token
            then costs a gather of `pretrained_components` floats instead of
            the full width, and the saved table shrinks alike. The trained
            projection sees the directions that carry most of the variance.
            Defaults to `None` (the full width).
        ngram_buckets: int. With `ngram_buckets > 0`, a `HashedNgramBag`
            (fastText's bag of hashed n-grams, with that many buckets) of the
            token ids is concatenated to the pooled Transformer output: word
            pairs are strong topic cues that a shallow Transformer trained on
            a few thousand texts does not learn to compose. Defaults to `0`
            (none, as the lesson).
        ngram_orders: sequence of ints. The n-gram lengths of the bag.
            Defaults to `(2,)` (bigrams).
        ngram_dim: int or None. The width of the n-gram vectors. Defaults to
            `None`: `embedding_dim`.
        name: str. The model name.

    Returns:
        A `tf_keras.Model` with input `text` (or `input_ids`) and output
        `logits`.

    Examples:

    >>> vectorizer = build_text_vectorizer(["stocks fell", "team won the cup"], vocabulary_size=50)
    >>> model = build_transformer_classifier(vectorizer, num_classes=4, sequence_length=16)
    >>> model(tf.constant(["the team won", "stocks"])).shape
    TensorShape([2, 4])
    """
    num_classes = check_positive_int("num_classes", num_classes)
    if num_classes < 2:
        raise ValueError(f"`num_classes` must be at least 2, received {num_classes}.")
    num_layers = check_positive_int("num_layers", num_layers)
    dropout = check_rate("dropout", dropout)
    if vocabulary_size is None:
        vocabulary_size = _vocabulary_size(vectorizer)

    inputs, token_ids = _inputs_and_token_ids(vectorizer)
    token_ids = token_ids[:, :sequence_length]
    padding_mask = tf.not_equal(token_ids, 0)
    pooled_extra = []
    if pretrained_embeddings is None:
        x = TokenAndPositionEmbedding(vocabulary_size, sequence_length, embedding_dim,
                                      name="token_and_position_embedding")(token_ids)
    else:
        words = _pretrained_token_vectors(token_ids, pretrained_embeddings, vocabulary_size,
                                          trainable=not freeze_pretrained_embeddings,
                                          components=pretrained_components)
        if pool_pretrained_embeddings:
            pooled_extra.append(MaskedMeanPooling(name="pretrained_pooling")(words, padding_mask=padding_mask))
        x = tf_keras.layers.Dense(embedding_dim, name="token_projection")(words)
        if learn_token_embeddings:
            x = x + TokenAndPositionEmbedding(vocabulary_size, sequence_length, embedding_dim,
                                              name="token_and_position_embedding")(token_ids)
        else:
            x = x + PositionEmbedding(sequence_length, name="position_embedding")(x)
        x = tf_keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    if ngram_buckets:
        ngram_buckets = check_positive_int("ngram_buckets", ngram_buckets)
        bag = HashedNgramBag(ngram_buckets, ngram_dim or embedding_dim, ngram_orders=ngram_orders, name="ngram_bag")
        pooled_extra.append(bag(token_ids, padding_mask=padding_mask))
    for index in range(num_layers):
        block = TransformerBlock(embedding_dim, num_heads, intermediate_dim, dropout=dropout,
                                 activation=activation, name=f"transformer_block_{index}")
        x = block(x, padding_mask=padding_mask)
    x = MaskedMeanPooling(name="masked_mean_pooling")(x, padding_mask=padding_mask)
    if pooled_extra:
        x = tf_keras.layers.Concatenate(name="pooled_concat")([x] + pooled_extra)
    x = tf_keras.layers.Dropout(dropout, name="dropout")(x)
    logits = tf_keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return tf_keras.Model(inputs, logits, name=name)


def _pretrained_token_vectors(token_ids, tables, vocabulary_size, trainable, components=None):
    """Pretrained WordPiece vectors for ``token_ids``, normalized by the BERT's embedding LayerNorm.

    LayerNorm acts on each vector alone, so for a frozen table it is applied once
    to the table here instead of to every token of every batch (and, with
    ``components``, the table is reduced to its principal components).
    """
    word_embeddings = np.asarray(tables["word_embeddings"], dtype=np.float32)
    if word_embeddings.ndim != 2 or word_embeddings.shape[0] != vocabulary_size:
        raise ValueError(f"pretrained word_embeddings of shape {word_embeddings.shape} do not fit a vocabulary "
                         f"of {vocabulary_size} tokens")
    width = word_embeddings.shape[1]
    gamma = np.asarray(tables.get("layer_norm_gamma", np.ones(width)), dtype=np.float32)
    beta = np.asarray(tables.get("layer_norm_beta", np.zeros(width)), dtype=np.float32)
    if gamma.shape != (width,) or beta.shape != (width,):
        raise ValueError(f"pretrained layer_norm_gamma/beta of shapes {gamma.shape}/{beta.shape} do not fit "
                         f"vectors of width {width}")
    if components is not None:
        components = check_positive_int("pretrained_components", components)
        if trainable:
            raise ValueError("`pretrained_components` needs frozen pretrained embeddings "
                             "(`freeze_pretrained_embeddings=True`).")
        if components > width:
            raise ValueError(f"`pretrained_components` ({components}) exceeds the width of the pretrained "
                             f"vectors ({width}).")
    if not trainable:
        table = _layer_normalize(word_embeddings, gamma, beta)
        if components is not None:
            table = principal_components(table, components)
        embedding = tf_keras.layers.Embedding(vocabulary_size, table.shape[1], trainable=False,
                                              name="pretrained_token_embedding")
        words = embedding(token_ids)
        embedding.set_weights([table])
        return words
    embedding = tf_keras.layers.Embedding(vocabulary_size, width, trainable=True, name="pretrained_token_embedding")
    layer_norm = tf_keras.layers.LayerNormalization(epsilon=1e-12, name="pretrained_layer_norm")
    words = layer_norm(embedding(token_ids))
    embedding.set_weights([word_embeddings])
    layer_norm.set_weights([gamma, beta])
    return words


def principal_components(vectors, components):
    """The rows of ``vectors`` in the basis of their top ``components`` principal components.

    The rows are centered and projected on the leading eigenvectors of their
    covariance (largest variance first, each signed so that its largest entry
    is positive, so the result does not depend on the eigensolver), then
    scaled so that all the values have unit variance together: the relative
    variances of the components are kept.

    Args:
        vectors: float array `[rows, width]`.
        components: int in `[1, width]`. Components kept.

    Returns:
        float32 array `[rows, components]`.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> vectors = rng.normal(size=(500, 8)) * np.array([5, 4, 3, 2, 1, 1, 1, 1])
    >>> reduced = principal_components(vectors, 3)
    >>> reduced.shape, round(float(reduced.std()), 3)
    ((500, 3), 1.0)
    >>> bool(np.all(np.diff(reduced.var(axis=0)) < 0))  # Largest variance first.
    True
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    if not 1 <= components <= vectors.shape[1]:
        raise ValueError(f"`components` must lie in [1, {vectors.shape[1]}], received {components}.")
    centered = vectors - vectors.mean(axis=0)
    _, eigenvectors = np.linalg.eigh(centered.T @ centered)
    basis = eigenvectors[:, ::-1][:, :components]
    basis *= np.sign(basis[np.abs(basis).argmax(axis=0), np.arange(components)])
    reduced = centered @ basis
    return (reduced / reduced.std()).astype(np.float32)


def _layer_normalize(vectors, gamma, beta, epsilon=1e-12):
    mean = vectors.mean(axis=-1, keepdims=True)
    variance = vectors.var(axis=-1, keepdims=True)
    return (vectors - mean) / np.sqrt(variance + epsilon) * gamma + beta


def _vocabulary_size(vectorizer):
    if vectorizer is None:
        raise ValueError("`vocabulary_size` is required when `vectorizer` is None.")
    if not callable(getattr(vectorizer, "vocabulary_size", None)):
        raise ValueError(f"`vocabulary_size` is required: {type(vectorizer).__name__} has no vocabulary_size().")
    return vectorizer.vocabulary_size()


def _inputs_and_token_ids(vectorizer):
    """The model input (`text`, or `input_ids` without a vectorizer) and the int ids computed from it."""
    if vectorizer is None:
        input_ids = tf_keras.Input(shape=(None,), dtype=tf.int32, name="input_ids")
        return input_ids, input_ids
    text = tf_keras.Input(shape=(), dtype=tf.string, name="text")
    outputs = vectorizer(text)
    if not isinstance(outputs, dict):
        return text, outputs
    if "input_ids" not in outputs:
        raise ValueError(f"The vectorizer returned a dict without 'input_ids' (keys: {sorted(outputs)}).")
    return text, outputs["input_ids"]
