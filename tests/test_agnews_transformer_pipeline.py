"""End-to-end tests of pipelines/agnews_transformer.py on a tiny AG News CSV fixture, and of its data path.

Every run passes tiny model sizes through ``main(argv=[...])``: the script's
defaults are the real training configuration and are never relied on here.
Option variants of a whole run (XLA with the lesson's arguments file, mixed
precision, the mirrored strategy, distillation resumed, a second run reading a
cached teacher, a repeated run) and the saved_model_cli listing are in the
large tier (`make test-all`).
"""

import csv
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import types

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from helpers import AG_NEWS_CLASS_NAMES as CLASS_NAMES, run_fresh_python
from pipelines import agnews_transformer as pipeline
from tfnlp import pretrained
from tfnlp.tasks import ag_news, agnews_transformer as recipe
from tfnlp.data.batching import batch_by_length, encode_texts
from tfnlp.models import SentenceEmbeddingDistiller, build_text_vectorizer
from tfnlp.training import Runtime, parse_arguments

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--tokenizer", "text_vectorization", "--no-pretrained-embeddings", "--embedding-dim", "8",
        "--num-heads", "2", "--intermediate-dim", "8", "--sequence-length", "32", "--epochs", "2",
        "--batch-size", "8", "--distillation-weight", "0"]
SERVING_TEXTS = ["", "   \n\t ", "x" * 100_000, "stocks fell " * 8_000, "Учёные представили новый процессор 😀",
                 "東京株式市場", "the striker scored twice in the cup final"]


def run_pipeline(data_root, output_dir, *extra, export_dir=""):
    argv = ["--data-dir", data_root, "--output-dir", str(output_dir), "--export-dir", str(export_dir), *TINY, *extra]
    return pipeline.main(argv)


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_history(output_dir):
    with open(os.path.join(output_dir, "history.csv"), newline="") as f:
        return list(csv.DictReader(f))


def serve(export_path, texts):
    outputs = tf.saved_model.load(export_path).signatures["serving_default"](text=tf.constant(texts))
    return {name: value.numpy() for name, value in outputs.items()}


def check_probabilities(probabilities, rows):
    assert probabilities.shape == (rows, 4) and probabilities.dtype == np.float32
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)


def write_texts(folder):
    """`SERVING_TEXTS` as a JSON file (too long for a command-line argument)."""
    path = os.path.join(folder, "texts.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(SERVING_TEXTS, f)
    return path


@pytest.fixture(autouse=True)
def _float32_policy():
    """--mixed-precision sets the process-global precision policy: leave float32 behind."""
    yield
    tf_keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="module")
def tv_run(ag_news_root, tmp_path_factory):
    """One tiny TextVectorization run with export: (metrics, output folder, export base folder)."""
    root = tmp_path_factory.mktemp("tv_run")
    metrics = run_pipeline(ag_news_root, root / "run", export_dir=root / "export")
    return metrics, root / "run", root / "export"


# Arguments.

def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        pipeline.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--data-dir", "--tokenizer", "--embedding-dim", "--epochs", "--export-dir", "--strategy",
                   "--mixed-precision", "--jit-compile", "--seed", "--args-file", "--distillation-weight",
                   "--distillation-teacher"):
        assert option in out


