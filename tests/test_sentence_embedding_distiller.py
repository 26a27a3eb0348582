"""Tests of `tfnlp.models.SentenceEmbeddingDistiller` and of the teacher embeddings (`tfnlp.training.distillation`)."""

import json
import os

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from helpers import run_fresh_python
from tfnlp import pretrained
from tfnlp.models import SentenceEmbeddingDistiller
from tfnlp.training import distillation

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEACHER_DIM = 5


def build_classifier(seed=0):
    """A tiny functional classifier: inputs [batch, 3] -> "features" [batch, 6] -> logits [batch, 2]."""
    tf_keras.utils.set_random_seed(seed)
    inputs = tf_keras.Input(shape=(3,), name="inputs")
    features = tf_keras.layers.Dense(6, activation="tanh", name="features")(inputs)
    logits = tf_keras.layers.Dense(2, name="logits")(features)
    return tf_keras.Model(inputs, logits, name="classifier")


def build_distiller(weight=2.0, seed=0):
    distiller = SentenceEmbeddingDistiller(build_classifier(seed), "features", TEACHER_DIM, weight, name="distiller")
    distiller.compile(tf_keras.optimizers.SGD(0.1), tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=[tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return distiller


def toy_data(count=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, 3)).astype(np.float32)
    labels = (x[:, 0] > 0).astype(np.int32)
    teacher = rng.normal(size=(count, TEACHER_DIM)).astype(np.float32)
    teacher /= np.linalg.norm(teacher, axis=-1, keepdims=True)
    return x, labels, teacher


def weights_of(model):
    return [w.numpy().copy() for w in model.weights]


def test_call_evaluate_and_predict_are_the_classifier_alone():
    distiller = build_distiller()
    x, labels, _ = toy_data()
    np.testing.assert_array_equal(distiller(x).numpy(), distiller.classifier(x).numpy())
    np.testing.assert_array_equal(distiller.predict(x, verbose=0), distiller.classifier.predict(x, verbose=0))
    logs = distiller.evaluate(x, labels, return_dict=True, verbose=0)
    assert sorted(logs) == ["accuracy", "loss"]  # No distillation figure outside training.


def test_one_step_follows_the_gradient_of_the_classification_plus_weighted_cosine_loss():
    weight = 2.0
    distiller = build_distiller(weight)
    x, labels, teacher = toy_data()
    variables = distiller.trainable_variables
    assert any("distillation_head" in v.name for v in variables)
    with tf.GradientTape() as tape:
        features = distiller.classifier.get_layer("features")(x)
        logits = distiller.classifier.get_layer("logits")(features)
        crossentropy = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        predicted = tf.math.l2_normalize(distiller.distillation_head(features), axis=-1)
        cosine = tf.reduce_sum(predicted * teacher, axis=-1)
        loss = crossentropy + weight * tf.reduce_mean(1.0 - cosine)
    expected = [v.numpy() - 0.1 * g.numpy() for v, g in zip(variables, tape.gradient(loss, variables))]

    logs = distiller.train_on_batch(x, (labels, teacher), return_dict=True)
    for variable, value in zip(variables, expected):
        np.testing.assert_allclose(variable.numpy(), value, atol=1e-6, err_msg=variable.name)
    assert logs["loss"] == pytest.approx(float(crossentropy), abs=1e-5)  # `loss` is the classification loss.
    assert logs["distillation_loss"] == pytest.approx(float(tf.reduce_mean(1.0 - cosine)), abs=1e-5)


def test_weight_zero_trains_the_classifier_exactly_as_without_a_teacher():
    x, labels, teacher = toy_data()
    distiller = build_distiller(weight=0.0)
    plain = build_classifier(seed=0)
    plain.compile(tf_keras.optimizers.SGD(0.1), tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = tf.data.Dataset.from_tensor_slices((x, (labels, teacher))).batch(4)
    distiller.fit(data, epochs=2, verbose=0)
    plain.fit(data.map(lambda inputs, targets: (inputs, targets[0])), epochs=2, verbose=0)
    for trained, reference in zip(distiller.classifier.weights, plain.weights):
        np.testing.assert_allclose(trained.numpy(), reference.numpy(), atol=1e-6)


def test_training_brings_the_head_towards_the_teacher_and_batches_without_teacher_are_plain():
    distiller = build_distiller(weight=1.0)
    x, labels, teacher = toy_data(64)
    data = tf.data.Dataset.from_tensor_slices((x, (labels, teacher))).batch(16)
    history = distiller.fit(data, validation_data=(x, labels), epochs=40, verbose=0).history
    assert sorted(history) == ["accuracy", "distillation_loss", "loss", "val_accuracy", "val_loss"]
    assert history["distillation_loss"][-1] < 0.7 * history["distillation_loss"][0]
    assert history["loss"][-1] < history["loss"][0]

    before = weights_of(distiller.distillation_head)
    logs = distiller.train_on_batch(x, labels, return_dict=True)  # (inputs, label): the classifier's own step.
    assert "loss" in logs
    for value, old in zip(weights_of(distiller.distillation_head), before):
        np.testing.assert_array_equal(value, old)


def test_config_round_trip_and_weights_reload(tmp_path):
    distiller = build_distiller(weight=3.0)
    x, labels, teacher = toy_data()
    distiller.train_on_batch(x, (labels, teacher))
    config = distiller.get_config()
    assert {name: config[name] for name in ("feature_layer", "teacher_dim", "distillation_weight")} == {
        "feature_layer": "features", "teacher_dim": TEACHER_DIM, "distillation_weight": 3.0}
    restored = SentenceEmbeddingDistiller.from_config(json.loads(json.dumps(config)))
    assert restored.get_config() == config
    assert tf_keras.utils.get_registered_object("tfnlp>SentenceEmbeddingDistiller") is SentenceEmbeddingDistiller

    distiller.save_weights(str(tmp_path / "ckpt"))
    restored.load_weights(str(tmp_path / "ckpt")).assert_existing_objects_matched()
    np.testing.assert_array_equal(restored(x).numpy(), distiller(x).numpy())
    features = distiller.classifier.get_layer("features")(x)
    np.testing.assert_array_equal(restored.distillation_head(features).numpy(),
                                  distiller.distillation_head(features).numpy())


def test_mixed_precision_keeps_the_distillation_in_float32():
    tf_keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        distiller = build_distiller()
        distiller.compile(tf_keras.mixed_precision.LossScaleOptimizer(tf_keras.optimizers.SGD(0.1)),
                          tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        x, labels, teacher = toy_data()
        assert distiller.classifier.get_layer("features").compute_dtype == "float16"
        assert distiller.distillation_head.compute_dtype == "float32"
        logs = distiller.train_on_batch(x, (labels, teacher), return_dict=True)
        assert np.isfinite(logs["loss"]) and np.isfinite(logs["distillation_loss"])
    finally:
        tf_keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("make, message", [
    (lambda: SentenceEmbeddingDistiller(build_classifier(), "nope", 4),
     "`feature_layer` 'nope' is not a layer of 'classifier' (layers: inputs, features, logits)"),
    (lambda: SentenceEmbeddingDistiller(build_classifier(), "features", 0), "`teacher_dim` must be a positive"),
    (lambda: SentenceEmbeddingDistiller(build_classifier(), "features", 4, -1.0),
     "`distillation_weight` must be a number >= 0"),
    (lambda: SentenceEmbeddingDistiller(tf_keras.Sequential([tf_keras.layers.Dense(2)]), "features", 4),
     "`classifier` must be a functional tf_keras.Model"),
])
def test_invalid_arguments_raise_clear_errors(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()


def test_feature_layer_must_output_one_vector_per_text():
    inputs = tf_keras.Input(shape=(4, 3))
    sequence = tf_keras.layers.Dense(6, name="sequence")(inputs)
    classifier = tf_keras.Model(inputs, tf_keras.layers.Dense(2)(tf_keras.layers.Flatten()(sequence)))
    with pytest.raises(ValueError, match="must output one \\[batch, width\\] Tensor"):
        SentenceEmbeddingDistiller(classifier, "sequence", 4)


@pytest.mark.large  # The mirrored strategy in a fresh process, as the other distribution tests.
def test_mirrored_step_on_two_logical_cpus_equals_the_single_device_step(tmp_path):
    """The distillation term is averaged over the global batch: two replicas make the same update as one device."""
    out = run_fresh_python("""
        import json, sys
        import tfnlp
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from test_sentence_embedding_distiller import build_distiller, toy_data

        x, labels, teacher = toy_data(16)
        data = tf.data.Dataset.from_tensor_slices((x, (labels, teacher))).batch(8)
        results = {}
        for name, strategy in (("one", tf.distribute.OneDeviceStrategy("/cpu:0")),
                               ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
            with strategy.scope():
                distiller = build_distiller(weight=2.0)
            history = distiller.fit(data, epochs=2, verbose=0).history
            results[name] = {"weights": [w.numpy().tolist() for w in distiller.weights],
                             "distillation_loss": history["distillation_loss"],
                             "replicas": strategy.num_replicas_in_sync}
        print(json.dumps(results))
    """, cwd=tmp_path, env={"PYTHONPATH": os.pathsep.join([REPO, os.path.join(REPO, "tests")])})
    results = json.loads(out.strip().splitlines()[-1])
    assert (results["one"]["replicas"], results["mirrored"]["replicas"]) == (1, 2)
    for one, mirrored in zip(results["one"]["weights"], results["mirrored"]["weights"]):
        np.testing.assert_allclose(mirrored, one, atol=1e-5)
    np.testing.assert_allclose(results["mirrored"]["distillation_loss"], results["one"]["distillation_loss"],
                               atol=1e-5)


# The teacher's sentence embeddings.

TEXTS = ["the cup final", "stocks fell sharply on wall street today after the report", "a", "",
         "chip makers rallied", "Ünïcödé naïve café 東京"]


def reference_embeddings(folder, texts):
    """Every text in one batch padded to the longest, in the given order: mean over real tokens, unit length."""
    from tfnlp.text import BertTokenizer

    features = BertTokenizer.from_pretrained(folder, sequence_length=128)(tf.constant(texts))
    hidden = pretrained.load_bert_model(folder, add_pooling_layer=False)(
        input_ids=features["input_ids"], attention_mask=features["attention_mask"]).last_hidden_state.numpy()
    mask = features["attention_mask"].numpy()[:, :, None]
    mean = (hidden * mask).sum(axis=1) / mask.sum(axis=1)
    return mean / np.linalg.norm(mean, axis=-1, keepdims=True)


def test_sentence_embeddings_are_mean_pooled_unit_vectors_in_text_order(tiny_bert_dir):
    # The reference first: the weights are then converted already, as for the packaged MiniLM after its first
    # use. (A BERT built inside the tf.function that runs it gave wrong vectors in that case, without an error.)
    reference = reference_embeddings(tiny_bert_dir, TEXTS)
    embeddings, seconds = distillation.sentence_embeddings(TEXTS, tiny_bert_dir, batch_size=2)
    assert embeddings.shape == (len(TEXTS), 32) and embeddings.dtype == np.float32 and seconds > 0
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=-1), 1.0, atol=1e-5)
    # Encoded in batches of two by length; the rows come back in the order of TEXTS.
    np.testing.assert_allclose(embeddings, reference, atol=1e-5)
    bytes_embeddings, _ = distillation.sentence_embeddings([t.encode("utf-8") for t in TEXTS], tiny_bert_dir)
    np.testing.assert_allclose(bytes_embeddings, embeddings, atol=1e-5)


def test_sentence_embeddings_of_texts_tokenized_in_different_chunks_batch_together(tiny_bert_dir):
    # Texts are tokenized 1,024 at a time; here the first chunk holds only one-word texts and the second
    # longer ones, and one batch of 1,030 mixes them.
    texts = ["cup"] * 1024 + ["the cup final"] * 6
    embeddings, _ = distillation.sentence_embeddings(texts, tiny_bert_dir, batch_size=len(texts))
    expected = reference_embeddings(tiny_bert_dir, ["cup", "the cup final"])
    np.testing.assert_allclose(embeddings[:1024], np.repeat(expected[:1], 1024, axis=0), atol=1e-5)
    np.testing.assert_allclose(embeddings[1024:], np.repeat(expected[1:], 6, axis=0), atol=1e-5)


def test_sentence_embeddings_are_cached_and_recomputed_for_other_texts(tiny_bert_dir, tmp_path, monkeypatch):
    path = str(tmp_path / "teacher" / "train.npz")
    first, seconds = distillation.sentence_embeddings(TEXTS, tiny_bert_dir, cache_path=path)
    assert seconds > 0 and os.path.isfile(path)

    def no_bert(*args, **kwargs):
        raise AssertionError("the BERT was loaded although the cache holds the vectors")

    monkeypatch.setattr(pretrained, "load_bert_model", no_bert)
    again, seconds = distillation.sentence_embeddings(TEXTS, tiny_bert_dir, cache_path=path)
    assert seconds == 0.0
    np.testing.assert_array_equal(again, first)
    with pytest.raises(AssertionError, match="the BERT was loaded"):  # Other texts: the cache does not apply.
        distillation.sentence_embeddings(TEXTS[:-1], tiny_bert_dir, cache_path=path)
    with pytest.raises(AssertionError, match="the BERT was loaded"):  # Other length: neither.
        distillation.sentence_embeddings(TEXTS, tiny_bert_dir, cache_path=path, sequence_length=16)


def test_sentence_embeddings_reject_bad_arguments(tiny_bert_dir):
    with pytest.raises(ValueError, match="at least one text"):
        distillation.sentence_embeddings([], tiny_bert_dir)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        distillation.sentence_embeddings(TEXTS, tiny_bert_dir, batch_size=0)
