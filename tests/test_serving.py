"""Tests of tfnlp.serving: the text-classifier serving module and the versioned, atomic SavedModel export.

The exports of the AG News pipeline itself (reloaded in a fresh process, shown by
``saved_model_cli``) are tested in test_agnews_transformer_pipeline.py.
"""

import os

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfnlp.models import build_text_vectorizer, build_transformer_classifier
from tfnlp.serving import TextClassifierModule, export_saved_model, next_version, reload_smoke_check
from tfnlp.text import BertTokenizer

CLASS_NAMES = ["World", "Sports", "Business", "Sci/Tech"]
TRAIN_TEXTS = ["the minister won the election", "the team won the cup final", "stocks fell as markets slumped",
               "a new chip for faster phones"]
TINY = dict(num_classes=4, sequence_length=16, embedding_dim=8, num_heads=2, intermediate_dim=8)
# Inputs a server must survive: valid probabilities, never a crash.
BAD_TEXTS = [
    b"",
    b"   \t\n  ",
    b"x" * 100_000,                                   # One 100,000-character word.
    (b"stocks fell " * 10_000)[:100_000],             # 100,000 characters of many words.
    "Учёные представили новый процессор.".encode(),   # Cyrillic.
    "東京株式市場で日経平均株価が上昇した。".encode(),     # CJK.
    "مرحبا بالعالم 😀 café naïve e\u0301 \u200b".encode(),  # Arabic, emoji, accents, combining mark, ZWSP.
    b"\xff\xfe broken \xc3 utf-8",                   # Not valid UTF-8.
]


def text_vectorization_classifier():
    tf_keras.utils.set_random_seed(1)
    return build_transformer_classifier(build_text_vectorizer(TRAIN_TEXTS, vocabulary_size=30), **TINY)


def wordpiece_classifier():
    tf_keras.utils.set_random_seed(1)
    tokenizer = BertTokenizer.from_pretrained(sequence_length=TINY["sequence_length"], name="tokenizer")
    return build_transformer_classifier(tokenizer, vocabulary_size=tokenizer.vocabulary_size, **TINY)


@pytest.fixture(scope="module")
def classifiers():
    return {"text_vectorization": text_vectorization_classifier(), "wordpiece": wordpiece_classifier()}


@pytest.fixture(scope="module")
def module(classifiers):
    return TextClassifierModule(classifiers["text_vectorization"], CLASS_NAMES)


@pytest.fixture(scope="module")
def exported(module, tmp_path_factory):
    """The text-vectorization module exported once: (base folder, version folder)."""
    base = str(tmp_path_factory.mktemp("export") / "classifier")
    return base, export_saved_model(module, base, module.signatures())


def check_probabilities(probabilities, rows):
    probabilities = np.asarray(probabilities)
    assert probabilities.shape == (rows, len(CLASS_NAMES)) and probabilities.dtype == np.float32
    assert np.isfinite(probabilities).all() and (probabilities >= 0).all()
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)


# Versions and atomic export.

def test_next_version_counts_only_integer_folders(tmp_path):
    assert next_version(str(tmp_path / "missing")) == 1
    assert next_version(str(tmp_path)) == 1
    for name in ("1", "3", ".4.abc.tmp", "latest", "10x"):
        os.mkdir(tmp_path / name)
    (tmp_path / "9").write_text("a file, not a version")
    assert next_version(str(tmp_path)) == 4


@pytest.mark.large  # Three exports; make test's runs export versions 1 (test_agnews_*).
def test_export_writes_the_next_free_version_in_tf_serving_layout(exported, module):
    base, path = exported
    assert path == os.path.join(base, "1")
    assert {"saved_model.pb", "variables", "assets"} <= set(os.listdir(path))
    assert sorted(os.listdir(base)) == ["1"]  # No temporary folder left behind.
    assert export_saved_model(module, base, module.signatures()) == os.path.join(base, "2")
    assert export_saved_model(module, base, module.signatures(), version=7) == os.path.join(base, "7")
    assert next_version(base) == 8
    with pytest.raises(FileExistsError):
        export_saved_model(module, base, module.signatures(), version=2)
    with pytest.raises(ValueError, match="serving_default"):
        export_saved_model(module, base, {"predict": module.serving_default.get_concrete_function()})
    assert sorted(os.listdir(base)) == ["1", "2", "7"]


def test_a_crash_during_export_leaves_no_version_folder(tmp_path, module, monkeypatch):
    base = str(tmp_path / "classifier")
    export_saved_model(module, base, module.signatures())

    def save_then_crash(obj, export_dir, signatures=None, options=None):
        with open(os.path.join(export_dir, "saved_model.pb"), "wb") as f:
            f.write(b"half a model")
        raise OSError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", save_then_crash)
    with pytest.raises(OSError, match="disk full"):
        export_saved_model(module, base, module.signatures())
    assert os.listdir(base) == ["1"]  # Neither "2" nor a half-written temporary folder.
    assert next_version(base) == 2


