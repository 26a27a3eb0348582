"""TF-Hub BERT artifacts (tfnlp.hub), the hub classifier builders, and pipelines/agnews_hub_bert.py end to end.

Unit and end-to-end tests use a tiny random BERT (2 layers, hidden 32,
`conftest.topic_bert`) exported through the same artifact builder as the
packaged MiniLM; integration tests check the MiniLM artifacts against Hugging
Face on real AG News texts. One frozen-stage run (`frozen_run`) is shared by
the tests that read it or start from a copy of its folder.
"""

import doctest
import json
import os
import shutil
import subprocess
import sys
import textwrap

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub

from helpers import AG_NEWS_CLASS_NAMES as CLASS_NAMES, TOPIC_VOCAB as VOCAB, write_tiny_bert_folder
from pipelines import agnews_hub_bert as pipeline
from pipelines import export_hub_bert
from tfnlp import pretrained
from tfnlp.hub import BertPreprocessor, export_hub_bert as build_artifacts, hub_artifact_dirs
from tfnlp.hub import bert_preprocessor
from tfnlp.models import build_encoder_classifier, build_hub_bert_classifier, classifier_head, pooled_output_model
from tfnlp.text import BertTokenizer
from tfnlp.training.feature_cache import cached_features

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SENTENCES = ["The minister's report, today!", "Stocks and shares in the market", "Café software chips", "",
             "   ", "unknown wordsss"]


@pytest.fixture(scope="module")
def artifacts(topic_bert, tmp_path_factory):
    return build_artifacts(topic_bert, str(tmp_path_factory.mktemp("hub")), seq_length=16)


def hf_encode(bert_dir, sentences, length):
    from transformers import BertTokenizerFast

    return BertTokenizerFast(os.path.join(bert_dir, "vocab.txt"), do_lower_case=True)(
        sentences, padding="max_length", truncation=True, max_length=length, return_tensors="np")


# ---------------------------------------------------------------- artifacts

def test_artifact_folders_say_preprocess_and_encoder(artifacts, topic_bert):
    assert os.path.basename(artifacts.preprocess) == "topic_bert_preprocess"
    assert os.path.basename(artifacts.encoder) == "topic_bert_encoder"
    for path in artifacts:
        assert os.path.isfile(os.path.join(path, "saved_model.pb"))
        with open(os.path.join(path, "assets", "vocab.txt"), encoding="utf-8") as f:
            assert f.read().split("\n")[:len(VOCAB)] == VOCAB
    # No temporary folders are left beside them.
    assert sorted(os.listdir(os.path.dirname(artifacts.encoder))) == ["topic_bert_encoder", "topic_bert_preprocess"]


def test_preprocessor_matches_hf_tokenizer(artifacts, topic_bert):
    outputs = hub.KerasLayer(artifacts.preprocess)(tf.constant(SENTENCES))
    expected = hf_encode(topic_bert, SENTENCES, 16)
    assert set(outputs) == {"input_word_ids", "input_mask", "input_type_ids"}
    assert outputs["input_word_ids"].shape == (len(SENTENCES), 16) and outputs["input_word_ids"].dtype == tf.int32
    np.testing.assert_array_equal(outputs["input_word_ids"].numpy(), expected["input_ids"])
    np.testing.assert_array_equal(outputs["input_mask"].numpy(), expected["attention_mask"])
    np.testing.assert_array_equal(outputs["input_type_ids"].numpy(), expected["token_type_ids"])


