"""Learned position embeddings (for inputs that already carry token vectors)."""

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf
import tf_keras

from tfnlp.layers._checks import check_positive_int


@tf_keras.utils.register_keras_serializable(package="tfnlp")
class PositionEmbedding(tf_keras.layers.Layer):
    """Returns a learned vector per position, shaped like the input, to be added to it.

    For `[batch, length, width]` inputs it returns `[batch, length, width]`
    position vectors for positions `0 .. length - 1`, so batches padded to their
    own length work as long as `length <= sequence_length`. Used where token
    vectors come from elsewhere (for example projected pretrained embeddings);
    `TokenAndPositionEmbedding` combines both tables for token ids.

    Args:
        sequence_length: int. The number of learned positions (the longest input).
        initializer: str or `tf_keras.initializers.Initializer`. Initializer of
            the position table. Defaults to `"uniform"` (as `tf_keras.layers.Embedding`).
        **kwargs: other keyword arguments of `tf_keras.layers.Layer`.

    Examples:

    >>> vectors = tf.zeros((2, 5, 8))
    >>> layer = PositionEmbedding(sequence_length=16)
    >>> (vectors + layer(vectors)).shape
    TensorShape([2, 5, 8])
    """

    def __init__(self, sequence_length, initializer="uniform", **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = check_positive_int("sequence_length", sequence_length)
        self.initializer = tf_keras.initializers.get(initializer)
        self.supports_masking = True

    def build(self, input_shape):
        width = input_shape[-1]
        if width is None:
            raise ValueError(f"{self.name}: the last dimension of the input must be known, got {input_shape}")
        self.position_embeddings = self.add_weight(
            "embeddings", shape=(self.sequence_length, int(width)), initializer=self.initializer)
        super().build(input_shape)

    def call(self, inputs):
        length = inputs.shape[-2] or tf.shape(inputs)[-2]  # static when known: checked while tracing
        check = tf.debugging.assert_less_equal(
            length, self.sequence_length,
            message=f"{self.name}: the input is longer than sequence_length={self.sequence_length}")
        # In a graph the check must run first: otherwise the broadcast below may fail first, with a shape error.
        with tf.control_dependencies([check] if check is not None else []):
            positions = tf.cast(self.position_embeddings[:length], self.compute_dtype)
            return tf.broadcast_to(positions, tf.shape(inputs))

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        config = super().get_config()
        config.update({"sequence_length": self.sequence_length,
                       "initializer": tf_keras.initializers.serialize(self.initializer)})
        return config