# The serving signature.

def test_signature_takes_text_and_returns_probabilities_label_id_and_label(exported):
    signature = tf.saved_model.load(exported[1]).signatures["serving_default"]
    assert signature.structured_input_signature == ((), {"text": tf.TensorSpec([None], tf.string, name="text")})
    outputs = signature.structured_outputs
    assert set(outputs) == {"probabilities", "label_id", "label"}
    assert (outputs["probabilities"].dtype, outputs["probabilities"].shape.as_list()) == (tf.float32, [None, 4])
    assert (outputs["label_id"].dtype, outputs["label_id"].shape.as_list()) == (tf.int64, [None])
    assert (outputs["label"].dtype, outputs["label"].shape.as_list()) == (tf.string, [None])


def test_reloaded_signature_predicts_as_the_keras_model(exported, classifiers):
    texts = ["the team won the final", "stocks fell", "a new chip"]
    outputs = tf.saved_model.load(exported[1]).signatures["serving_default"](text=tf.constant(texts))
    logits = classifiers["text_vectorization"](tf.constant(texts), training=False)
    np.testing.assert_allclose(outputs["probabilities"].numpy(), tf.nn.softmax(logits).numpy(), atol=1e-6)
    label_ids = outputs["label_id"].numpy()
    assert label_ids.tolist() == logits.numpy().argmax(axis=-1).tolist()
    assert [label.decode() for label in outputs["label"].numpy()] == [CLASS_NAMES[i] for i in label_ids]


def test_module_passes_probabilities_through_when_the_model_outputs_them():
    text = tf_keras.Input(shape=(), dtype=tf.string, name="text")
    length = tf_keras.layers.Lambda(lambda t: tf.cast(tf.strings.length(t), tf.float32)[:, None])(text)
    probabilities = tf_keras.layers.Lambda(lambda n: tf.concat([1 / (1 + n), n / (1 + n)], axis=-1))(length)
    module = TextClassifierModule(tf_keras.Model(text, probabilities), ["short", "long"], outputs_logits=False)
    outputs = module.serving_default(tf.constant(["", "abc"]))
    np.testing.assert_allclose(outputs["probabilities"].numpy(), [[1.0, 0.0], [0.25, 0.75]])
    assert outputs["label"].numpy().tolist() == [b"short", b"long"]


def test_module_outputs_truncated_when_the_model_reports_it_and_ids_are_never_cut(tiny_vocab_file):
    tokenizer = BertTokenizer(tiny_vocab_file, sequence_length=5, return_num_truncated_tokens=True)
    text = tf_keras.Input(shape=(), dtype=tf.string, name="text")
    features = tokenizer(text)
    classify = tf_keras.Sequential([tf_keras.layers.Embedding(40, 4), tf_keras.layers.GlobalAveragePooling1D(),
                                    tf_keras.layers.Dense(len(CLASS_NAMES))])
    model = tf_keras.Model(text, {"logits": classify(features["input_ids"]),
                                  "truncated": features["num_truncated_tokens"] > 0})
    ids = {key: tf_keras.Input(shape=(None,), dtype=tf.int32, name=key)
           for key in ("input_ids", "attention_mask", "token_type_ids")}
    ids_model = tf_keras.Model(ids, classify(ids["input_ids"] * ids["attention_mask"] + ids["token_type_ids"]))
    module = TextClassifierModule(model, CLASS_NAMES, ids_model=ids_model, vocab_size=40)
    outputs = module.serving_default(tf.constant(["the cat sat on the mat", "the cat sat", ""]))
    assert outputs["truncated"].dtype == tf.bool
    assert outputs["truncated"].numpy().tolist() == [True, False, False]  # 6 pieces, 3, 0; 3 fit.
    check_probabilities(outputs["probabilities"], 3)
    by_ids = module.serving_ids(tf.constant([[3, 6, 4], [3, 8, 4]]), tf.ones([2, 3], tf.int32), tf.zeros([2, 3], tf.int32))
    assert by_ids["truncated"].numpy().tolist() == [False, False]
    plain = TextClassifierModule(length_model(), ["short", "long"])  # No report: no output.
    assert "truncated" not in plain.serving_default(tf.constant(["a"]))
    with pytest.raises(ValueError, match="'logits' and 'truncated'"):
        TextClassifierModule(tf_keras.Model(text, {"logits": classify(features["input_ids"]),
                                                   "cut": features["num_truncated_tokens"]}), CLASS_NAMES)


def length_model():
    """Text length -> two logits: a model that says nothing about truncation."""
    text = tf_keras.Input(shape=(), dtype=tf.string, name="text")
    length = tf_keras.layers.Lambda(lambda t: tf.cast(tf.strings.length(t), tf.float32)[:, None])(text)
    return tf_keras.Model(text, tf_keras.layers.Dense(2)(length))


