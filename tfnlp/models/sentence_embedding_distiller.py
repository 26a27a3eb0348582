"""Training a classifier to also predict a frozen teacher's sentence embedding of each text."""

import numbers

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf
import tf_keras

from tfnlp.layers._checks import check_positive_int


@tf_keras.utils.register_keras_serializable(package="tfnlp")
class SentenceEmbeddingDistiller(tf_keras.Model):
    """A classifier trained with an extra loss: its text features must predict a teacher's sentence embedding.

    Training batches are ``(inputs, (label, teacher_embedding))``: the teacher
    embeddings (for example a frozen pretrained BERT's mean-pooled, unit-length
    sentence vectors, `tfnlp.training.distillation.sentence_embeddings`) are
    computed once, before training. A dense head (``distillation_head``) maps the
    output of the classifier's ``feature_layer`` to the teacher's width, and the
    loss adds ``distillation_weight`` times the mean cosine distance
    ``1 - cos(head output, teacher embedding)`` to the classifier's compiled
    loss. The teacher never runs while training, and the head is used only
    while training: calling the distiller, evaluating it, and exporting
    ``distiller.classifier`` involve the classifier alone. Batches without
    teacher embeddings (``(inputs, label)``, as validation and test) are
    plain classifier batches.

    The logs hold the compiled loss as ``loss`` (the classification loss, as in
    validation) and the distillation term as ``distillation_loss``. Under a
    `tf.distribute` strategy the term is averaged over the global batch, as
    Keras averages the compiled loss.

    Args:
        classifier: tf_keras.Model. A functional model whose output is the logits.
        feature_layer: str. The name of the classifier's layer whose output (a
            vector per text, `[batch, width]`) feeds the distillation head.
        teacher_dim: int. The width of the teacher embeddings.
        distillation_weight: float >= 0. The weight of the distillation term.
            Defaults to `1.0`; `0` trains the classifier exactly as without a teacher.
        **kwargs: keyword arguments of `tf_keras.Model`, such as `name`.

    Example:

    >>> inputs = tf_keras.Input(shape=(3,))
    >>> features = tf_keras.layers.Dense(8, activation="relu", name="features")(inputs)
    >>> classifier = tf_keras.Model(inputs, tf_keras.layers.Dense(2, name="logits")(features))
    >>> distiller = SentenceEmbeddingDistiller(classifier, "features", teacher_dim=4, distillation_weight=3.0)
    >>> distiller.compile("adam", tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> teacher = tf.math.l2_normalize(tf.random.normal([16, 4], seed=1), axis=-1)
    >>> data = tf.data.Dataset.from_tensor_slices((tf.random.normal([16, 3]), (tf.range(16) % 2, teacher)))
    >>> history = distiller.fit(data.batch(8), epochs=1, verbose=0)
    >>> sorted(history.history)
    ['distillation_loss', 'loss']
    >>> distiller(tf.ones([1, 3])).shape  # The classifier's logits.
    TensorShape([1, 2])
    """

    def __init__(self, classifier, feature_layer, teacher_dim, distillation_weight=1.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(classifier, tf_keras.Model) or not getattr(classifier, "_is_graph_network", False):
            raise ValueError(f"`classifier` must be a functional tf_keras.Model, received {type(classifier).__name__}.")
        layer_names = [layer.name for layer in classifier.layers]
        if feature_layer not in layer_names:
            raise ValueError(f"`feature_layer` {feature_layer!r} is not a layer of {classifier.name!r} "
                             f"(layers: {', '.join(layer_names)}).")
        features = classifier.get_layer(feature_layer).output
        if isinstance(features, (list, tuple, dict)) or features.shape.rank != 2:
            raise ValueError(f"`feature_layer` {feature_layer!r} must output one [batch, width] Tensor, "
                             f"received {features}.")
        if (isinstance(distillation_weight, bool) or not isinstance(distillation_weight, numbers.Real)
                or distillation_weight < 0):
            raise ValueError(f"`distillation_weight` must be a number >= 0, received {distillation_weight!r}.")
        self.classifier = classifier
        self.feature_layer = feature_layer
        self.teacher_dim = check_positive_int("teacher_dim", teacher_dim)
        self.distillation_weight = float(distillation_weight)

        # Sub-models and layers.
        self._features_and_logits = tf_keras.Model(classifier.inputs, [features, classifier.output],
                                                   name="features_and_logits")
        self.distillation_head = tf_keras.layers.Dense(self.teacher_dim, dtype="float32", name="distillation_head")
        with tf.name_scope(self.distillation_head.name):
            self.distillation_head.build(features.shape)
        self.distillation_tracker = tf_keras.metrics.Mean(name="distillation_loss")  # Tracked in `self.metrics`.
        self.built = True  # Every weight exists already (BackupAndRestore needs a built model).

    def call(self, inputs, training=None):
        return self.classifier(inputs, training=training)

    def train_step(self, data):
        inputs, targets, sample_weight = tf_keras.utils.unpack_x_y_sample_weight(data)
        if not isinstance(targets, (tuple, list)):
            return super().train_step(data)
        labels, teacher = targets
        with tf.GradientTape() as tape:
            features, logits = self._features_and_logits(inputs, training=True)
            loss = tf.cast(self.compute_loss(inputs, labels, logits, sample_weight), tf.float32)
            distance = self.cosine_distance(self.distillation_head(features), teacher)
            # Averaged over the global batch (divided by the replicas too), as Keras scales the compiled loss.
            loss += self.distillation_weight * tf.nn.compute_average_loss(distance)
        self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
        self.distillation_tracker.update_state(distance)
        return self.compute_metrics(inputs, labels, logits, sample_weight)

    def test_step(self, data):
        logs = super().test_step(data)  # Validation and test batches have no teacher embeddings.
        return {name: value for name, value in logs.items() if name != self.distillation_tracker.name}

    @staticmethod
    def cosine_distance(predictions, teacher):
        """``1 - cos(predictions, teacher)`` per example, in float32."""
        predictions = tf.math.l2_normalize(tf.cast(predictions, tf.float32), axis=-1)
        teacher = tf.math.l2_normalize(tf.cast(teacher, tf.float32), axis=-1)
        return 1.0 - tf.reduce_sum(predictions * teacher, axis=-1)

    def get_config(self):
        # The tf_keras.Model config (name, trainable) is not a constructor argument list here: `name` only.
        return {
            "name": self.name,
            "classifier": tf_keras.utils.serialize_keras_object(self.classifier),
            "feature_layer": self.feature_layer,
            "teacher_dim": self.teacher_dim,
            "distillation_weight": self.distillation_weight,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["classifier"] = tf_keras.utils.deserialize_keras_object(config["classifier"],
                                                                      custom_objects=custom_objects)
        return cls(**config)
