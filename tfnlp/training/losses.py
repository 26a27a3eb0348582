"""Classification losses on integer labels."""

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf
import tf_keras


@tf_keras.utils.register_keras_serializable(package="tfnlp")
class SparseCategoricalCrossentropyWithSmoothing(tf_keras.losses.Loss):
    """Cross-entropy of logits against integer labels, with label smoothing.

    `tf_keras.losses.SparseCategoricalCrossentropy` has no label smoothing; this
    one-hot encodes the labels and applies
    `tf_keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=...)`,
    so datasets keep their integer labels.

    Args:
        num_classes: int. Number of classes (width of the logits).
        label_smoothing: float in [0, 1). Mass moved from the true class to all classes uniformly.
        **kwargs: `tf_keras.losses.Loss` arguments (``reduction``, ``name``).

    Example:
    >>> loss = SparseCategoricalCrossentropyWithSmoothing(num_classes=3, label_smoothing=0.1)
    >>> float(loss(tf.constant([0]), tf.constant([[10.0, 0.0, 0.0]]))) > 0.1
    True
    """

    def __init__(self, num_classes, label_smoothing=0.0, name="sparse_categorical_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
        self.num_classes = int(num_classes)
        self.label_smoothing = float(label_smoothing)
        self._crossentropy = tf_keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=self.label_smoothing, reduction=tf_keras.losses.Reduction.NONE)

    def call(self, y_true, y_pred):
        labels = tf.one_hot(tf.cast(tf.reshape(y_true, [-1]), tf.int32), self.num_classes, dtype=y_pred.dtype)
        return self._crossentropy(labels, y_pred)

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "label_smoothing": self.label_smoothing})
        return config


@tf_keras.utils.register_keras_serializable(package="tfnlp")
class MaskedSparseCategoricalCrossentropy(tf_keras.losses.Loss):
    """Cross-entropy of per-token logits against integer labels, skipping the labels equal to ``ignore_index``.

    The mean over the labelled tokens of the batch, as HF's ``hf_compute_loss``
    for token classification: padding, special tokens and (optionally) later
    sub-word pieces carry -100 and add nothing, however long the batch's padding.

    Args:
        ignore_index: int. The label that marks tokens without a label.
        **kwargs: `tf_keras.losses.Loss` arguments (``name``).

    Example:
    >>> loss = MaskedSparseCategoricalCrossentropy()
    >>> logits = tf.constant([[[0.0, 5.0], [9.0, 0.0]]])
    >>> round(float(loss(tf.constant([[1, -100]]), logits)), 4)  # Only the first token counts.
    0.0067
    """

    def __init__(self, ignore_index=-100, name="masked_sparse_categorical_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.ignore_index = int(ignore_index)

    def call(self, y_true, y_pred):
        y_true = tf.cast(y_true, tf.int32)
        mask = tf.not_equal(y_true, self.ignore_index)
        losses = tf_keras.losses.sparse_categorical_crossentropy(
            tf.where(mask, y_true, 0), tf.cast(y_pred, tf.float32), from_logits=True)
        mask = tf.cast(mask, losses.dtype)
        # One value per batch: the mean over labelled tokens (Keras' reduction then leaves it as it is).
        return tf.math.divide_no_nan(tf.reduce_sum(losses * mask), tf.reduce_sum(mask))

    def get_config(self):
        config = super().get_config()
        config.update({"ignore_index": self.ignore_index})
        return config
