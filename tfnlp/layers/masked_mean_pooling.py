"""Mean over the real (non-padded) positions of a sequence."""

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf
import tf_keras


@tf_keras.utils.register_keras_serializable(package="tfnlp")
class MaskedMeanPooling(tf_keras.layers.Layer):
    """Averages `[batch, length, dim]` over its real positions to `[batch, dim]`.

    Unlike `tf_keras.layers.GlobalAveragePooling1D` without a mask, padding does
    not dilute the mean, so a text's vector does not depend on how long the
    batch it sits in was padded. The positions come from the explicit
    `padding_mask`, else from the Keras mask of the inputs, else all positions
    count. A row with no real position (all padding) pools to zeros, not NaN.

    Args:
        **kwargs: keyword arguments of `tf_keras.layers.Layer`, such as `name`
            and `dtype`.

    Examples:

    >>> pooling = MaskedMeanPooling()
    >>> inputs = tf.constant([[[1.0], [3.0], [100.0]], [[2.0], [4.0], [6.0]]])
    >>> padding_mask = tf.constant([[1, 1, 0], [1, 1, 1]])
    >>> pooling(inputs, padding_mask=padding_mask).numpy()
    array([[2.],
           [4.]], dtype=float32)
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def build(self, input_shape):
        if tf.TensorShape(input_shape).rank != 3:
            raise ValueError(f"{self.name}: expected inputs of shape [batch, length, dim], received {input_shape}.")
        super().build(input_shape)

    def call(self, inputs, padding_mask=None, mask=None):
        """Pools `inputs`.

        Args:
            inputs: float Tensor `[batch, length, dim]`.
            padding_mask: bool or int Tensor `[batch, length]`, true/1 at real
                positions. Takes precedence over `mask`.
            mask: the Keras mask of `inputs`, set by Keras mask propagation.

        Returns:
            Float Tensor `[batch, dim]`.
        """
        padding_mask = padding_mask if padding_mask is not None else mask
        if padding_mask is None:
            return tf.reduce_mean(inputs, axis=1)
        weights = tf.cast(padding_mask, inputs.dtype)[:, :, tf.newaxis]
        total = tf.reduce_sum(inputs * weights, axis=1)
        count = tf.reduce_sum(weights, axis=1)
        return total / tf.maximum(count, 1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        return tf.TensorShape([input_shape[0], input_shape[-1]])
