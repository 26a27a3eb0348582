"""Unit tests of tfnlp.models.transformer_classifier: the text vectorizer and the classifier builder."""

import doctest

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfnlp.layers import HashedNgramBag, MaskedMeanPooling, TokenAndPositionEmbedding, TransformerBlock
from tfnlp.models import build_text_vectorizer, build_transformer_classifier
from tfnlp.models import transformer_classifier

TEXTS = [
    "the team won the cup final",
    "striker scores twice as the team wins",
    "coach praises the team after the match",
    "stocks fell as markets slumped",
    "shares rose after strong bank profits",
    "the bank cut rates and stocks rallied",
]
LABELS = [0, 0, 0, 1, 1, 1]
TINY = dict(num_classes=2, sequence_length=8, embedding_dim=8, num_layers=2, num_heads=2, intermediate_dim=16)
PRETRAINED_WIDTH = 12  # wider than embedding_dim, as a BERT's 384 is wider than the lesson's 32
PRETRAINED_LAYERS = ("pretrained_token_embedding", "pretrained_layer_norm")  # No LayerNorm layer when frozen.


@pytest.fixture(scope="module")
def vectorizer():
    return build_text_vectorizer(tf.data.Dataset.from_tensor_slices(TEXTS), vocabulary_size=40)


@pytest.fixture
def mixed_float16():
    tf_keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    tf_keras.mixed_precision.set_global_policy("float32")


def tiny_classifier(vectorizer, **overrides):
    tf_keras.utils.set_random_seed(3)
    return build_transformer_classifier(vectorizer, **{**TINY, "dropout": 0.2, **overrides})


def pretrained_tables(vocabulary_size, width=PRETRAINED_WIDTH):
    """Random tables shaped as `tfnlp.pretrained.load_embedding_matrices` returns them (LayerNorm not identity)."""
    rng = np.random.default_rng(0)
    return {
        "word_embeddings": rng.normal(size=(vocabulary_size, width)).astype(np.float32),
        "layer_norm_gamma": (1.0 + rng.normal(size=width) / 2).astype(np.float32),
        "layer_norm_beta": rng.normal(size=width).astype(np.float32),
    }


def pretrained_classifier(vectorizer, **overrides):
    tables = pretrained_tables(vectorizer.vocabulary_size())
    return tiny_classifier(vectorizer, pretrained_embeddings=tables, **overrides), tables


def layer_normalized(vectors, gamma, beta):
    """BERT's embedding LayerNorm (epsilon 1e-12) in float64 NumPy: the reference for the model's."""
    vectors = np.asarray(vectors, np.float64)
    mean, variance = vectors.mean(-1, keepdims=True), vectors.var(-1, keepdims=True)
    return (vectors - mean) / np.sqrt(variance + 1e-12) * gamma + beta


def pretrained_weights(model):
    """The weights of the model's pretrained layers (the token table and, unless frozen, its LayerNorm)."""
    names = {layer.name for layer in model.layers}
    return [weight for name in PRETRAINED_LAYERS if name in names for weight in model.get_layer(name).weights]


def refs(weights):
    return {weight.ref() for weight in weights}


class DictTokenizer(tf_keras.layers.Layer):
    """A stand-in for a WordPiece tokenizer layer: returns a dict of `input_ids` (hashed words, 0 = padding)."""

    def call(self, texts):
        ids = tf.strings.to_hash_bucket_fast(tf.strings.split(texts), 29) + 1
        return {"input_ids": ids.to_tensor(), "attention_mask": tf.ones_like(ids).to_tensor()}


# The vectorizer.

@pytest.mark.parametrize("texts", [TEXTS, tf.data.Dataset.from_tensor_slices(TEXTS).batch(4)],
                         ids=["list", "batched_dataset"])
def test_vectorizer_adapts_on_lists_and_datasets(vectorizer, texts):
    other = build_text_vectorizer(texts, vocabulary_size=40)
    assert other.get_vocabulary() == vectorizer.get_vocabulary()
    assert vectorizer.get_vocabulary()[:3] == ["", "[UNK]", "the"]
    assert vectorizer.vocabulary_size() == len(set(" ".join(TEXTS).split())) + 2


