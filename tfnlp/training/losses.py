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