def test_module_rejects_a_wrong_number_of_class_names(classifiers):
    with pytest.raises(ValueError, match="3 class names for a model with 4 outputs"):
        TextClassifierModule(classifiers["text_vectorization"], CLASS_NAMES[:3])


def test_module_outputs_float32_under_mixed_precision():
    tf_keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = text_vectorization_classifier()
    finally:
        tf_keras.mixed_precision.set_global_policy("float32")
    module = TextClassifierModule(model, CLASS_NAMES)
    check_probabilities(module.serving_default(tf.constant(["the team won"]))["probabilities"], 1)


def test_reload_smoke_check_compares_with_the_expected_probabilities(exported, module):
    texts = ["stocks fell", ""]
    expected = module.serving_default(tf.constant(texts))["probabilities"].numpy()
    outputs = reload_smoke_check(exported[1], texts, expected)
    check_probabilities(outputs["probabilities"], 2)
    with pytest.raises(AssertionError, match="differs from the trained one"):
        reload_smoke_check(exported[1], texts, expected[::-1] + np.array([[0.1, -0.1, 0, 0]]))


# Bad input.

@pytest.mark.parametrize("kind", [pytest.param("text_vectorization", marks=pytest.mark.large), "wordpiece"])
def test_bad_input_gives_valid_probabilities_through_predict_and_the_signature(classifiers, kind, tmp_path):
    model = classifiers[kind]
    logits = model.predict(np.array(BAD_TEXTS, dtype=object), batch_size=4, verbose=0)
    assert np.isfinite(logits).all()
    check_probabilities(tf.nn.softmax(logits).numpy(), len(BAD_TEXTS))

    module = TextClassifierModule(model, CLASS_NAMES)
    signature = tf.saved_model.load(export_saved_model(module, str(tmp_path), module.signatures())
                                    ).signatures["serving_default"]
    for texts in (BAD_TEXTS, [b""], [b"  ", b"\n"], []):
        outputs = signature(text=tf.constant(texts, dtype=tf.string))
        check_probabilities(outputs["probabilities"], len(texts))
        assert set(outputs["label"].numpy().tolist()) <= {name.encode() for name in CLASS_NAMES}
    # A text's probabilities do not depend on the batch it is served in.
    alone = signature(text=tf.constant(BAD_TEXTS[4:5]))["probabilities"].numpy()
    together = signature(text=tf.constant(BAD_TEXTS))["probabilities"].numpy()[4:5]
    np.testing.assert_allclose(alone, together, atol=1e-5)


@pytest.mark.large  # Trains, checkpoints and exports a model of its own.
def test_export_leaves_out_the_optimizer_state_and_keeps_it_for_training(tmp_path):
    """A compiled, trained classifier (nested in a text model, as the fit scripts export it) is saved without
    its Adam moments; afterwards the optimizer is still attached, tracked and training goes on."""
    from tfnlp.serving import export_text_classifier
    from tfnlp.training.optimization import create_optimizer

    vectorizer = build_text_vectorizer(["stocks fell", "team won the cup", "bank rates rose"], vocabulary_size=20)
    inner = build_transformer_classifier(None, num_classes=2, vocabulary_size=20, sequence_length=8,
                                         embedding_dim=8, num_heads=2, intermediate_dim=8)
    inner.compile(create_optimizer(1e-2, 10), tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ids, labels = vectorizer(tf.constant(["stocks fell", "team won the cup"])), np.array([0, 1])
    inner.fit(ids, labels, verbose=0)
    optimizer = inner.optimizer
    text = tf_keras.Input(shape=(), dtype=tf.string, name="text")
    # The control: a plain SavedModel of the same model holds the optimizer's variables.
    tf.saved_model.save(TextClassifierModule(tf_keras.Model(text, inner(vectorizer(text))), ["a", "b"]),
                        str(tmp_path / "plain"))
    plain = tf.train.load_checkpoint(str(tmp_path / "plain" / "variables" / "variables"))
    assert [name for name in plain.get_variable_to_shape_map() if "optimizer" in name.lower()]
    path = export_text_classifier(tf_keras.Model(text, inner(vectorizer(text))), ["a", "b"], str(tmp_path))["path"]
    saved = tf.train.load_checkpoint(os.path.join(path, "variables", "variables")).get_variable_to_shape_map()
    assert not [name for name in saved if "optimizer" in name.lower()]
    assert sum(np.prod(shape) for shape in saved.values()) == pytest.approx(inner.count_params(), rel=0.01)
    # Still attached and tracked: a checkpoint of the model holds the optimizer, and training continues.
    assert inner.optimizer is optimizer
    prefix = tf.train.Checkpoint(model=inner).save(str(tmp_path / "ckpt" / "model"))
    assert any("optimizer" in name for name, _ in tf.train.list_variables(prefix))
    inner.fit(ids, labels, verbose=0)
    assert int(optimizer.iterations) == 2