def test_vectorizer_pads_to_the_longest_text_of_the_batch_without_truncating(vectorizer):
    long_text = " ".join(["team"] * 30)
    ids = vectorizer(tf.constant(["The TEAM, won!", long_text])).numpy()
    assert ids.shape == (2, 30)
    assert (ids[0, 3:] == 0).all() and (ids[0, :3] != 0).all()
    assert vectorizer(tf.constant(["stocks fell"])).shape == (1, 2)


def test_vectorizer_caps_the_vocabulary():
    assert build_text_vectorizer(TEXTS, vocabulary_size=5).vocabulary_size() == 5


# The model.

def test_model_maps_strings_to_float32_logits(vectorizer):
    model = tiny_classifier(vectorizer)
    assert model.input.dtype == tf.string and model.input.shape.as_list() == [None]
    assert model.input_names == ["text"] and model.output_names == ["logits"]
    logits = model(tf.constant(TEXTS[:3]))
    assert logits.dtype == tf.float32 and logits.shape == (3, 2)
    assert [type(layer) for layer in model.layers if isinstance(layer, TransformerBlock)] == [TransformerBlock] * 2
    embedding = model.get_layer("token_and_position_embedding")
    assert (embedding.vocabulary_size, embedding.sequence_length, embedding.embedding_dim) == (
        vectorizer.vocabulary_size(), 8, 8)
    assert isinstance(model.get_layer("masked_mean_pooling"), MaskedMeanPooling)


def test_logits_do_not_change_when_the_batch_is_padded_longer(vectorizer):
    model = tiny_classifier(vectorizer)
    alone = model(tf.constant(["stocks fell"]), training=False).numpy()
    batch = tf.constant(["stocks fell", "coach praises the team after the match"])
    assert np.abs(model(batch, training=False).numpy()[:1] - alone).max() <= 1e-5


def test_texts_longer_than_sequence_length_are_truncated(vectorizer):
    model = tiny_classifier(vectorizer, sequence_length=4)
    words = "the bank cut rates and stocks rallied".split()
    long, cut = model(tf.constant([" ".join(words), " ".join(words[:4])]), training=False).numpy()
    np.testing.assert_allclose(long, cut, atol=1e-5)


def test_empty_text_gives_finite_logits(vectorizer):
    assert np.isfinite(tiny_classifier(vectorizer)(tf.constant(["", ""])).numpy()).all()


def test_dict_output_vectorizer_uses_input_ids():
    model = build_transformer_classifier(DictTokenizer(), vocabulary_size=30, **TINY)
    assert model.get_layer("token_and_position_embedding").vocabulary_size == 30
    assert model(tf.constant(TEXTS[:2])).shape == (2, 2)
    with pytest.raises(ValueError, match="`vocabulary_size` is required: DictTokenizer has no vocabulary_size"):
        build_transformer_classifier(DictTokenizer(), **TINY)


def test_without_vectorizer_the_model_takes_ids_and_wraps_into_a_text_model(vectorizer):
    model = tiny_classifier(None, vocabulary_size=vectorizer.vocabulary_size())
    assert model.input_names == ["input_ids"] and model.input.dtype == tf.int32
    text = tf_keras.Input(shape=(), dtype=tf.string, name="text")
    exported = tf_keras.Model(text, model(vectorizer(text)))
    np.testing.assert_array_equal(exported(tf.constant(TEXTS)), model(vectorizer(tf.constant(TEXTS))))
    with pytest.raises(ValueError, match="`vocabulary_size` is required when `vectorizer` is None"):
        build_transformer_classifier(None, **TINY)


@pytest.mark.large  # XLA compiles (slow on CPU); make test trains the same models without it.
@pytest.mark.parametrize("ngram_buckets", [0, 50], ids=["plain", "with_ngram_bag"])
def test_model_on_ids_trains_with_xla(vectorizer, ngram_buckets):
    """XLA cannot compile string ops (the text model aborts the process), so XLA/TPU training uses ids."""
    model = tiny_classifier(None, vocabulary_size=vectorizer.vocabulary_size(), ngram_buckets=ngram_buckets)
    model.compile(optimizer="adam", loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=True)
    assert np.isfinite(model.train_on_batch(vectorizer(tf.constant(TEXTS)), np.array(LABELS)))