def test_preprocessor_tokenize_and_pack_pairs(artifacts, topic_bert):
    loaded = hub.load(artifacts.preprocess)
    tokens = loaded.tokenize(tf.constant(["Stocks report", "the cup"]))
    assert isinstance(tokens, tf.RaggedTensor) and tokens.shape.rank == 3
    ids = {token: i for i, token in enumerate(VOCAB)}
    assert tokens.to_list() == [[[ids["stocks"]], [ids["report"]]], [[ids["the"]], [ids["cup"]]]]
    special = {key: int(value) for key, value in loaded.tokenize.get_special_tokens_dict().items()}
    assert special == {"start_of_sequence_id": ids["[CLS]"], "end_of_segment_id": ids["[SEP]"],
                       "padding_id": ids["[PAD]"], "vocab_size": len(VOCAB)}
    # Sentence pairs and another length, through hub.KerasLayer as TF Hub documents it.
    pack = hub.KerasLayer(loaded.bert_pack_inputs, arguments={"seq_length": 8})
    packed = pack([tokens, hub.KerasLayer(loaded.tokenize)(tf.constant(["market", "goal goal"]))])
    cls, sep = ids["[CLS]"], ids["[SEP]"]
    np.testing.assert_array_equal(packed["input_word_ids"].numpy(), [
        [cls, ids["stocks"], ids["report"], sep, ids["market"], sep, 0, 0],
        [cls, ids["the"], ids["cup"], sep, ids["goal"], ids["goal"], sep, 0]])
    np.testing.assert_array_equal(packed["input_type_ids"].numpy(), [[0, 0, 0, 0, 1, 1, 0, 0],
                                                                    [0, 0, 0, 0, 1, 1, 1, 0]])
    np.testing.assert_array_equal(packed["input_mask"].numpy(), [[1, 1, 1, 1, 1, 1, 0, 0],
                                                                [1, 1, 1, 1, 1, 1, 1, 0]])


def test_encoder_matches_tf_bert_model(artifacts, topic_bert):
    inputs = hub.KerasLayer(artifacts.preprocess)(tf.constant(SENTENCES))
    outputs = hub.KerasLayer(artifacts.encoder)(inputs)
    assert set(outputs) >= {"pooled_output", "sequence_output", "encoder_outputs"}
    assert len(outputs["encoder_outputs"]) == 2
    reference = pretrained.load_bert_model(topic_bert)(
        input_ids=inputs["input_word_ids"], attention_mask=inputs["input_mask"],
        token_type_ids=inputs["input_type_ids"])
    mask = inputs["input_mask"].numpy()[..., None]
    sequence_diff = np.abs(outputs["sequence_output"].numpy() - reference.last_hidden_state.numpy()) * mask
    assert sequence_diff.max() <= 1e-4
    assert np.abs(outputs["pooled_output"].numpy() - reference.pooler_output.numpy()).max() <= 1e-4
    np.testing.assert_array_equal(outputs["encoder_outputs"][-1].numpy(), outputs["sequence_output"].numpy())


def test_encoder_is_fine_tunable_with_dropout(artifacts):
    layer = hub.KerasLayer(artifacts.encoder, trainable=True)
    ids = tf.constant([[2, 21, 22, 3]])
    inputs = {"input_word_ids": ids, "input_mask": tf.ones_like(ids), "input_type_ids": tf.zeros_like(ids)}
    assert len(layer.trainable_weights) == 5 + 16 * 2 + 2
    inference = layer(inputs, training=False)["pooled_output"].numpy()
    np.testing.assert_array_equal(inference, layer(inputs, training=False)["pooled_output"].numpy())
    assert not np.allclose(inference, layer(inputs, training=True)["pooled_output"].numpy())
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(inputs, training=True)["pooled_output"])
    assert all(g is not None for g in tape.gradient(loss, layer.trainable_weights))


def test_export_keeps_existing_artifacts_unless_overwrite(artifacts, topic_bert):
    before = os.stat(os.path.join(artifacts.encoder, "saved_model.pb")).st_mtime_ns
    again = build_artifacts(topic_bert, os.path.dirname(artifacts.encoder), seq_length=16)
    assert again == artifacts
    assert os.stat(os.path.join(artifacts.encoder, "saved_model.pb")).st_mtime_ns == before


