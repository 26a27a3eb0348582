"""Unit tests of tfnlp.layers.HashedNgramBag: hashing, padding, config, save/load, mixed precision."""

import doctest
import json

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfnlp.layers import HashedNgramBag, hashed_ngram_bag

# Two texts padded to 5 ids, and the same texts padded to 12 ids.
SHORT_IDS = np.array([[4, 9, 3, 0, 0], [7, 2, 5, 11, 6]])
LONG_IDS = np.pad(SHORT_IDS, [(0, 0), (0, 7)])


def build_bag_model(**kwargs):
    tf_keras.utils.set_random_seed(3)
    token_ids = tf_keras.Input(shape=(None,), dtype="int32", name="token_ids")
    return tf_keras.Model(token_ids, HashedNgramBag(1000, 8, name="bag", **kwargs)(token_ids))


def test_docstring_examples_run():
    result = doctest.testmod(hashed_ngram_bag)
    assert result.attempted > 0 and result.failed == 0


def test_config_round_trip_and_registration():
    bag = HashedNgramBag(500, 6, ngram_orders=(1, 3), embeddings_initializer="glorot_normal", name="bag",
                         dtype="float64")
    config = bag.get_config()
    assert (config["num_buckets"], config["output_dim"], config["ngram_orders"]) == (500, 6, [1, 3])
    assert config["embeddings_initializer"]["class_name"] == "GlorotNormal"
    serialized = json.loads(json.dumps(tf_keras.layers.serialize(bag)))
    assert serialized["registered_name"] == "tfnlp>HashedNgramBag"
    assert tf_keras.layers.deserialize(serialized).get_config() == config
    assert HashedNgramBag.from_config(config).get_config() == config


def test_output_is_the_mean_of_the_embeddings_of_the_real_ngrams():
    bag = HashedNgramBag(1000, 8, ngram_orders=(1, 2))
    outputs = bag(SHORT_IDS).numpy()
    table = bag.embedding.embeddings.numpy()
    buckets = bag.ngram_ids(SHORT_IDS).numpy()
    # Text 0 has 3 tokens: 3 unigrams and 2 bigrams; text 1 has 5 tokens: 5 + 4.
    assert [(row > 0).sum() for row in buckets] == [3 + 2, 5 + 4]
    for text, row in enumerate(buckets):
        np.testing.assert_allclose(outputs[text], table[row[row > 0]].mean(axis=0), rtol=1e-6)


def test_ngrams_that_touch_padding_get_bucket_zero_and_real_ones_stay_in_range():
    bag = HashedNgramBag(7, 2, ngram_orders=(2, 3))
    buckets = bag.ngram_ids(SHORT_IDS).numpy()
    # Bigrams at positions 0..3, then trigrams at 0..2.
    np.testing.assert_array_equal(buckets[0] > 0, [True, True, False, False, True, False, False])
    assert (buckets[1] > 0).all()
    assert buckets.min() >= 0 and buckets.max() <= 7


def test_the_hash_depends_on_token_order_and_on_the_ngram_order():
    bag = HashedNgramBag(1_000_000, 2, ngram_orders=(1, 2))
    ids = tf.constant([[5, 7], [7, 5]])
    buckets = bag.ngram_ids(ids).numpy()  # unigrams 2, then the bigram
    assert buckets[0, 2] != buckets[1, 2]  # (5, 7) vs (7, 5)
    assert buckets[0, 0] == buckets[1, 1]  # unigram 5 wherever it stands
    # The unigram and bigram tables share the buckets, but the orders are salted apart.
    assert len({int(b) for b in buckets.ravel()}) == 4


def test_the_hash_spreads_ngrams_over_the_buckets_like_a_random_function():
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 30522, size=(1, 50001))
    buckets = HashedNgramBag(20000, 2).ngram_ids(ids).numpy().ravel()
    expected_distinct = 20000 * (1 - (1 - 1 / 20000) ** buckets.size)
    assert abs(len(np.unique(buckets)) - expected_distinct) < 0.01 * expected_distinct
    # Consecutive small ids, where a weak hash collides in patterns.
    pairs = np.stack(np.meshgrid(np.arange(1, 201), np.arange(1, 201)), -1).reshape(-1, 2)
    pair_buckets = HashedNgramBag(20000, 2).ngram_ids(pairs).numpy().ravel()
    expected_distinct = 20000 * (1 - (1 - 1 / 20000) ** pair_buckets.size)
    assert len(np.unique(pair_buckets)) >= 0.98 * expected_distinct


