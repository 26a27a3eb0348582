"""A serving module for text classifiers: raw strings in, probabilities and labels out."""

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf


class TextClassifierModule(tf.Module):
    """Wraps a Keras text classifier for TF Serving.

    Signature ``serving_default``: input ``text`` (`tf.string`, shape ``[None]``);
    outputs ``probabilities`` (float32 ``[None, num_classes]``), ``label_id``
    (int64 ``[None]``) and ``label`` (`tf.string` ``[None]``, the class name).

    Args:
        model: tf_keras.Model. Maps a `tf.string` batch of shape ``[None]`` to logits or probabilities.
        class_names: list of str. One name per class, in label-id order.
        outputs_logits: bool. True if ``model`` returns logits (a softmax is applied), False for probabilities.

    Example:
    >>> import tf_keras
    >>> text = tf_keras.Input(shape=(), dtype=tf.string, name="text")
    >>> length = tf_keras.layers.Lambda(lambda t: tf.strings.length(t)[:, None])(text)
    >>> logits = tf_keras.layers.Dense(2)(tf_keras.layers.Lambda(lambda x: tf.cast(x, tf.float32))(length))
    >>> module = TextClassifierModule(tf_keras.Model(text, logits), ["short", "long"])
    >>> sorted(module.serving_default(tf.constant(["a", "bb"])))
    ['label', 'label_id', 'probabilities']
    """

    def __init__(self, model, class_names, outputs_logits=True, name=None):
        super().__init__(name=name)
        num_classes = model.output_shape[-1]
        if len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for a model with {num_classes} outputs")
        self.model = model
        self.class_names = tf.constant(list(class_names), dtype=tf.string)
        self.outputs_logits = bool(outputs_logits)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serving_default(self, text):
        outputs = tf.cast(self.model(text, training=False), tf.float32)
        probabilities = tf.nn.softmax(outputs, axis=-1) if self.outputs_logits else outputs
        label_id = tf.argmax(probabilities, axis=-1)
        return {
            "probabilities": probabilities,
            "label_id": label_id,
            "label": tf.gather(self.class_names, label_id),
        }

    def signatures(self):
        """The signatures to export: ``{"serving_default": ...}``."""
        return {"serving_default": self.serving_default.get_concrete_function()}