def test_dict_without_input_ids_is_rejected():
    class NoIds(tf_keras.layers.Layer):
        def call(self, texts):
            return {"token_ids": tf.strings.to_hash_bucket_fast(tf.strings.split(texts), 9).to_tensor()}

    with pytest.raises(ValueError, match=r"without 'input_ids' \(keys: \['token_ids'\]\)"):
        build_transformer_classifier(NoIds(), vocabulary_size=10, **TINY)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"num_classes": 1}, "`num_classes` must be at least 2, received 1"),
        ({"num_classes": -3}, "`num_classes` must be a positive integer, received -3"),
        ({"num_layers": 0}, "`num_layers` must be a positive integer, received 0"),
        ({"dropout": 1.0}, r"`dropout` must be a number in \[0, 1\), received 1.0"),
        ({"num_heads": 3}, r"`embedding_dim` \(8\) must be divisible by `num_heads` \(3\)"),
        ({"sequence_length": 0}, "`sequence_length` must be a positive integer, received 0"),
        ({"intermediate_dim": -1}, "`intermediate_dim` must be a positive integer, received -1"),
        ({"ngram_buckets": -5}, "`ngram_buckets` must be a positive integer, received -5"),
        ({"ngram_buckets": 10, "ngram_orders": (2, 2)}, r"`ngram_orders` must not repeat an order"),
    ],
)
def test_invalid_arguments_raise_clear_errors(vectorizer, overrides, message):
    with pytest.raises(ValueError, match=message):
        build_transformer_classifier(vectorizer, **{**TINY, **overrides})


@pytest.mark.parametrize("save_format", ["keras", "tf"])
def test_save_and_reload_give_identical_outputs_on_raw_text(vectorizer, tmp_path, save_format):
    model = tiny_classifier(vectorizer)
    path = str(tmp_path / ("classifier.keras" if save_format == "keras" else "classifier"))
    model.save(path, save_format=save_format)
    reloaded = tf_keras.models.load_model(path)
    texts = tf.constant(TEXTS + ["unknown words only", ""])
    np.testing.assert_array_equal(reloaded(texts), model(texts))
    assert {TokenAndPositionEmbedding, TransformerBlock, MaskedMeanPooling} <= {type(x) for x in reloaded.layers}


@pytest.mark.parametrize("pretrained, options", [
    (False, dict()),
    (True, dict()),
    (True, dict(freeze_pretrained_embeddings=False, learn_token_embeddings=True)),
], ids=["from_scratch", "pretrained", "pretrained_trainable_with_learned_tokens"])
def test_mixed_float16_computes_in_float16_and_returns_float32_logits(vectorizer, mixed_float16, pretrained, options):
    tables = pretrained_tables(vectorizer.vocabulary_size()) if pretrained else None
    model = tiny_classifier(vectorizer, pretrained_embeddings=tables, **options)
    assert model.get_layer("transformer_block_0").compute_dtype == "float16"
    logits = model(tf.constant(TEXTS))
    assert logits.dtype == tf.float32
    assert np.isfinite(logits.numpy()).all()


