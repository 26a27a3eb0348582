"""A serving module for text classifiers: raw strings in, probabilities and labels out."""

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf

IDS_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class TextClassifierModule(tf.Module):
    """Wraps a Keras text classifier for TF Serving.

    Signature ``serving_default``: input ``text`` (`tf.string`, shape ``[None]``);
    outputs ``probabilities`` (float32 ``[None, num_classes]``), ``label_id``
    (int64 ``[None]``), ``label`` (`tf.string` ``[None]``, the class name) and,
    when the model reports it, ``truncated`` (bool ``[None]``): True for a text
    the model read only the beginning of (more word pieces than its sequence
    length), so a client knows the answer is about the text's first part.

    With ``ids_model``, a second signature ``serving_ids`` serves clients that
    tokenize themselves (and model servers built without tensorflow-text's ops):
    inputs ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int32
    ``[None, None]``, HF's names), the same outputs. Its inputs are checked in the
    graph: the three must have one shape, ids must lie in ``[0, vocab_size)``,
    the mask must be 0 or 1, segment ids in ``[0, type_vocab_size)`` and the
    length at most ``max_length``; a bad request fails with an
    ``InvalidArgumentError`` naming the problem (TF Serving answers it with an
    error), not with a crash or a silent out-of-range lookup. It never cuts a
    sequence, so its ``truncated`` output (when ``serving_default`` has one) is
    always False.

    Args:
        model: tf_keras.Model. Maps a `tf.string` batch of shape ``[None]`` to logits or probabilities, or to
            a dict of them (``"logits"``, whatever ``outputs_logits`` says they are) and ``"truncated"`` (bool
            ``[None]``, which texts were cut), which becomes the ``truncated`` output.
        class_names: list of str. One name per class, in label-id order.
        outputs_logits: bool. True if the models return logits (a softmax is applied), False for probabilities.
        ids_model: tf_keras.Model or None. Maps the dict of ``IDS_INPUTS`` to the same logits as ``model``
            (sharing its weights); None for no ``serving_ids`` signature.
        vocab_size: int or None. Size of the vocabulary (required with ``ids_model``).
        type_vocab_size: int. Number of segment ids.
        max_length: int or None. Longest sequence the model takes (its position embeddings).
        name: str or None. Module name.

    Example:
    >>> import tf_keras
    >>> text = tf_keras.Input(shape=(), dtype=tf.string, name="text")
    >>> length = tf_keras.layers.Lambda(lambda t: tf.strings.length(t)[:, None])(text)
    >>> logits = tf_keras.layers.Dense(2)(tf_keras.layers.Lambda(lambda x: tf.cast(x, tf.float32))(length))
    >>> module = TextClassifierModule(tf_keras.Model(text, logits), ["short", "long"])
    >>> sorted(module.serving_default(tf.constant(["a", "bb"])))
    ['label', 'label_id', 'probabilities']
    """

    def __init__(self, model, class_names, outputs_logits=True, ids_model=None, vocab_size=None, type_vocab_size=2,
                 max_length=None, name=None):
        super().__init__(name=name)
        output_shape = model.output_shape
        self.reports_truncation = isinstance(output_shape, dict)
        if self.reports_truncation and set(output_shape) != {"logits", "truncated"}:
            raise ValueError(f"a model with several outputs must give 'logits' and 'truncated', got "
                             f"{sorted(output_shape)}")
        num_classes = (output_shape["logits"] if self.reports_truncation else output_shape)[-1]
        if len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for a model with {num_classes} outputs")
        if ids_model is not None and not vocab_size:
            raise ValueError("ids_model needs vocab_size (to reject out-of-range ids)")
        self.model = model
        self.ids_model = ids_model
        self.class_names = tf.constant(list(class_names), dtype=tf.string)
        self.outputs_logits = bool(outputs_logits)
        self.vocab_size = vocab_size
        self.type_vocab_size = type_vocab_size
        self.max_length = max_length
        if ids_model is not None:  # Only then: a tf.function with a signature is traced (and saved) regardless.
            self.serving_ids = tf.function(
                self._serving_ids,
                input_signature=[tf.TensorSpec([None, None], tf.int32, name=key) for key in IDS_INPUTS])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serving_default(self, text):
        outputs = self.model(text, training=False)
        if not self.reports_truncation:
            return self._outputs(outputs)
        return self._outputs(outputs["logits"], tf.cast(outputs["truncated"], tf.bool))

    def _serving_ids(self, input_ids, attention_mask, token_type_ids):
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        logits = self.ids_model(self._checked(inputs), training=False)
        # Ids are never cut (a sequence longer than max_length is refused).
        return self._outputs(logits, tf.zeros(tf.shape(input_ids)[:1], tf.bool) if self.reports_truncation else None)

    def _checked(self, inputs):
        ids, mask, types = (inputs[key] for key in IDS_INPUTS)
        checks = [
            tf.debugging.assert_equal(tf.shape(mask), tf.shape(ids),
                                      message="attention_mask must have the shape of input_ids"),
            tf.debugging.assert_equal(tf.shape(types), tf.shape(ids),
                                      message="token_type_ids must have the shape of input_ids"),
            tf.debugging.assert_non_negative(ids, message="input_ids must be >= 0"),
            tf.debugging.assert_less(ids, tf.constant(self.vocab_size, tf.int32),
                                     message=f"input_ids must be < the vocabulary size {self.vocab_size}"),
            tf.debugging.assert_equal(tf.reduce_all((mask == 0) | (mask == 1)), True,
                                      message="attention_mask must hold 0 or 1"),
            tf.debugging.assert_non_negative(types, message="token_type_ids must be >= 0"),
            tf.debugging.assert_less(types, tf.constant(self.type_vocab_size, tf.int32),
                                     message=f"token_type_ids must be < {self.type_vocab_size}"),
        ]
        if self.max_length:
            checks.append(tf.debugging.assert_less_equal(
                tf.shape(ids)[1], self.max_length, message=f"sequences must be at most {self.max_length} tokens"))
        with tf.control_dependencies(checks):
            return {key: tf.identity(value) for key, value in inputs.items()}

    def _outputs(self, outputs, truncated=None):
        outputs = tf.cast(outputs, tf.float32)
        probabilities = tf.nn.softmax(outputs, axis=-1) if self.outputs_logits else outputs
        label_id = tf.argmax(probabilities, axis=-1)
        result = {
            "probabilities": probabilities,
            "label_id": label_id,
            "label": tf.gather(self.class_names, label_id),
        }
        if truncated is not None:
            result["truncated"] = truncated
        return result

    def signatures(self):
        """The signatures to export: ``serving_default``, and ``serving_ids`` when there is an ``ids_model``."""
        signatures = {"serving_default": self.serving_default.get_concrete_function()}
        if self.ids_model is not None:
            signatures["serving_ids"] = self.serving_ids.get_concrete_function()
        return signatures
