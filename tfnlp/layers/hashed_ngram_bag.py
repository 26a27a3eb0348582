"""The mean embedding of a text's hashed token n-grams (fastText's bag of n-grams)."""

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numbers

import tensorflow as tf
import tf_keras

from tfnlp.layers._checks import check_positive_int, clone_initializer

# A polynomial rolling hash of the ids modulo the Mersenne prime 2**31 - 1, then one
# Lehmer (MINSTD) step to spread it; every product stays below 2**62, so int64
# arithmetic is exact. The multipliers are large so that the bucket of (a, b) is no
# simple function of a and b modulo round bucket counts.
_HASH_MULTIPLIER = 1_103_515_245
_HASH_FINALIZER = 48_271
_HASH_MODULUS = 2**31 - 1


@tf_keras.utils.register_keras_serializable(package="tfnlp")
class HashedNgramBag(tf_keras.layers.Layer):
    """Averages learned embeddings of the hashed n-grams of each token sequence.

    Maps int token ids `[batch, length]` to one vector `[batch, output_dim]`
    per sequence: every run of `n` consecutive real tokens, for each `n` in
    `ngram_orders`, is hashed to one of `num_buckets` rows of a learned
    embedding table, and the rows are averaged. This is fastText's bag of
    n-grams (Joulin et al., 2017): it gives a classifier the word pairs
    ("wall street", "prime minister") that a shallow model trained on a few
    thousand texts struggles to compose from single tokens. Next to a
    Transformer's pooled output it costs one embedding lookup per token.

    The hash is fixed arithmetic on the ids (no vocabulary, no state), so it
    is the same at training and serving time and in every process. N-grams
    that touch padding are skipped, so a sequence's vector does not depend
    on how far its batch was padded; a sequence shorter than every order
    gives zeros.

    Args:
        num_buckets: int. The number of hash buckets (embedding rows). More
            buckets mean fewer collisions and more weights.
        output_dim: int. The size of the output vector.
        ngram_orders: sequence of ints. The n-gram lengths to hash, each >= 1;
            `1` adds the single tokens. Defaults to `(2,)` (bigrams).
        embeddings_initializer: str or `tf_keras.initializers.Initializer`. The
            initializer of the embedding table. Defaults to `"uniform"` (the
            `tf_keras.layers.Embedding` default).
        **kwargs: other keyword arguments of `tf_keras.layers.Layer`, such as
            `name`, `dtype` and `trainable`.

    Examples:

    >>> bag = HashedNgramBag(num_buckets=1000, output_dim=4)
    >>> token_ids = tf.constant([[5, 7, 9, 0, 0], [5, 7, 9, 2, 8]])
    >>> bag(token_ids).shape
    TensorShape([2, 4])
    >>> bag.ngram_ids(token_ids).numpy()  # 0 marks n-grams that touch padding
    array([[ 91, 753,   0,   0],
           [ 91, 753, 623,  35]])
    >>> # The same text gives the same vector however far it is padded.
    >>> bool(tf.reduce_all(bag(token_ids[:1]) == bag(token_ids[:1, :3])))
    True
    """

    def __init__(self, num_buckets, output_dim, ngram_orders=(2,), embeddings_initializer="uniform", **kwargs):
        super().__init__(**kwargs)
        self.num_buckets = check_positive_int("num_buckets", num_buckets)
        self.output_dim = check_positive_int("output_dim", output_dim)
        self.ngram_orders = _check_orders(ngram_orders)
        self.embeddings_initializer = tf_keras.initializers.get(embeddings_initializer)

        # Row 0 is never looked up by a real n-gram: n-gram ids are 1 .. num_buckets.
        self.embedding = tf_keras.layers.Embedding(
            self.num_buckets + 1,
            self.output_dim,
            embeddings_initializer=clone_initializer(self.embeddings_initializer),
            dtype=self.dtype_policy,
            name="ngram_embedding",
        )

    def build(self, input_shape):
        if tf.TensorShape(input_shape).rank != 2:
            raise ValueError(f"{self.name}: expected token ids of shape [batch, length], received {input_shape}.")
        self.embedding.build(input_shape)
        super().build(input_shape)

    def ngram_ids(self, inputs, padding_mask=None):
        """The bucket of every n-gram: `[batch, positions]` ints in `[1, num_buckets]`, 0 where it touches padding.

        The n-grams of each order are concatenated along the last axis, order
        by order, each starting at every position of the sequence.

        Args:
            inputs: int Tensor `[batch, length]` of token ids, 0 being padding.
            padding_mask: optional bool or int Tensor `[batch, length]`, true/1
                at real tokens. Defaults to `inputs != 0`.
        """
        ids = tf.cast(inputs, tf.int64)
        real = tf.not_equal(ids, 0) if padding_mask is None else tf.cast(padding_mask, tf.bool)
        length = tf.shape(ids)[1]
        buckets = []
        for order in self.ngram_orders:
            width = tf.maximum(length - order + 1, 0)
            code = tf.fill([tf.shape(ids)[0], width], tf.constant(order, tf.int64))  # Orders hash apart.
            valid = tf.ones([tf.shape(ids)[0], width], tf.bool)
            for offset in range(order):
                code = tf.math.floormod(code * _HASH_MULTIPLIER + ids[:, offset:offset + width], _HASH_MODULUS)
                valid = tf.logical_and(valid, real[:, offset:offset + width])
            code = tf.math.floormod(code * _HASH_FINALIZER, _HASH_MODULUS)
            bucket = tf.math.floormod(code, self.num_buckets) + 1
            buckets.append(tf.where(valid, bucket, tf.zeros_like(bucket)))
        return tf.concat(buckets, axis=1)

    def call(self, inputs, padding_mask=None):
        """The mean n-gram embedding of each sequence.

        Args:
            inputs: int Tensor `[batch, length]` of token ids, 0 being padding.
            padding_mask: optional bool or int Tensor `[batch, length]`, true/1
                at real tokens. Defaults to `inputs != 0`.

        Returns:
            Float Tensor `[batch, output_dim]`.
        """
        buckets = self.ngram_ids(inputs, padding_mask)
        vectors = self.embedding(buckets)
        weights = tf.cast(buckets > 0, vectors.dtype)[:, :, tf.newaxis]
        total = tf.reduce_sum(vectors * weights, axis=1)
        count = tf.reduce_sum(weights, axis=1)
        return total / tf.maximum(count, 1)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([tf.TensorShape(input_shape)[0], self.output_dim])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_buckets": self.num_buckets,
                "output_dim": self.output_dim,
                "ngram_orders": list(self.ngram_orders),
                "embeddings_initializer": tf_keras.initializers.serialize(self.embeddings_initializer),
            }
        )
        return config


def _check_orders(ngram_orders):
    """``ngram_orders`` as a tuple of distinct positive ints, or a ValueError naming the problem."""
    if isinstance(ngram_orders, (str, bytes)) or not hasattr(ngram_orders, "__iter__"):
        raise ValueError(f"`ngram_orders` must be a sequence of positive integers, received {ngram_orders!r}.")
    orders = tuple(ngram_orders)
    if not orders or any(isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1 for n in orders):
        raise ValueError(f"`ngram_orders` must be a non-empty sequence of positive integers, received {orders!r}.")
    if len(set(orders)) != len(orders):
        raise ValueError(f"`ngram_orders` must not repeat an order, received {orders!r}.")
    return tuple(int(n) for n in orders)