def test_tiny_classifier_learns_a_toy_task(vectorizer):
    model = tiny_classifier(vectorizer, dropout=0.0)
    model.compile(optimizer=tf_keras.optimizers.Adam(0.01),
                  loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    dataset = tf.data.Dataset.from_tensor_slices((TEXTS, LABELS)).batch(6)
    history = model.fit(dataset, epochs=15, verbose=0).history
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["accuracy"][-1] == 1.0


def test_docstring_examples_run():
    result = doctest.testmod(transformer_classifier)
    assert result.attempted > 0 and result.failed == 0


# Pretrained embeddings.

def test_frozen_pretrained_table_holds_the_layer_normalized_vectors(vectorizer):
    model, tables = pretrained_classifier(vectorizer)
    expected = layer_normalized(tables["word_embeddings"], tables["layer_norm_gamma"], tables["layer_norm_beta"])
    embedding = model.get_layer("pretrained_token_embedding")
    np.testing.assert_allclose(embedding.embeddings, expected, atol=1e-5)
    assert not embedding.trainable
    assert "pretrained_layer_norm" not in [layer.name for layer in model.layers]
    assert refs(pretrained_weights(model)) == refs(embedding.weights)
    assert refs(pretrained_weights(model)).isdisjoint(refs(model.trainable_weights))
    assert model.get_layer("token_projection").kernel.shape == (PRETRAINED_WIDTH, TINY["embedding_dim"])
    assert model.get_layer("position_embedding").sequence_length == TINY["sequence_length"]
    assert not [layer for layer in model.layers if isinstance(layer, TokenAndPositionEmbedding)]


def test_trainable_pretrained_table_is_raw_and_followed_by_the_layer_norm(vectorizer):
    model, tables = pretrained_classifier(vectorizer, freeze_pretrained_embeddings=False)
    np.testing.assert_array_equal(model.get_layer("pretrained_token_embedding").embeddings, tables["word_embeddings"])
    layer_norm = model.get_layer("pretrained_layer_norm")
    assert isinstance(layer_norm, tf_keras.layers.LayerNormalization) and layer_norm.epsilon == 1e-12
    np.testing.assert_array_equal(layer_norm.gamma, tables["layer_norm_gamma"])
    np.testing.assert_array_equal(layer_norm.beta, tables["layer_norm_beta"])
    assert len(pretrained_weights(model)) == 3
    assert refs(pretrained_weights(model)) <= refs(model.trainable_weights)


def test_missing_layer_norm_weights_default_to_the_identity(vectorizer):
    tables = {"word_embeddings": pretrained_tables(vectorizer.vocabulary_size())["word_embeddings"]}
    model = tiny_classifier(vectorizer, pretrained_embeddings=tables)
    expected = layer_normalized(tables["word_embeddings"], 1.0, 0.0)
    np.testing.assert_allclose(model.get_layer("pretrained_token_embedding").embeddings, expected, atol=1e-5)


@pytest.mark.parametrize("freeze", [True, False], ids=["frozen", "trainable"])
def test_pooled_pretrained_vectors_are_the_masked_mean_of_normalized_table_rows(vectorizer, freeze):
    model, tables = pretrained_classifier(vectorizer, freeze_pretrained_embeddings=freeze)
    pooled = tf_keras.Model(model.input, model.get_layer("pretrained_pooling").output)
    texts = tf.constant(["stocks fell", "coach praises the team after the match and the cup"])
    ids = vectorizer(texts).numpy()[:, :TINY["sequence_length"]]
    normalized = layer_normalized(tables["word_embeddings"][ids], tables["layer_norm_gamma"],
                                  tables["layer_norm_beta"])
    real = (ids != 0)[..., None]
    np.testing.assert_allclose(pooled(texts), (normalized * real).sum(1) / real.sum(1), atol=1e-5)


@pytest.mark.parametrize("learn", [False, True], ids=["position_embedding", "learned_token_embedding"])
def test_embedding_dropout_follows_the_sum_of_projected_and_position_vectors(vectorizer, learn):
    model, _ = pretrained_classifier(vectorizer, learn_token_embeddings=learn)
    added = model.get_layer("token_and_position_embedding" if learn else "position_embedding")
    dropout = model.get_layer("embedding_dropout")
    assert isinstance(dropout, tf_keras.layers.Dropout) and dropout.rate == 0.2
    assert "pretrained_dropout" not in [layer.name for layer in model.layers]
    parts = tf_keras.Model(model.input, [model.get_layer("token_projection").output, added.output, dropout.input])
    projected, positions, summed = (part.numpy() for part in parts(tf.constant(TEXTS[:3])))
    assert summed.shape[-1] == TINY["embedding_dim"]
    np.testing.assert_allclose(summed, projected + positions, atol=1e-6)


def test_learned_token_embeddings_add_a_trainable_table_of_embedding_dim_width(vectorizer):
    model, _ = pretrained_classifier(vectorizer, learn_token_embeddings=True)
    learned = model.get_layer("token_and_position_embedding")
    assert isinstance(learned, TokenAndPositionEmbedding)
    assert learned.token_embedding.embeddings.shape == (vectorizer.vocabulary_size(), TINY["embedding_dim"])
    assert learned.position_embedding.embeddings.shape == (TINY["sequence_length"], TINY["embedding_dim"])
    assert refs(learned.weights) <= refs(model.trainable_weights)
    assert "position_embedding" not in [layer.name for layer in model.layers]
    without = pretrained_classifier(vectorizer)[0]
    extra = vectorizer.vocabulary_size() * TINY["embedding_dim"]  # The positions replace the PositionEmbedding's.
    assert model.count_params() == without.count_params() + extra


@pytest.mark.parametrize("options", [
    dict(freeze_pretrained_embeddings=True),
    pytest.param(dict(freeze_pretrained_embeddings=False), marks=pytest.mark.large),  # Option variants.
    pytest.param(dict(freeze_pretrained_embeddings=True, learn_token_embeddings=True), marks=pytest.mark.large),
], ids=["frozen", "trainable", "frozen_with_learned_tokens"])
def test_frozen_pretrained_tables_stay_fixed_while_the_rest_trains(vectorizer, options):
    freeze = options["freeze_pretrained_embeddings"]
    model, _ = pretrained_classifier(vectorizer, dropout=0.0, **options)
    pretrained = refs(pretrained_weights(model))
    assert len(pretrained) == (1 if freeze else 3)
    assert pretrained.isdisjoint(refs(model.trainable_weights)) == freeze
    weights = model.trainable_weights + (pretrained_weights(model) if freeze else [])
    before = [weight.numpy() for weight in weights]
    model.compile(optimizer=tf_keras.optimizers.Adam(0.01),
                  loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    for _ in range(3):
        model.train_on_batch(tf.constant(TEXTS), np.array(LABELS))
    for weight, old in zip(weights, before):
        is_fixed = weight.ref() in pretrained and freeze
        assert np.array_equal(weight.numpy(), old) == is_fixed, weight.name


@pytest.mark.parametrize("pool", [True, False], ids=["pooled", "not_pooled"])
def test_pooling_pretrained_vectors_widens_the_classifier_input(vectorizer, pool):
    model, _ = pretrained_classifier(vectorizer, pool_pretrained_embeddings=pool)
    width = TINY["embedding_dim"] + (PRETRAINED_WIDTH if pool else 0)
    assert model.get_layer("logits").kernel.shape == (width, TINY["num_classes"])
    assert any(isinstance(layer, tf_keras.layers.Concatenate) for layer in model.layers) == pool
    assert any(layer.name == "pretrained_pooling" for layer in model.layers) == pool
    assert model(tf.constant(TEXTS[:2])).shape == (2, TINY["num_classes"])


@pytest.mark.parametrize("options", [
    dict(),
    dict(freeze_pretrained_embeddings=False),
    dict(learn_token_embeddings=True),
], ids=["frozen", "trainable", "learned_tokens"])
def test_pretrained_logits_do_not_change_when_the_batch_is_padded_longer(vectorizer, options):
    model, _ = pretrained_classifier(vectorizer, **options)
    alone = model(tf.constant(["stocks fell"]), training=False).numpy()
    batch = tf.constant(["stocks fell", "coach praises the team after the match"])
    assert np.abs(model(batch, training=False).numpy()[:1] - alone).max() <= 1e-5


@pytest.mark.parametrize(
    "change, message",
    [
        ({"word_embeddings": np.zeros((30, PRETRAINED_WIDTH))},
         r"pretrained word_embeddings of shape \(30, 12\) do not fit a vocabulary of 29 tokens"),
        ({"word_embeddings": np.zeros(29)}, r"pretrained word_embeddings of shape \(29,\) do not fit"),
        ({"layer_norm_gamma": np.ones(PRETRAINED_WIDTH + 1)},
         r"pretrained layer_norm_gamma/beta of shapes \(13,\)/\(12,\) do not fit vectors of width 12"),
        ({"layer_norm_beta": np.zeros((1, PRETRAINED_WIDTH))},
         r"pretrained layer_norm_gamma/beta of shapes \(12,\)/\(1, 12\) do not fit vectors of width 12"),
    ],
    ids=["too_many_rows", "not_a_matrix", "wrong_gamma_width", "beta_not_a_vector"],
)
@pytest.mark.parametrize("freeze", [True, False], ids=["frozen", "trainable"])
def test_pretrained_tables_of_the_wrong_shape_are_rejected(vectorizer, change, message, freeze):
    assert vectorizer.vocabulary_size() == 29
    tables = {**pretrained_tables(vectorizer.vocabulary_size()), **change}
    with pytest.raises(ValueError, match=message):
        build_transformer_classifier(vectorizer, pretrained_embeddings=tables,
                                     freeze_pretrained_embeddings=freeze, **TINY)


@pytest.mark.parametrize("save_format, options", [
    ("keras", dict()),
    ("tf", dict()),
    ("keras", dict(freeze_pretrained_embeddings=False, learn_token_embeddings=True)),
    pytest.param("tf", dict(pretrained_components=5, learn_token_embeddings=True), marks=pytest.mark.large),
], ids=["keras", "tf", "keras_trainable_with_learned_tokens", "tf_principal_components"])
def test_pretrained_model_saves_and_reloads_with_identical_outputs(vectorizer, tmp_path, save_format, options):
    model, _ = pretrained_classifier(vectorizer, **options)
    path = str(tmp_path / ("classifier.keras" if save_format == "keras" else "classifier"))
    model.save(path, save_format=save_format)
    reloaded = tf_keras.models.load_model(path)
    texts = tf.constant(TEXTS + ["unknown words only", ""])
    np.testing.assert_array_equal(reloaded(texts), model(texts))
    assert [(type(layer), layer.name) for layer in reloaded.layers] == [
        (type(layer), layer.name) for layer in model.layers]
    for original, loaded in zip(pretrained_weights(model), pretrained_weights(reloaded)):
        np.testing.assert_array_equal(loaded, original)
    assert len(reloaded.trainable_weights) == len(model.trainable_weights)
    frozen = options.get("freeze_pretrained_embeddings", True)
    assert refs(pretrained_weights(reloaded)).isdisjoint(refs(reloaded.trainable_weights)) == frozen


# Principal components of the frozen pretrained vectors.

def test_principal_components_are_centered_uncorrelated_ordered_and_unit_variance():
    rng = np.random.default_rng(1)
    mixing = np.linalg.qr(rng.normal(size=(6, 6)))[0]  # The components hide in a rotated basis.
    vectors = (rng.normal(size=(2000, 6)) * np.array([6.0, 4, 3, 1, 0.5, 0.1])) @ mixing.T + 3.0
    reduced = transformer_classifier.principal_components(vectors, 3)
    assert reduced.shape == (2000, 3) and reduced.dtype == np.float32
    np.testing.assert_allclose(reduced.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(reduced.std(), 1, rtol=1e-5)
    covariance = np.cov(reduced, rowvar=False)
    np.testing.assert_allclose(covariance - np.diag(np.diag(covariance)), 0, atol=1e-4)
    variances = reduced.var(axis=0)
    assert variances[0] > variances[1] > variances[2]
    # The directions found are the hidden ones: the top 3 explain what the top 3 scales put there.
    full = transformer_classifier.principal_components(vectors, 6).astype(np.float64)
    np.testing.assert_allclose(np.abs(reduced / reduced.std()), np.abs(full[:, :3] / full[:, :3].std()), rtol=1e-3,
                               atol=1e-3)
    explained = full.var(axis=0)[:3].sum() / full.var(axis=0).sum()
    assert explained == pytest.approx((36 + 16 + 9) / (36 + 16 + 9 + 1 + 0.25 + 0.01), rel=0.05)


def test_principal_components_do_not_depend_on_row_order_and_reject_bad_counts():
    vectors = np.random.default_rng(2).normal(size=(300, 5)) * np.arange(5, 0, -1)
    order = np.random.default_rng(3).permutation(300)
    np.testing.assert_allclose(transformer_classifier.principal_components(vectors[order], 2),
                               transformer_classifier.principal_components(vectors, 2)[order], atol=1e-5)
    for components in (0, 6):
        with pytest.raises(ValueError, match=r"`components` must lie in \[1, 5\]"):
            transformer_classifier.principal_components(vectors, components)


def test_frozen_pretrained_table_keeps_the_principal_components_of_the_normalized_vectors(vectorizer):
    model, tables = pretrained_classifier(vectorizer, pretrained_components=5)
    normalized = layer_normalized(tables["word_embeddings"], tables["layer_norm_gamma"], tables["layer_norm_beta"])
    table = model.get_layer("pretrained_token_embedding").embeddings
    assert table.shape == (vectorizer.vocabulary_size(), 5)
    assert table.ref() not in refs(model.trainable_weights)
    np.testing.assert_allclose(table, transformer_classifier.principal_components(normalized, 5), atol=1e-4)
    assert model.get_layer("token_projection").kernel.shape == (5, TINY["embedding_dim"])
    pooled, _ = pretrained_classifier(vectorizer, pretrained_components=5, pool_pretrained_embeddings=True)
    assert pooled.get_layer("pretrained_pooling").output_shape == (None, 5)


@pytest.mark.parametrize("options, message", [
    (dict(pretrained_components=PRETRAINED_WIDTH + 1), r"`pretrained_components` \(13\) exceeds the width of the "
                                                       r"pretrained vectors \(12\)"),
    (dict(pretrained_components=4, freeze_pretrained_embeddings=False),
     r"`pretrained_components` needs frozen pretrained embeddings"),
    (dict(pretrained_components=0), r"pretrained_components"),
], ids=["wider_than_the_vectors", "trainable_table", "zero"])
def test_bad_pretrained_components_are_rejected(vectorizer, options, message):
    with pytest.raises(ValueError, match=message):
        pretrained_classifier(vectorizer, **options)


@pytest.mark.large  # An option variant (--pretrained-components).
def test_principal_components_model_trains_and_keeps_its_table_fixed(vectorizer):
    model, _ = pretrained_classifier(vectorizer, pretrained_components=4, learn_token_embeddings=True)
    table = model.get_layer("pretrained_token_embedding").embeddings.numpy()
    model.compile(optimizer=tf_keras.optimizers.Adam(0.05),
                  loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = model.fit(tf.constant(TEXTS), tf.constant(LABELS), epochs=30, verbose=0).history
    assert history["accuracy"][-1] == 1.0
    np.testing.assert_array_equal(model.get_layer("pretrained_token_embedding").embeddings, table)


# The bag of hashed n-grams.

@pytest.mark.parametrize("pretrained", [False, True], ids=["from_scratch", "pretrained"])
def test_ngram_bag_is_concatenated_to_the_pooled_output(vectorizer, pretrained):
    tables = pretrained_tables(vectorizer.vocabulary_size()) if pretrained else None
    model = tiny_classifier(vectorizer, pretrained_embeddings=tables, ngram_buckets=50, ngram_orders=(2, 3),
                            ngram_dim=5)
    bag = model.get_layer("ngram_bag")
    assert isinstance(bag, HashedNgramBag)
    assert (bag.num_buckets, bag.output_dim, bag.ngram_orders) == (50, 5, (2, 3))
    width = TINY["embedding_dim"] + (PRETRAINED_WIDTH if pretrained else 0) + 5
    assert model.get_layer("logits").kernel.shape == (width, TINY["num_classes"])
    assert bag.embedding.embeddings in model.trainable_weights
    # Without it (the default), no bag.
    assert "ngram_bag" not in {layer.name for layer in tiny_classifier(vectorizer).layers}


def test_ngram_bag_width_defaults_to_embedding_dim_and_its_input_is_the_cut_ids(vectorizer):
    model = tiny_classifier(vectorizer, ngram_buckets=50)
    assert model.get_layer("ngram_bag").output_dim == TINY["embedding_dim"]
    long_text = " ".join(TEXTS)  # more than sequence_length (8) tokens
    bag = model.get_layer("ngram_bag")
    ids = vectorizer(tf.constant([long_text]))[:, :TINY["sequence_length"]]
    features = tf_keras.Model(model.input, bag.output)
    np.testing.assert_allclose(features(tf.constant([long_text])), bag(ids), rtol=1e-6)


def test_ngram_bag_logits_do_not_change_when_the_batch_is_padded_longer(vectorizer):
    model = tiny_classifier(vectorizer, ngram_buckets=50, ngram_orders=(1, 2))
    alone = model(tf.constant(["stocks fell"]), training=False).numpy()
    batch = tf.constant(["stocks fell", "coach praises the team after the match"])
    assert np.abs(model(batch, training=False).numpy()[:1] - alone).max() <= 1e-5


@pytest.mark.parametrize("save_format", ["keras", pytest.param("tf", marks=pytest.mark.large)])  # SavedModel: large.
def test_ngram_bag_model_saves_and_reloads_with_identical_outputs(vectorizer, tmp_path, save_format):
    model = tiny_classifier(vectorizer, ngram_buckets=50)
    path = str(tmp_path / ("classifier.keras" if save_format == "keras" else "classifier"))
    model.save(path, save_format=save_format)
    reloaded = tf_keras.models.load_model(path)
    texts = tf.constant(TEXTS + ["unknown words only", ""])
    np.testing.assert_array_equal(reloaded(texts), model(texts))
    np.testing.assert_array_equal(reloaded.get_layer("ngram_bag").embedding.embeddings,
                                  model.get_layer("ngram_bag").embedding.embeddings)