@pytest.mark.parametrize("argv, option", [
    (["--epochs", "0"], "--epochs"),
    (["--batch-size", "many"], "--batch-size"),
    (["--tokenizer", "bpe"], "--tokenizer"),
    (["--dropout", "1.5"], "--dropout"),
    (["--sequence-length", "1"], "--sequence-length"),
    (["--validation-size", "0"], "--validation-size"),
    (["--validation-size", "2.5"], "--validation-size"),
    (["--max-train-examples", "0"], "--max-train-examples"),
    (["--learning-rate", "0"], "--learning-rate"),
    (["--warmup-ratio", "1"], "--warmup-ratio"),
    (["--weight-decay", "-0.1"], "--weight-decay"),
    (["--activation", "tanh"], "--activation"),
    (["--strategy", "gpu"], "--strategy"),
    (["--ngram-buckets", "-1"], "--ngram-buckets"),
    (["--ngram-orders", "2,x"], "--ngram-orders"),
    (["--ngram-orders", "0"], "--ngram-orders"),
    (["--ngram-orders", "2,2"], "--ngram-orders"),
    (["--pretrained-components", "-1"], "--pretrained-components"),
    (["--distillation-weight", "-1"], "--distillation-weight"),
    (["--no-freeze-pretrained-embeddings", "--pretrained-components", "64"], "--pretrained-components"),
    (["--num-heads", "3"], "--num-heads (3) must divide --embedding-dim (32)"),
    (["--embedding-dim", "10", "--num-heads", "4"], "--num-heads (4) must divide --embedding-dim (10)"),
    (["--num-heads", "0"], "--num-heads must be at least 1"),
    (["--num-layers", "0"], "--num-layers must be at least 1"),
    (["--embedding-dim", "0"], "--embedding-dim must be at least 1"),
    (["--intermediate-dim", "0"], "--intermediate-dim must be at least 1"),
    (["--tokenizer", "text_vectorization", "--vocabulary-size", "2"], "--vocabulary-size"),
    (["--pretrained", "/no/such/bert"], "--pretrained /no/such/bert: no such folder"),
    (["--distillation-teacher", "./no_such_teacher"], "--distillation-teacher ./no_such_teacher: no such folder"),
    (["--tpu", "grpc://10.0.0.2:8470"], "--tpu"),
    (["--verbose", "--quiet"], "not allowed with argument"),
])
def test_invalid_values_are_one_line_errors_naming_the_option(capsys, tmp_path, argv, option):
    with pytest.raises(SystemExit) as exit_info:
        pipeline.main(["--output-dir", str(tmp_path / "run"), *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and option in err
    assert not os.path.exists(tmp_path / "run")  # Nothing is written before the arguments are valid.


def test_pretrained_components_reach_the_model(monkeypatch):
    rng = np.random.default_rng(0)
    monkeypatch.setattr(pretrained, "load_embedding_matrices",
                        lambda name=None: {"word_embeddings": rng.normal(size=(50, 12)).astype(np.float32)})
    wordpiece = types.SimpleNamespace(vocabulary_size=50)
    model_args = parse_arguments("", recipe.ModelArguments, argv=[
        "--pretrained-components", "5", "--embedding-dim", "8", "--ngram-buckets", "0"])[0]
    model = recipe.build_model(model_args, wordpiece, num_classes=4)
    assert model.get_layer("pretrained_token_embedding").embeddings.shape == (50, 5)
    full = recipe.build_model(dataclasses.replace(model_args, pretrained_components=0), wordpiece, num_classes=4)
    assert full.get_layer("pretrained_token_embedding").embeddings.shape == (50, 12)


def test_validation_size_is_a_fraction_or_a_count():
    def validation_size(value):
        data_args = parse_arguments("", ag_news.DataArguments, argv=["--validation-size", value])[0]
        return data_args.validation_size
    assert validation_size("0.25") == 0.25
    assert validation_size("8") == 8 and isinstance(validation_size("8"), int)
    assert isinstance(validation_size("8.0"), int)


# The main run: files, figures, export.

@pytest.mark.slow
def test_run_writes_config_history_logs_and_checkpoints(tv_run):
    metrics, output_dir, _ = tv_run
    config = read_json(output_dir / "config.json")
    assert config["model"]["tokenizer"] == "text_vectorization" and config["model"]["embedding_dim"] == 8
    assert config["training"]["epochs"] == 2 and config["runtime"]["strategy"] == "default"
    assert config["environment"]["replicas"] == 1 and config["environment"]["compute_dtype"] == "float32"
    history = read_history(output_dir)
    assert [row["epoch"] for row in history] == ["0", "1"]
    assert all(float(row["examples_per_second"]) > 0 and np.isfinite(float(row["loss"])) for row in history)
    for split in ("train", "validation"):
        assert any(name.startswith("events.out.tfevents") for name in os.listdir(output_dir / "logs" / split))
    assert os.path.exists(output_dir / "checkpoints" / "best.index")
    assert read_json(output_dir / "metrics.json") == json.loads(json.dumps(metrics))


@pytest.mark.slow
def test_metrics_hold_test_figures_speed_and_wall_time(tv_run):
    metrics = read_json(tv_run[1] / "metrics.json")
    test = metrics["test"]
    assert test["num_examples"] == 16 and test["class_names"] == CLASS_NAMES
    assert 0 <= test["accuracy"] <= 1 and 0 <= metrics["validation_accuracy"] <= 1
    assert sorted(test["per_class"]) == sorted(CLASS_NAMES)
    for figures in test["per_class"].values():
        assert set(figures) == {"precision", "recall", "f1", "support"} and figures["support"] == 4
    confusion = np.array(test["confusion_matrix"])
    assert confusion.shape == (4, 4) and confusion.sum() == 16 and confusion.sum(axis=1).tolist() == [4] * 4
    assert np.trace(confusion) / 16 == pytest.approx(test["accuracy"])
    assert metrics["train_examples"] == 43 and metrics["epochs_run_this_session"] == 2
    assert metrics["train_examples_per_second"] > 0 and metrics["train_wall_seconds"] > 0
    assert metrics["teacher_seconds"] == 0.0  # --distillation-weight 0: no teacher.


@pytest.mark.slow
def test_export_is_the_first_version_and_serves_text(tv_run):
    metrics, _, export_dir = tv_run
    assert metrics["export"]["path"] == os.path.join(str(export_dir), "1")
    assert all(name.isdigit() for name in os.listdir(export_dir))  # No temporary folder left behind.
    assert set(metrics["export"]["smoke_labels"]) <= set(CLASS_NAMES)
    outputs = serve(metrics["export"]["path"], SERVING_TEXTS)
    check_probabilities(outputs["probabilities"], len(SERVING_TEXTS))
    assert [CLASS_NAMES[i] for i in outputs["label_id"]] == [label.decode() for label in outputs["label"]]
    # Only "stocks fell " * 8,000 has more than --sequence-length 32 tokens ("x" * 100,000 is one).
    assert outputs["truncated"].tolist() == [text.startswith("stocks fell") for text in SERVING_TEXTS]
    edge = serve(metrics["export"]["path"], ["stocks fell " * 16, "stocks fell " * 16 + "stocks"])["truncated"]
    assert edge.tolist() == [False, True]  # 32 tokens are read whole, 33 are not.


@pytest.mark.slow
def test_export_loads_in_a_fresh_process_that_never_imports_tfnlp(tv_run, tmp_path):
    path = tv_run[0]["export"]["path"]
    expected = serve(path, SERVING_TEXTS)["probabilities"]
    out = run_fresh_python("""
        import json, sys
        import tensorflow as tf

        serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
        with open(sys.argv[2], encoding="utf-8") as f:
            outputs = serve(text=tf.constant(json.load(f)))
        assert "tfnlp" not in sys.modules and "tensorflow_text" not in sys.modules, "unexpected imports"
        print(json.dumps({"probabilities": outputs["probabilities"].numpy().tolist(),
                          "label": [label.decode() for label in outputs["label"].numpy()]}))
    """, path, write_texts(tmp_path), cwd=tmp_path)
    result = json.loads(out.strip().splitlines()[-1])
    np.testing.assert_allclose(result["probabilities"], expected, atol=1e-6)
    assert set(result["label"]) <= set(CLASS_NAMES)


@pytest.mark.large
def test_saved_model_cli_shows_the_serving_signature(tv_run):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run([cli, "show", "--all", "--dir", tv_run[0]["export"]["path"]], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    signature = result.stdout.split("signature_def['serving_default']:")[1].split("signature_def[")[0]
    squeezed = " ".join(signature.split())
    assert "inputs['text'] tensor_info: dtype: DT_STRING shape: (-1)" in squeezed
    assert "outputs['probabilities'] tensor_info: dtype: DT_FLOAT shape: (-1, 4)" in squeezed
    assert "outputs['label_id'] tensor_info: dtype: DT_INT64 shape: (-1)" in squeezed
    assert "outputs['label'] tensor_info: dtype: DT_STRING shape: (-1)" in squeezed
    assert "outputs['truncated'] tensor_info: dtype: DT_BOOL shape: (-1)" in squeezed
    assert "Method name is: tensorflow/serving/predict" in squeezed


@pytest.mark.large  # A second whole run; the runtime's seeding and the export versions are unit-tested.
def test_same_seed_repeats_the_run_and_exports_the_next_version(tv_run, ag_news_root, tmp_path):
    first_metrics, first_dir, export_dir = tv_run
    metrics = run_pipeline(ag_news_root, tmp_path / "again", export_dir=export_dir)
    assert metrics["export"]["path"] == os.path.join(str(export_dir), "2")
    def without_timing(rows):
        return [{k: v for k, v in row.items() if k not in ("examples_per_second", "train_seconds")} for row in rows]
    assert without_timing(read_history(tmp_path / "again")) == without_timing(read_history(first_dir))
    assert metrics["test"] == first_metrics["test"]
    np.testing.assert_array_equal(serve(metrics["export"]["path"], SERVING_TEXTS)["probabilities"],
                                  serve(first_metrics["export"]["path"], SERVING_TEXTS)["probabilities"])


# The other tokenizer, XLA, mixed precision, resume, mirrored.

@pytest.mark.integration  # The shared AG News files and the packaged all-MiniLM-L6-v2 weights.
@pytest.mark.slow
def test_wordpiece_with_pretrained_embeddings_end_to_end(data_dir, tmp_path):
    """The default configuration on the real files, shrunk to 24 training and 16 evaluation rows and a tiny model:
    this pipeline's real-data smoke."""
    metrics = pipeline.main([
        "--data-dir", data_dir, "--output-dir", str(tmp_path / "run"), "--export-dir", str(tmp_path / "export"),
        "--max-train-examples", "24", "--max-eval-examples", "16", "--embedding-dim", "8", "--num-heads", "2",
        "--intermediate-dim", "8", "--sequence-length", "32", "--epochs", "1", "--batch-size", "8"])
    config = read_json(tmp_path / "run" / "config.json")
    assert config["model"]["tokenizer"] == "wordpiece" and config["model"]["pretrained_embeddings"]
    assert config["model"]["ngram_buckets"] > 0  # The defaults add the bag of hashed bigrams.
    # ... and distil the packaged MiniLM's sentence embeddings of the training texts.
    assert config["training"]["distillation_weight"] == 3.0 and metrics["teacher_seconds"] > 0
    assert np.load(tmp_path / "run" / "teacher" / "train.npz")["features"].shape == (24, 384)
    assert metrics["train_examples"] == 24 and metrics["test"]["num_examples"] == 16
    path = metrics["export"]["path"]
    assert os.listdir(os.path.join(path, "assets")) == ["vocab.txt"]
    # The WordPiece graph holds tensorflow-text ops: a server must `import tensorflow_text` before loading.
    out = run_fresh_python("""
        import json, sys
        import tensorflow as tf

        try:
            tf.saved_model.load(sys.argv[1])
        except Exception as e:
            print("without tensorflow_text:", str(e).splitlines()[0])
        import tensorflow_text  # noqa: F401  (registers the ops)
        serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
        with open(sys.argv[2], encoding="utf-8") as f:
            outputs = serve(text=tf.constant(json.load(f)))
        assert "tfnlp" not in sys.modules
        print(json.dumps(outputs["probabilities"].numpy().tolist()))
    """, path, write_texts(tmp_path), cwd=tmp_path)
    assert "without tensorflow_text: Op type not registered" in out
    probabilities = np.array(json.loads(out.strip().splitlines()[-1]), np.float32)
    check_probabilities(probabilities, len(SERVING_TEXTS))
    served = serve(path, SERVING_TEXTS)
    np.testing.assert_allclose(probabilities, served["probabilities"], atol=1e-6)
    # Cut: more than the 30 pieces between [CLS] and [SEP], as HF's fast tokenizer of the same model counts them
    # ("x" * 100,000 is one [UNK]; the Russian text is 31 one-letter pieces; "stocks fell " * 8,000 is 16,000).
    from transformers import BertTokenizerFast

    from tfnlp.pretrained import resolve_pretrained

    hf_tokenizer = BertTokenizerFast.from_pretrained(resolve_pretrained())
    pieces = [len(hf_tokenizer.tokenize(text)) for text in SERVING_TEXTS]
    assert served["truncated"].tolist() == [count > 30 for count in pieces]
    assert sum(served["truncated"].tolist()) == 2


def test_the_lesson_args_file_sets_every_value_it_holds():
    """The lesson's arguments file parses with the script's own options (the large tier trains with it)."""
    lesson_file = os.path.join(REPO, "pipelines", "configs", "agnews_transformer_lesson.json")
    parsed = parse_arguments("", ag_news.DataArguments, recipe.ModelArguments, recipe.TrainingArguments,
                             argv=["--args-file", lesson_file])
    arguments = {name: value for args in parsed for name, value in dataclasses.asdict(args).items()}
    assert {name: arguments[name] for name in read_json(lesson_file)} == read_json(lesson_file)


@pytest.mark.large  # A whole run under XLA (its arguments file: above; XLA training: test_transformer_classifier).
def test_jit_compile_run_of_the_lesson_args_file_with_overrides(ag_news_root, tmp_path):
    lesson_file = os.path.join(REPO, "pipelines", "configs", "agnews_transformer_lesson.json")
    overrides = {"vocabulary_size": 50, "sequence_length": 32, "epochs": 1, "batch_size": 8, "validation_size": 8}
    argv = [f"--{name.replace('_', '-')}={value}" for name, value in overrides.items()]
    metrics = pipeline.main(["--args-file", lesson_file, *argv, "--jit-compile", "--data-dir", ag_news_root,
                             "--output-dir", str(tmp_path / "run"), "--export-dir", ""])
    config = read_json(tmp_path / "run" / "config.json")
    arguments = {**config["data"], **config["model"], **config["training"]}
    assert {name: arguments[name] for name in read_json(lesson_file) if name not in overrides} == {
        name: value for name, value in read_json(lesson_file).items() if name not in overrides}
    assert {name: arguments[name] for name in overrides} == overrides  # The command line wins over the file.
    assert config["runtime"]["jit_compile"] is True and arguments["pad_to_sequence_length"] is True
    assert metrics["train_examples"] == 40 and metrics["epochs_run_this_session"] == 1 and "export" not in metrics
    assert 0 <= metrics["test"]["accuracy"] <= 1


@pytest.mark.large
def test_mixed_precision_trains_and_outputs_float32(ag_news_root, tmp_path, monkeypatch):
    built = []
    build_model = pipeline.build_model

    def recording_build_model(*args, **kwargs):
        built.append(build_model(*args, **kwargs))
        built.append([w.numpy().copy() for w in built[0].trainable_weights])
        return built[0]

    monkeypatch.setattr(pipeline, "build_model", recording_build_model)
    metrics = run_pipeline(ag_news_root, tmp_path / "run", "--mixed-precision", export_dir=tmp_path / "export")
    model, initial_weights = built
    assert read_json(tmp_path / "run" / "config.json")["environment"]["compute_dtype"] == "float16"
    assert model.get_layer("transformer_block_0").compute_dtype == "float16"
    assert model.output.dtype == tf.float32
    assert isinstance(model.optimizer, tf_keras.mixed_precision.LossScaleOptimizer)
    assert all(w.dtype == tf.float32 for w in model.trainable_weights)
    assert all(not np.array_equal(w.numpy(), w0) for w, w0 in zip(model.trainable_weights, initial_weights))
    assert all(np.isfinite(float(row["loss"])) for row in read_history(tmp_path / "run"))
    outputs = serve(metrics["export"]["path"], SERVING_TEXTS)
    check_probabilities(outputs["probabilities"], len(SERVING_TEXTS))


class StopAfterEpoch(tf_keras.callbacks.Callback):
    """Interrupts training at the end of an epoch, after the backup and the CSV row are written."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt(f"interrupted after epoch {epoch}")


@pytest.mark.large  # make test resumes a SIGKILLed run (test_training_runtime).
def test_interrupted_run_resumes_from_its_last_epoch(ag_news_root, tmp_path, monkeypatch):
    output_dir = tmp_path / "run"
    callbacks = Runtime.callbacks
    monkeypatch.setattr(Runtime, "callbacks", lambda self, n, **kw: callbacks(self, n, extra=[StopAfterEpoch(1)]))
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(ag_news_root, output_dir, "--epochs", "4")
    assert [row["epoch"] for row in read_history(output_dir)] == ["0", "1"]
    assert not os.path.exists(output_dir / "metrics.json")

    monkeypatch.setattr(Runtime, "callbacks", callbacks)
    metrics = run_pipeline(ag_news_root, output_dir, "--epochs", "4")
    assert [row["epoch"] for row in read_history(output_dir)] == ["0", "1", "2", "3"]
    assert metrics["epochs_run_this_session"] == 2  # Epochs 2 and 3 only: it did not start over.
    assert not os.path.exists(output_dir / "backup" / "chief")


@pytest.mark.large  # The default run (test_wordpiece_...) distils; a plain run resumes above.
def test_distillation_run_resumes_without_encoding_the_texts_again(ag_news_root, tmp_path, monkeypatch,
                                                                   tiny_bert_dir):
    output_dir = tmp_path / "run"
    distill = ["--distillation-weight", "3", "--distillation-teacher", tiny_bert_dir, "--epochs", "3"]
    callbacks = Runtime.callbacks
    monkeypatch.setattr(Runtime, "callbacks", lambda self, n, **kw: callbacks(self, n, extra=[StopAfterEpoch(0)]))
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(ag_news_root, output_dir, *distill)
    teacher = np.load(output_dir / "teacher" / "train.npz")["features"]
    assert teacher.shape == (43, 32)  # The tiny BERT's width, one vector per training text.

    monkeypatch.setattr(Runtime, "callbacks", callbacks)
    trainers = []
    build_trainer = pipeline.build_trainer
    monkeypatch.setattr(pipeline, "build_trainer", lambda *args: trainers.append(build_trainer(*args)) or trainers[-1])
    metrics = run_pipeline(ag_news_root, output_dir, *distill, export_dir=tmp_path / "export")
    assert metrics["teacher_seconds"] == 0.0 and metrics["epochs_run_this_session"] == 2  # Cache and backup reused.
    [trainer] = trainers
    assert isinstance(trainer, SentenceEmbeddingDistiller) and trainer.distillation_weight == 3.0
    assert trainer.teacher_dim == 32 and trainer.feature_layer == "dropout"
    history = read_history(output_dir)
    assert [row["epoch"] for row in history] == ["0", "1", "2"]
    assert all(0 <= float(row["distillation_loss"]) <= 2 for row in history)
    assert "val_distillation_loss" not in history[0]
    # The export is the classifier alone: the distillation head stays behind.
    path = metrics["export"]["path"]
    exported = [tuple(shape) for name, shape in tf.train.list_variables(os.path.join(path, "variables", "variables"))
                if name.startswith("model/variables/")]
    assert sorted(exported) == sorted(tuple(w.shape) for w in trainer.classifier.weights)
    assert len(trainer.trainable_weights) == len(trainer.classifier.trainable_weights) + 2  # The head: kernel, bias.
    outputs = serve(path, SERVING_TEXTS)
    check_probabilities(outputs["probabilities"], len(SERVING_TEXTS))


@pytest.mark.large
def test_a_run_reading_the_cached_teacher_embeddings_repeats_the_run_that_computed_them(ag_news_root, tmp_path,
                                                                                        tiny_bert_dir):
    distill = ["--distillation-teacher", tiny_bert_dir, "--epochs", "1", "--seed", "3"]
    first = run_pipeline(ag_news_root, tmp_path / "first", *distill, "--distillation-weight", "3")
    assert first["teacher_seconds"] > 0  # The teacher BERT was built and ran (drawing random numbers).
    os.makedirs(tmp_path / "second" / "teacher")
    shutil.copy(tmp_path / "first" / "teacher" / "train.npz", tmp_path / "second" / "teacher" / "train.npz")
    second = run_pipeline(ag_news_root, tmp_path / "second", *distill, "--distillation-weight", "3")
    assert second["teacher_seconds"] == 0.0
    assert read_history(tmp_path / "second")[0]["loss"] == read_history(tmp_path / "first")[0]["loss"]
    assert second["test"]["confusion_matrix"] == first["test"]["confusion_matrix"]


@pytest.mark.large
def test_mirrored_strategy_on_two_logical_cpus(ag_news_root, tmp_path, tiny_bert_dir):
    out = run_fresh_python("""
        import json, sys
        import tfnlp
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from pipelines import agnews_transformer as pipeline

        built = []
        build_model = pipeline.build_model
        pipeline.build_model = lambda *args, **kwargs: built.append(build_model(*args, **kwargs)) or built[-1]
        metrics = pipeline.main(sys.argv[1:])
        strategy = built[0].distribute_strategy
        assert isinstance(strategy, tf.distribute.MirroredStrategy) and strategy.num_replicas_in_sync == 2
        assert all(isinstance(w, tf.distribute.DistributedValues) for w in built[0].weights)
        print(json.dumps(metrics["test"]["accuracy"]))
    """, "--data-dir", ag_news_root, "--output-dir", tmp_path / "run", "--export-dir", "", "--strategy", "mirrored",
        *TINY, "--distillation-weight", "1", "--distillation-teacher", tiny_bert_dir, cwd=REPO,
        env={"PYTHONPATH": REPO})
    assert 0 <= json.loads(out.strip().splitlines()[-1]) <= 1
    environment = read_json(tmp_path / "run" / "config.json")["environment"]
    assert (environment["strategy"], environment["replicas"]) == ("MirroredStrategy", 2)
    history = read_history(tmp_path / "run")
    assert [row["epoch"] for row in history] == ["0", "1"]
    assert all(0 <= float(row["distillation_loss"]) <= 2 for row in history)  # With the teacher, on 2 replicas.


# The data path: texts -> ids once, then batches padded to their longest text.

def test_encode_texts_and_batch_by_length_pad_each_batch_to_its_longest():
    texts = ["a", "b b", "c c c", "d d d d d d d d d d"]
    table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(["a", "b", "c", "d"], [1, 2, 3, 4]), 0)
    encoder = lambda batch: table.lookup(tf.strings.split(batch)).to_tensor(0)  # noqa: E731  (ids padded with 0)
    dataset = tf.data.Dataset.from_tensor_slices((texts, [0, 1, 2, 3]))
    ids = encode_texts(dataset, encoder, max_length=5, batch_size=3)
    assert ids.element_spec[0] == tf.TensorSpec([None], tf.int32)
    examples = [(row.numpy().tolist(), int(label)) for row, label in ids]
    assert examples == [([1], 0), ([2, 2], 1), ([3, 3, 3], 2), ([4] * 5, 3)]  # Unpadded, cut to 5 ids.
    batches = [(x.numpy(), y.numpy()) for x, y in batch_by_length(ids, 2, boundaries=(3,))]
    assert [x.tolist() for x, _ in batches] == [[[1, 0], [2, 2]], [[3, 3, 3, 0, 0], [4, 4, 4, 4, 4]]]
    assert [y.tolist() for _, y in batches] == [[0, 1], [2, 3]]


@pytest.mark.parametrize("sequence_length, jit_compile, widths", [
    (450, True, [15, 450]),    # Padded to bucket bounds for XLA; texts longer than the last default bound fit.
    (450, False, [3, 450]),    # Padded to each batch's longest text.
    (100, True, [15, 100]),
])
def test_make_batches_cut_and_pad_long_texts(sequence_length, jit_compile, widths):
    texts = tf.data.Dataset.from_tensor_slices((["stocks fell again", "stocks " * 500], [2, 2]))
    vectorizer = build_text_vectorizer(["stocks fell again"], vocabulary_size=10)
    model_args, train_args = parse_arguments("", recipe.ModelArguments, recipe.TrainingArguments,
                                             argv=["--sequence-length", str(sequence_length), "--batch-size", "1"])
    runtime = types.SimpleNamespace(args=types.SimpleNamespace(seed=1, jit_compile=jit_compile))
    batches = recipe.make_batches({"test": texts}, vectorizer, model_args, train_args, runtime)["test"]
    assert sorted(ids.shape[1] for ids, _ in batches) == widths


def test_batch_by_length_fixed_shapes_and_seeded_shuffle():
    ids = tf.data.Dataset.from_tensor_slices(tf.ragged.constant([[1] * n for n in range(1, 13)])).map(
        lambda row: (row, tf.size(row)))
    padded = list(batch_by_length(ids, 4, boundaries=(5, 9, 17), pad_to_boundary=True, drop_remainder=True))
    assert sorted(x.shape[1] for x, _ in padded) == [4, 8, 16]
    assert all(x.shape[0] == 4 for x, _ in padded)

    def order(seed):
        return [y.numpy().tolist() for _, y in batch_by_length(ids, 3, shuffle=True, seed=seed, boundaries=(20,))]
    assert order(1) == order(1)
    assert sorted(sum(order(1), [])) == list(range(1, 13))