def test_buckets_are_the_same_in_every_instance_and_graph():
    first, second = HashedNgramBag(1000, 4), HashedNgramBag(1000, 16, name="other")
    traced = tf.function(second.ngram_ids, input_signature=[tf.TensorSpec((None, None), tf.int32)])
    np.testing.assert_array_equal(first.ngram_ids(SHORT_IDS), traced(tf.constant(SHORT_IDS, tf.int32)))


def test_output_does_not_change_when_the_batch_is_padded_longer():
    model = build_bag_model(ngram_orders=(1, 2, 3))
    short = model(SHORT_IDS).numpy()
    # Equal up to float summation order.
    np.testing.assert_allclose(model(LONG_IDS), short, rtol=0, atol=1e-7)
    np.testing.assert_allclose(model(SHORT_IDS[:1, :3]), short[:1], rtol=0, atol=1e-7)


def test_explicit_padding_mask_overrides_ids_and_short_texts_give_zeros():
    bag = HashedNgramBag(1000, 4, ngram_orders=(2,))
    ids = tf.constant([[4, 9, 3], [8, 0, 0]])
    # Text 1 has one token, so no bigram: zeros, not NaN.
    outputs = bag(ids).numpy()
    np.testing.assert_array_equal(outputs[1], np.zeros(4))
    masked = bag(ids, padding_mask=tf.constant([[1, 1, 0], [1, 0, 0]])).numpy()
    np.testing.assert_allclose(masked[0], bag(ids[:1, :2])[0])
    assert bag(tf.zeros((2, 1), tf.int32)).numpy().tolist() == [[0.0] * 4] * 2


def test_only_the_looked_up_rows_get_gradients():
    bag = HashedNgramBag(1000, 4)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(bag(SHORT_IDS))
    gradient = tf.convert_to_tensor(tape.gradient(loss, bag.embedding.embeddings))
    rows = np.flatnonzero(np.abs(gradient.numpy()).sum(axis=1))
    buckets = bag.ngram_ids(SHORT_IDS).numpy()
    np.testing.assert_array_equal(rows, np.unique(buckets[buckets > 0]))


@pytest.mark.parametrize("save_format", ["keras", "tf"])
def test_save_and_reload_give_identical_outputs(tmp_path, save_format):
    model = build_bag_model(ngram_orders=(2, 3))
    path = str(tmp_path / ("bag.keras" if save_format == "keras" else "bag"))
    model.save(path, save_format=save_format)
    reloaded = tf_keras.models.load_model(path)
    assert isinstance(reloaded.get_layer("bag"), HashedNgramBag)
    assert reloaded.get_layer("bag").ngram_orders == (2, 3)
    np.testing.assert_array_equal(reloaded(LONG_IDS), model(LONG_IDS))


def test_computes_in_float16_with_float32_variables():
    tf_keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        bag = HashedNgramBag(1000, 4)
        outputs = bag(SHORT_IDS)
    finally:
        tf_keras.mixed_precision.set_global_policy("float32")
    assert outputs.dtype == tf.float16
    assert bag.embedding.embeddings.dtype == tf.float32


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: HashedNgramBag(0, 4), "`num_buckets` must be a positive integer, received 0"),
        (lambda: HashedNgramBag(10, 2.5), "`output_dim` must be a positive integer, received 2.5"),
        (lambda: HashedNgramBag(10, 4, ngram_orders=2), "`ngram_orders` must be a sequence of positive integers"),
        (lambda: HashedNgramBag(10, 4, ngram_orders="2"), "`ngram_orders` must be a sequence of positive integers"),
        (lambda: HashedNgramBag(10, 4, ngram_orders=()), "non-empty sequence of positive integers, received ()"),
        (lambda: HashedNgramBag(10, 4, ngram_orders=(2, 0)), r"positive integers, received \(2, 0\)"),
        (lambda: HashedNgramBag(10, 4, ngram_orders=(2, 2)), r"must not repeat an order, received \(2, 2\)"),
    ],
)
def test_invalid_arguments_raise_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_rejects_inputs_that_are_not_id_matrices():
    with pytest.raises(ValueError, match=r"expected token ids of shape \[batch, length\]"):
        HashedNgramBag(10, 4)(tf.zeros((2, 5, 3), tf.int32))
