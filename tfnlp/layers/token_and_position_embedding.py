"""Token embedding plus learned position embedding (the lesson's first Transformer layer)."""

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf
import tf_keras

from tfnlp.layers._checks import check_positive_int, clone_initializer


@tf_keras.utils.register_keras_serializable(package="tfnlp")
class TokenAndPositionEmbedding(tf_keras.layers.Layer):
    """Sums a token embedding and a learned position embedding.

    Maps int token ids `[batch, length]` to vectors `[batch, length,
    embedding_dim]`: the embedding of each id plus the embedding of its position
    `0 .. length - 1`. `sequence_length` is the number of learned positions, so
    any batch up to that length works, and a batch padded to its own longest
    text uses only the first positions. Longer inputs raise
    `tf.errors.InvalidArgumentError`: truncate them first.

    With `mask_zero=True` id 0 is padding and the layer returns a Keras mask
    (`inputs != 0`) that `TransformerBlock` and `MaskedMeanPooling` use when no
    explicit `padding_mask` is given to them.

    Args:
        vocabulary_size: int. The number of token ids; ids lie in
            `[0, vocabulary_size)`.
        sequence_length: int. The longest input the layer accepts (the number of
            learned positions).
        embedding_dim: int. The size of each output vector.
        embeddings_initializer: str or `tf_keras.initializers.Initializer`. The
            initializer of both embedding tables. Defaults to `"uniform"` (the
            `tf_keras.layers.Embedding` default).
        mask_zero: bool. Whether id 0 is padding to be masked downstream.
            Defaults to `False`.
        **kwargs: other keyword arguments of `tf_keras.layers.Layer`, such as
            `name`, `dtype` and `trainable`.

    Examples:

    >>> embedding = TokenAndPositionEmbedding(
    ...     vocabulary_size=100, sequence_length=16, embedding_dim=8, mask_zero=True)
    >>> token_ids = tf.constant([[5, 7, 9, 0], [3, 0, 0, 0]])
    >>> embedding(token_ids).shape
    TensorShape([2, 4, 8])
    >>> embedding.compute_mask(token_ids).numpy()
    array([[ True,  True,  True, False],
           [ True, False, False, False]])
    """

    def __init__(
        self,
        vocabulary_size,
        sequence_length,
        embedding_dim,
        embeddings_initializer="uniform",
        mask_zero=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = check_positive_int("vocabulary_size", vocabulary_size)
        self.sequence_length = check_positive_int("sequence_length", sequence_length)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.embeddings_initializer = tf_keras.initializers.get(embeddings_initializer)
        self.mask_zero = bool(mask_zero)

        # Sub-layers.
        self.token_embedding = tf_keras.layers.Embedding(
            self.vocabulary_size,
            self.embedding_dim,
            embeddings_initializer=clone_initializer(self.embeddings_initializer),
            mask_zero=self.mask_zero,
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        self.position_embedding = tf_keras.layers.Embedding(
            self.sequence_length,
            self.embedding_dim,
            embeddings_initializer=clone_initializer(self.embeddings_initializer),
            dtype=self.dtype_policy,
            name="position_embedding",
        )
        self.supports_masking = self.mask_zero

    def build(self, input_shape):
        self.token_embedding.build(input_shape)
        self.position_embedding.build((self.sequence_length,))
        super().build(input_shape)

    def call(self, inputs):
        length = inputs.shape[-1] or tf.shape(inputs)[-1]  # static when known: checked while tracing
        tf.debugging.assert_less_equal(
            length,
            self.sequence_length,
            message=f"{self.name}: the input is longer than sequence_length={self.sequence_length}; "
            "truncate it, or build the layer with a larger sequence_length",
        )
        positions = self.position_embedding(tf.range(length))
        return self.token_embedding(inputs) + positions

    def compute_mask(self, inputs, mask=None):
        return self.token_embedding.compute_mask(inputs, mask=mask)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape).concatenate([self.embedding_dim])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "sequence_length": self.sequence_length,
                "embedding_dim": self.embedding_dim,
                "embeddings_initializer": tf_keras.initializers.serialize(self.embeddings_initializer),
                "mask_zero": self.mask_zero,
            }
        )
        return config