def test_failed_export_leaves_nothing(topic_bert, tmp_path, monkeypatch):
    from tfnlp.hub import export as export_module

    def broken_save(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export_module.tf.saved_model, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        build_artifacts(topic_bert, str(tmp_path / "hub"))
    assert os.listdir(tmp_path / "hub") == []


@pytest.mark.large  # Builds and exports a second encoder.
def test_export_rejects_unsupported_activation(tmp_path):
    folder = write_tiny_bert_folder(tmp_path / "swish_bert", VOCAB)
    config_file = os.path.join(folder, "config.json")
    with open(config_file, encoding="utf-8") as f:
        config = json.load(f)
    with open(config_file, "w", encoding="utf-8") as f:
        json.dump({**config, "hidden_act": "silu"}, f)
    with pytest.raises(ValueError, match="hidden_act 'silu'"):
        build_artifacts(folder, str(tmp_path / "hub"))


def test_hub_artifact_dirs_default():
    dirs = hub_artifact_dirs()
    assert dirs.preprocess == os.path.join("saved_models", "hub", "all-MiniLM-L6-v2_preprocess")
    assert dirs.encoder == os.path.join("saved_models", "hub", "all-MiniLM-L6-v2_encoder")


def test_preprocessor_validates_and_docstring_runs():
    with pytest.raises(ValueError, match="seq_length"):
        BertPreprocessor(BertTokenizer(VOCAB), seq_length=1)
    result = doctest.testmod(bert_preprocessor)
    assert result.attempted >= 3 and result.failed == 0


def test_export_script_checks_parity(topic_bert, tmp_path, capsys):
    result = export_hub_bert.main(["--pretrained", topic_bert, "--hub-dir", str(tmp_path), "--seq-length", "16"])
    assert result["check"]["ids_match"] is True
    assert result["check"]["max_abs_diff_sequence_output"] <= 1e-4
    assert result["check"]["max_abs_diff_pooled_output"] <= 1e-4
    assert json.loads(capsys.readouterr().out)["encoder"] == result["encoder"]


# ---------------------------------------------------------------- classifier

def test_classifier_on_raw_strings(artifacts):
    model = build_hub_bert_classifier(artifacts.preprocess, artifacts.encoder, 4)
    logits = model(tf.constant(["stocks report", ""]))
    assert logits.shape == (2, 4) and logits.dtype == tf.float32
    core = model.get_layer("bert_classifier")
    assert core.get_layer("encoder").trainable is False
    assert len(model.trainable_weights) == 2  # The dense head only.
    # Padding to 16 or to the batch's longest text gives the same logits.
    fixed = build_hub_bert_classifier(artifacts.preprocess, core, seq_length=16)
    np.testing.assert_allclose(fixed(tf.constant(["stocks report", ""])).numpy(), logits.numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="num_classes"):
        build_hub_bert_classifier(artifacts.preprocess, artifacts.encoder)


def test_classifier_defaults_are_the_lessons_handles():
    import inspect

    defaults = inspect.signature(build_hub_bert_classifier).parameters
    assert defaults["preprocess"].default == "https://tfhub.dev/tensorflow/bert_en_uncased_preprocess/3"
    assert defaults["encoder"].default == "https://tfhub.dev/tensorflow/small_bert/bert_en_uncased_L-4_H-128_A-2/1"


@pytest.mark.parametrize("pooling", ["pooled_output", "mean"])
def test_frozen_head_shares_weights_with_classifier(artifacts, pooling):
    classifier = build_encoder_classifier(artifacts.encoder, 4, dropout=0.2, pooling=pooling)
    head, extractor = classifier_head(classifier), pooled_output_model(classifier)
    ids = tf.constant([[2, 21, 22, 3, 0], [2, 30, 3, 0, 0]])
    inputs = {"input_word_ids": ids, "input_mask": tf.cast(ids != 0, tf.int32), "input_type_ids": tf.zeros_like(ids)}
    head.get_layer("classifier").kernel.assign(tf.random.normal([32, 4]))
    np.testing.assert_allclose(head(extractor(inputs)).numpy(), classifier(inputs).numpy(), atol=1e-6)
    assert head.get_layer("classifier") is classifier.get_layer("classifier")
    with pytest.raises(ValueError, match="dropout"):
        build_encoder_classifier(artifacts.encoder, 4, dropout=1.0)
    with pytest.raises(ValueError, match="pooling"):
        build_encoder_classifier(artifacts.encoder, 4, pooling="max")


def test_mean_pooling_averages_real_tokens_only(artifacts):
    classifier = build_encoder_classifier(artifacts.encoder, 4, pooling="mean")
    extractor = pooled_output_model(classifier)
    ids = tf.constant([[2, 21, 22, 3, 0, 0], [2, 30, 31, 32, 33, 3]])
    inputs = {"input_word_ids": ids, "input_mask": tf.cast(ids != 0, tf.int32), "input_type_ids": tf.zeros_like(ids)}
    sequence = hub.KerasLayer(artifacts.encoder)(inputs)["sequence_output"].numpy()
    np.testing.assert_allclose(extractor(inputs).numpy()[0], sequence[0, :4].mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(extractor(inputs).numpy()[1], sequence[1].mean(axis=0), atol=1e-5)
    # The same text padded less gives the same vector.
    short = {key: value[:1, :4] for key, value in inputs.items()}
    np.testing.assert_allclose(extractor(short).numpy()[0], extractor(inputs).numpy()[0], atol=1e-5)


def test_feature_cache_reuses_and_invalidates(tmp_path):
    calls = []

    def model(inputs, training):
        calls.append(1)
        return inputs * 2.0

    data = tf.data.Dataset.from_tensor_slices((tf.ones([5, 3]), tf.range(5))).batch(2)
    path = str(tmp_path / "f.npz")
    first = cached_features(model, data, path, key="a")
    assert first[2] > 0 and first[0].shape == (5, 3) and first[1].tolist() == [0, 1, 2, 3, 4]
    traced = len(calls)
    second = cached_features(model, data, path, key="a")
    assert second[2] == 0.0 and len(calls) == traced
    np.testing.assert_array_equal(second[0], first[0])
    third = cached_features(lambda x, training: x * 3.0, data, path, key="b")
    assert third[2] > 0 and third[0][0, 0] == 3.0


def test_weight_decay_skips_layer_norm_and_bias(artifacts):
    from tfnlp.training.optimization import create_optimizer

    classifier = build_encoder_classifier(artifacts.encoder, 4, trainable=True)
    optimizer = create_optimizer(3e-5, 100, weight_decay=0.01)
    names = [weight.name for weight in classifier.trainable_weights]
    decayed = {name for name in names if optimizer._do_use_weight_decay(name)}
    assert decayed and all("layer_norm" not in name and "bias" not in name for name in decayed)
    assert any("kernel" in name for name in decayed) and any("embeddings" in name for name in decayed)
    assert {name for name in names if "layer_norm" in name or "bias" in name}.isdisjoint(decayed)


# ---------------------------------------------------------------- fit script

def run_pipeline(data_root, artifacts, output_dir, *extra, export_dir=""):
    argv = ["--data-dir", data_root, "--output-dir", str(output_dir), "--export-dir", str(export_dir),
            "--preprocess", artifacts.preprocess, "--encoder", artifacts.encoder, "--sequence-length", "16",
            "--frozen-epochs", "3", "--frozen-batch-size", "8", "--epochs", "1", "--batch-size", "8",
            "--learning-rate", "1e-3", "--validation-size", "8", *extra]
    return pipeline.main(argv)


FROZEN_ONLY = ("--skip-fine-tuning", "--pooling", "pooled_output")


@pytest.fixture(scope="module")
def frozen_run(ag_news_root, artifacts, tmp_path_factory):
    """The frozen stage alone (``--pooling pooled_output``, the lesson's), exported: its metrics and folders.

    Tests that run the script again in its output folder work on a copy (`copy_run`)."""
    root = tmp_path_factory.mktemp("frozen_run")
    metrics = run_pipeline(ag_news_root, artifacts, root / "run", *FROZEN_ONLY, export_dir=root / "export")
    return {"metrics": metrics, "run": root / "run", "export": metrics["export"]["path"]}


def copy_run(frozen_run, tmp_path):
    """A copy of the shared frozen run's output folder, to run the script again in."""
    return shutil.copytree(frozen_run["run"], tmp_path / "run")


@pytest.fixture(scope="module")
def hub_run(ag_news_root, artifacts, tmp_path_factory):
    """Both stages with the defaults, exported: its metrics, its output folder and the encoder's weights before."""
    root = tmp_path_factory.mktemp("hub_run")
    reference = [w.numpy() for w in hub.KerasLayer(artifacts.encoder).weights]
    metrics = run_pipeline(ag_news_root, artifacts, root / "run", export_dir=root / "export")
    return {"metrics": metrics, "root": root, "reference": reference}


@pytest.mark.slow
def test_pipeline_end_to_end(artifacts, hub_run):
    tmp_path, reference, metrics = hub_run["root"], hub_run["reference"], hub_run["metrics"]
    export_dir = tmp_path / "export"
    frozen, tuned = metrics["frozen"], metrics["fine_tune"]
    # Fine-tuning changed the exported encoder, and never the source artifact.
    assert not np.allclose(kernel(tf.saved_model.load(metrics["export"]["path"]).model.variables),
                           kernel(hub.KerasLayer(artifacts.encoder).weights))
    for before, after in zip(reference, [w.numpy() for w in hub.KerasLayer(artifacts.encoder).weights]):
        np.testing.assert_array_equal(before, after)
    for stage in ("frozen", "fine_tune"):
        on_disk = json.loads((tmp_path / "run" / stage / "metrics.json").read_text())
        assert on_disk["test"]["accuracy"] == metrics[stage]["test"]["accuracy"]
        assert os.path.isfile(tmp_path / "run" / stage / "history.csv")
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["export"] == metrics["export"]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["fine_tune"]["learning_rate"] == 1e-3 and config["handles"]["encoder"] == artifacts.encoder
    assert config["model"]["pooling"] == "mean"  # The default: MiniLM's sentence vector.
    assert frozen["train_examples"] == 40 and tuned["train_examples"] == 40
    assert len(frozen["test"]["confusion_matrix"]) == 4 and sum(map(sum, frozen["test"]["confusion_matrix"])) == 16
    assert frozen["encoder_seconds"]["train"] > 0 and frozen["features_from_cache"] is False
    assert frozen["cache_speedup"] > 1
    for split in ("train", "validation", "test"):
        assert os.path.isfile(tmp_path / "run" / "frozen" / "features" / f"{split}.npz")
    assert metrics["export"]["path"] == os.path.join(str(export_dir), "1")
    assert set(metrics["export"]["smoke_labels"]) <= set(CLASS_NAMES)


def kernel(variables, name="layer_0/intermediate/kernel"):
    """The value of the first variable whose name holds ``name``."""
    return [v for v in variables if name in v.name][0].numpy()


@pytest.mark.large  # The frozen stage alone, a second whole run: its export, rerun and cache (make test-all).
def test_frozen_stage_exports_the_encoder_unchanged(artifacts, frozen_run):
    frozen_only = frozen_run["metrics"]
    assert "fine_tune" not in frozen_only
    assert json.loads((frozen_run["run"] / "config.json").read_text())["model"]["pooling"] == "pooled_output"
    served = tf.saved_model.load(frozen_run["export"])
    np.testing.assert_array_equal(kernel(served.model.variables), kernel(hub.KerasLayer(artifacts.encoder).weights))


@pytest.mark.large  # A third whole run: the fine-tuning stage alone, averaged (the end-to-end run fine-tunes).
def test_fine_tuning_alone_averages_its_snapshots(ag_news_root, artifacts, tmp_path):
    original = kernel(hub.KerasLayer(artifacts.encoder).weights)
    tuned = run_pipeline(ag_news_root, artifacts, tmp_path / "tuned_only", "--skip-frozen-stage",
                         "--average-snapshots", "2", "--average-fraction", "1", export_dir=tmp_path / "export")
    assert "frozen" not in tuned and tuned["export"]["path"] == str(tmp_path / "export" / "1")
    assert tuned["fine_tune"]["averaging"]["snapshots"] == 2  # --average-snapshots reaches the shared loop.
    assert not np.allclose(kernel(tf.saved_model.load(tuned["export"]["path"]).model.variables), original)


@pytest.mark.large  # The frozen stage alone, a second whole run: its export, rerun and cache (make test-all).
def test_pipeline_rerun_reuses_frozen_stage(ag_news_root, artifacts, frozen_run, tmp_path):
    second = run_pipeline(ag_news_root, artifacts, copy_run(frozen_run, tmp_path), *FROZEN_ONLY)
    assert second["frozen"] == json.loads(json.dumps(frozen_run["metrics"]["frozen"]))


@pytest.mark.large  # The frozen stage alone, a second whole run: its export, rerun and cache (make test-all).
def test_feature_cache_survives_an_interrupted_frozen_stage(ag_news_root, artifacts, frozen_run, tmp_path):
    run = copy_run(frozen_run, tmp_path)
    os.remove(run / "frozen" / "metrics.json")  # As if killed after caching, before finishing.
    again = run_pipeline(ag_news_root, artifacts, run, *FROZEN_ONLY)
    assert again["frozen"]["features_from_cache"] is True and again["frozen"]["encoder_seconds"]["train"] == 0.0


@pytest.mark.parametrize("argv, message", [
    (["--encoder", "x"], "--encoder needs its --preprocess"),
    (["--preprocess", "x"], "--preprocess needs its --encoder"),
    (["--sequence-length", "2"], "--sequence-length must be at least 3"),
    (["--learning-rate", "0"], "--learning-rate must be positive"),
    (["--warmup-ratio", "1"], "--warmup-ratio must lie in [0, 1)"),
    (["--frozen-epochs", "0"], "--frozen-epochs and --frozen-batch-size must be at least 1"),
    (["--skip-frozen-stage", "--skip-fine-tuning"], "--skip-frozen-stage and --skip-fine-tuning together"),
])
def test_pipeline_rejects_bad_arguments(argv, message, tmp_path, capsys):
    """Each bad value is one line naming it, exit code 2, before anything is written."""
    with pytest.raises(SystemExit) as raised:
        pipeline.main(["--output-dir", str(tmp_path / "run"), *argv])
    err = capsys.readouterr().err
    assert raised.value.code == 2 and err.startswith(f"error: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_export_serves_raw_text_in_a_fresh_process_without_tfnlp(hub_run, tmp_path):
    metrics = hub_run["metrics"]
    script = textwrap.dedent("""
        import json, sys
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the preprocessor's ops)
        model = tf.saved_model.load(sys.argv[1])
        texts = ["", "   ", "x" * 100000, "Учёные 😀", "stocks report today", "stocks report today " * 10]
        out = model.signatures["serving_default"](text=tf.constant(texts))
        assert "tfnlp" not in sys.modules
        print(json.dumps({"shape": out["probabilities"].shape.as_list(),
                          "truncated": out["truncated"].numpy().tolist(),
                          "sums": out["probabilities"].numpy().sum(axis=1).tolist(),
                          "labels": [label.decode() for label in out["label"].numpy()]}))
    """)
    result = subprocess.run([sys.executable, "-c", script, metrics["export"]["path"]], capture_output=True,
                            text=True, cwd=str(tmp_path), env={**os.environ, "PYTHONPATH": ""}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = json.loads(result.stdout.strip().splitlines()[-1])
    assert outputs["shape"] == [6, 4]
    # Only the last text has more pieces than --sequence-length 16 holds ("x" * 100,000 is one [UNK]).
    assert outputs["truncated"] == [False] * 5 + [True]
    np.testing.assert_allclose(outputs["sums"], 1.0, atol=1e-5)
    assert set(outputs["labels"]) <= set(CLASS_NAMES)


@pytest.mark.large  # Another fresh TensorFlow process; the signature's inputs and outputs are checked above.
def test_saved_model_cli_shows_the_exports_serving_signature(hub_run):
    cli = subprocess.run([os.path.join(os.path.dirname(sys.executable), "saved_model_cli"), "show", "--dir",
                          hub_run["metrics"]["export"]["path"], "--tag_set", "serve", "--signature_def",
                          "serving_default"], capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert "inputs['text'] tensor_info" in cli.stdout and "dtype: DT_STRING" in cli.stdout
    for output in ("probabilities", "label_id", "label", "truncated"):
        assert f"outputs['{output}']" in cli.stdout


# ---------------------------------------------------------------- integration (packaged MiniLM, real data)

@pytest.mark.integration
@pytest.mark.slow
def test_minilm_artifacts_match_hf_on_ag_news(data_dir, tmp_path):
    from tfnlp import data

    texts = [text.decode() for text, _ in data.load_ag_news("test", data_dir=data_dir)[0].take(16).as_numpy_iterator()]
    texts += ["Café déjà vu: naïve façade!", "", "東京株式市場 😀"]
    exported = build_artifacts(None, str(tmp_path))
    inputs = hub.KerasLayer(exported.preprocess)(tf.constant(texts))
    folder = pretrained.packaged_model_dir()
    expected = hf_encode(folder, texts, 128)
    np.testing.assert_array_equal(inputs["input_word_ids"].numpy(), expected["input_ids"])
    np.testing.assert_array_equal(inputs["input_mask"].numpy(), expected["attention_mask"])
    outputs = hub.KerasLayer(exported.encoder)(inputs)
    reference = pretrained.load_bert_model()(input_ids=inputs["input_word_ids"], attention_mask=inputs["input_mask"],
                                             token_type_ids=inputs["input_type_ids"])
    mask = inputs["input_mask"].numpy()[..., None]
    assert (np.abs(outputs["sequence_output"].numpy() - reference.last_hidden_state.numpy()) * mask).max() <= 1e-4
    assert np.abs(outputs["pooled_output"].numpy() - reference.pooler_output.numpy()).max() <= 1e-4
    assert len(outputs["encoder_outputs"]) == 6
