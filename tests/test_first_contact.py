"""A fit script as a new user meets it, run as a command in a fresh process: offline without data, with bad
arguments or files, its terminal output, killed outright (SIGKILL) at each stage and started again, and the
installed package from a folder outside the repository.

Every run uses tiny fixtures (48 training rows, an 8-wide Transformer, a tiny random BERT as teacher). The kills
at every stage are in the large tier (`make test-all`); `make test` keeps one real SIGKILL and resume, of the
shared runtime (tests/test_training_runtime.py).
"""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from helpers import topic_rows, write_ag_news_folder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--tokenizer", "text_vectorization", "--no-pretrained-embeddings", "--embedding-dim", "8",
        "--num-heads", "2", "--intermediate-dim", "8", "--sequence-length", "32", "--epochs", "2",
        "--batch-size", "8", "--distillation-weight", "0"]
# What the frameworks print unless told not to (each seen in a default `make train` before this was fixed).
NOISE = ("cuda", "cpu_feature_guard", "oneDNN", "OUT_OF_RANGE", "Sharding callback", "unsupported characters",
         "absl", "Some layers", "deprecated", "Epoch 1/", "ms/step", "Traceback", 'Model: "', "Total params")
TIME = re.compile(r"^\d\d:\d\d:\d\d ")

# Runs a fit script as `python -m` would, after arranging to SIGKILL itself at one stage (argv[1]).
KILL_AT_STAGE = """
import os, signal, sys

import tfnlp
import numpy as np
import tensorflow as tf
import tf_keras

from tfnlp.data import batching
from tfnlp.training import evaluation, runtime

stage = sys.argv.pop(1)
module = sys.argv.pop(1)


def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)  # No clean-up of any kind, as an OOM kill or a power cut.


if stage == "tokenization":  # While the first split is tokenized, batched and cached.
    batching.with_known_cardinality = die
elif stage == "teacher":  # While the cache file of the teacher's embeddings is being written.
    savez = np.savez

    def savez_then_die(file, **arrays):
        savez(file, **arrays)
        file.flush()
        die()

    np.savez = savez_then_die
elif stage == "training":  # After the first epoch (and its backup).
    class DieAfterFirstEpoch(tf_keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            die()

    callbacks = runtime.Runtime.callbacks
    runtime.Runtime.callbacks = lambda self, *args, **kwargs: callbacks(self, *args, **kwargs) + [DieAfterFirstEpoch()]
elif stage == "testing":  # Training done, evaluating on test.
    evaluation.evaluate_classifier = die
elif stage == "export":  # The SavedModel written to its hidden temporary folder, not yet renamed.
    save = tf.saved_model.save

    def save_then_die(*args, **kwargs):
        save(*args, **kwargs)
        die()

    tf.saved_model.save = save_then_die
else:
    raise SystemExit(f"unknown stage {stage}")

import importlib
importlib.import_module(module).cli.run(importlib.import_module(module).main)
"""


def script_env(tmp_path, **extra):
    """The environment of a user's shell: no TF_CPP_MIN_LOG_LEVEL, no TFNLP_DATA_DIR, tfds and HF caches empty."""
    env = {key: value for key, value in os.environ.items() if key not in ("TF_CPP_MIN_LOG_LEVEL", "TFNLP_DATA_DIR")}
    env.update(PYTHONPATH=REPO, TFDS_DATA_DIR=str(tmp_path / "tensorflow_datasets"), HF_HOME=str(tmp_path / "hf"))
    env.update(extra)
    return env


def run_script(module, *args, env, cwd, stage=None, timeout=600):
    """Runs ``python -m <module> args`` (or, with ``stage``, the same killing itself there); returns the result."""
    if stage is None:
        command = [sys.executable, "-m", module, *map(str, args)]
    else:
        command = [sys.executable, "-c", KILL_AT_STAGE, stage, module, *map(str, args)]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    result.seconds = time.perf_counter() - start
    return result


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def epochs_in_history(output_dir):
    with open(os.path.join(output_dir, "history.csv"), newline="") as f:
        return [row["epoch"] for row in csv.DictReader(f)]


# 1. Offline, without local data: every fit script stops at once with one line.

@pytest.mark.parametrize("module", ["pipelines.agnews_transformer",
                                    pytest.param("pipelines.agnews_hub_bert", marks=pytest.mark.large)])
def test_offline_without_local_data_the_script_stops_at_once_with_one_line(tmp_path, module):
    # The proxy every download goes through refuses connections: as offline, without depending on this machine.
    env = script_env(tmp_path, https_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", no_proxy="",
                     NO_PROXY="")
    result = run_script(module, "--output-dir", tmp_path / "run", "--export-dir", "", env=env, cwd=tmp_path,
                        timeout=240)
    assert result.returncode == 1, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if not TIME.match(line)]
    assert errors == [result.stderr.splitlines()[-1]]  # One line, no traceback, no retries, no progress bars.
    assert errors[0].startswith("error: AG News: no local folder is set (data_dir, $TFNLP_DATA_DIR), tfds "
                                f"'ag_news_subset' is not prepared in {tmp_path / 'tensorflow_datasets'}, and "
                                "https://drive.google.com/")
    assert "cannot be reached (127.0.0.1:9: Connection refused)" in errors[0]
    assert "set TFNLP_DATA_DIR=... to a folder holding ag_news/train.csv, ag_news/test.csv" in errors[0]
    assert not (tmp_path / "tensorflow_datasets").exists()  # Nothing left in the tfds folders.
    print(f"{module}: failed offline in {result.seconds:.1f} s")


# 2. Errors a person can read.

@pytest.mark.large  # A fresh process; the scripts' argument checks run in-process in make test.
def test_an_impossible_argument_combination_is_one_line_before_tensorflow_builds_anything(tmp_path, ag_news_root):
    result = run_script("pipelines.agnews_transformer", "--data-dir", ag_news_root, "--output-dir", tmp_path / "run",
                        "--num-heads", "3", env=script_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == ("error: --num-heads (3) must divide --embedding-dim (32): each head attends over "
                             "embedding-dim / num-heads dimensions (see --help)\n")
    assert not (tmp_path / "run").exists()


def test_a_bad_data_file_is_one_line_and_debug_shows_the_traceback(tmp_path):
    root = write_ag_news_folder(tmp_path / "data", [], topic_rows(4, seed=1))
    with open(os.path.join(root, "ag_news", "train.csv"), "w", encoding="utf-8") as f:
        f.write('"Class Index","Title","Description"\n')
    args = ["pipelines.agnews_transformer", "--data-dir", root, "--output-dir", tmp_path / "run", *TINY]
    result = run_script(*args, env=script_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    train_csv = os.path.join(root, "ag_news", "train.csv")
    assert result.stderr.splitlines()[-1] == f"error: {train_csv}: no examples: the file holds only a header line"
    assert all(TIME.match(line) for line in result.stderr.splitlines()[:-1])  # Nothing but log lines before it.
    debug = run_script(*args, "--debug", env=script_env(tmp_path), cwd=tmp_path)
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.splitlines()[-1] == (f"tfnlp.data.errors.DataFormatError: {train_csv}: no examples: the "
                                             f"file holds only a header line")


@pytest.mark.parametrize("argv, message", [
    (["--encoder", "/no/such/encoder", "--preprocess", "https://tfhub.dev/x/1"],
     "--encoder /no/such/encoder: no such folder (expected a TF-Hub URL or a local SavedModel folder)"),
    (["--encoder", "{tmp}", "--preprocess", "https://tfhub.dev/x/1"],
     "--encoder {tmp}: no saved_model.pb in the folder (expected a SavedModel)"),
    (["--encoder", "https://tfhub.dev/e/1", "--preprocess", "https://tfhub.dev/p/1", "--pretrained", "bert-base"],
     "--pretrained builds the default artifacts; with --encoder and --preprocess it is unused"),
    (["--pretrained", "/no/such/bert"],
     "--pretrained /no/such/bert: no such folder (expected a local HF BERT folder or a Hugging Face Hub name)"),
    (["--skip-frozen-stage", "--skip-fine-tuning"], "--skip-frozen-stage and --skip-fine-tuning together leave "
                                                    "nothing to train"),
])
def test_tf_hub_script_rejects_arguments_that_cannot_work_when_parsing(tmp_path, capsys, argv, message):
    from pipelines import agnews_hub_bert

    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    with pytest.raises(SystemExit) as exit_info:
        agnews_hub_bert.main(["--output-dir", str(tmp_path / "run"), *argv])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"error: {message.replace('{tmp}', str(tmp_path))} (see --help)\n"
    assert not (tmp_path / "run").exists()


@pytest.mark.large  # A fresh process; in make test, cli.run(predict.main) runs in-process (test_serving_rest.py).
def test_a_serving_tool_ends_as_a_fit_script_does_one_line_and_exit_code_1(tmp_path):
    result = run_script("pipelines.serving.predict", "--model", tmp_path / "missing", "a text", env=script_env(tmp_path),
                        cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == f"error: {tmp_path / 'missing'}: no such folder\n"


# 3. Quiet, useful terminal output.

@pytest.mark.large  # A whole fit run in a fresh process, to read its terminal output.
def test_default_output_is_configuration_progress_epochs_results_and_files(tmp_path, ag_news_root):
    result = run_script("pipelines.agnews_transformer", "--data-dir", ag_news_root, "--output-dir", tmp_path / "run",
                        "--export-dir", tmp_path / "export", *TINY, env=script_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = (result.stdout + result.stderr).splitlines()
    assert all(TIME.match(line) for line in lines), lines  # Only our own lines: no framework output at all.
    assert not [line for line in lines if any(noise in line for noise in NOISE)]
    messages = [line[9:] for line in lines]
    assert messages[0].startswith(f"configuration in {tmp_path / 'run' / 'config.json'}: TensorFlow ")
    assert messages[1].startswith(f"options: --data-dir {ag_news_root} --tokenizer text_vectorization ")
    # Lines inside an epoch come every 30 s (a busy machine can take that long over these tiny epochs).
    inside = [m for m in messages if re.match(r"epoch \d/2: (validation )?batch \d", m)]
    assert [m.split(":")[0] for m in messages if m.startswith("epoch ") and m not in inside] == ["epoch 1/2",
                                                                                                  "epoch 2/2"]
    assert any(m.startswith("adapting the TextVectorization vocabulary: 43 texts in ") and m.endswith(" texts/s)")
               for m in messages)
    assert any(m.startswith("test accuracy ") for m in messages)
    assert messages[-1] == (f"wrote {tmp_path / 'run' / 'metrics.json'}; SavedModel: "
                            f"{tmp_path / 'export' / '1'}")
    assert len(lines) - len(inside) <= 16, "\n".join(lines)


# 4. Resume from any kill.

@pytest.mark.large
def test_killed_at_each_stage_the_run_finishes_without_training_twice(tmp_path, ag_news_root):
    run, export = tmp_path / "run", tmp_path / "export"
    args = ["--data-dir", ag_news_root, "--output-dir", run, "--export-dir", export, *TINY]
    env = script_env(tmp_path)

    def killed_at(stage, *extra):
        result = run_script("pipelines.agnews_transformer", *args, *extra, env=env, cwd=tmp_path, stage=stage)
        assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
        return result.stderr

    killed_at("tokenization")
    assert not (run / "history.csv").exists() and not (run / "training_state.json").exists()

    killed_at("training")
    assert epochs_in_history(run) == ["0"]
    state = read_json(run / "training_state.json")
    assert state["status"] == "training" and [session["epochs"] for session in state["sessions"]] == [1]

    err = killed_at("testing", "--verbose")
    assert "resuming from epoch 2 of 2 (1 finished in an earlier session" in err
    assert "Total params" in err and "absl: Sharding callback duration" in err  # --verbose brings them back.
    assert epochs_in_history(run) == ["0", "1"]
    state = read_json(run / "training_state.json")
    assert state["status"] == "finished" and [session["epochs"] for session in state["sessions"]] == [1, 1]
    assert (run / "checkpoints" / "final.index").exists() and not (run / "backup").exists()

    err = killed_at("export")
    assert "training finished in an earlier session (2 epochs" in err and "epoch 1/2" not in err
    [temporary] = os.listdir(export)
    assert re.fullmatch(r"\.1\.[a-z0-9_]{8}\.tmp", temporary)  # The killed export's hidden folder.

    result = run_script("pipelines.agnews_transformer", *args, "--quiet", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    messages = [line[9:] for line in result.stderr.splitlines()]
    assert len(messages) == 2 and messages[0].startswith("test accuracy ") and messages[1].startswith("wrote ")
    assert sorted(os.listdir(export)) == ["1"]  # The killed export's folder is gone; the new export is version 1.
    assert epochs_in_history(run) == ["0", "1"]  # Each epoch trained once over the five sessions.
    metrics = read_json(run / "metrics.json")
    assert metrics["epochs_run_this_session"] == 0 and metrics["resumed_from_epoch"] == 2
    assert metrics["training_sessions"] == 2 and metrics["train_wall_seconds_this_session"] == 0.0
    assert metrics["train_wall_seconds"] == pytest.approx(sum(s["seconds"] for s in state["sessions"]))
    assert metrics["train_wall_seconds"] > 0 and metrics["export"]["path"] == str(export / "1")
    assert 0 <= metrics["test"]["accuracy"] <= 1


@pytest.mark.large
def test_killed_while_caching_the_teacher_embeddings_the_run_finishes_and_leaves_no_temporary(tmp_path, ag_news_root,
                                                                                               tiny_bert_dir):
    run = tmp_path / "run"
    args = ["--data-dir", ag_news_root, "--output-dir", run, "--export-dir", "", *TINY, "--epochs", "1",
            "--distillation-weight", "3", "--distillation-teacher", tiny_bert_dir]
    killed = run_script("pipelines.agnews_transformer", *args, env=script_env(tmp_path), cwd=tmp_path,
                        stage="teacher")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert [name for name in os.listdir(run / "teacher") if name.endswith(".tmp")]  # Left by the kill.
    assert not (run / "teacher" / "train.npz").exists()

    result = run_script("pipelines.agnews_transformer", *args, env=script_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.listdir(run / "teacher") == ["train.npz"]  # The dead writer's temporary file was removed.
    metrics = read_json(run / "metrics.json")
    assert metrics["teacher_seconds"] > 0 and metrics["epochs_run_this_session"] == 1
    assert epochs_in_history(run) == ["0"]


# 5. An installed package.

@pytest.mark.large  # test_docs runs the snippets outside the repository in make test.
def test_docs_snippet_and_fit_script_run_from_outside_the_repository(tmp_path):
    with open(os.path.join(REPO, "docs", "library.md"), encoding="utf-8") as f:  # The README links it.
        library = f.read()
    snippet = re.search(r"## In-graph tokenization\n\n```python\n(.*?)```", library, re.S).group(1)
    check = snippet + "\nimport tfnlp\nprint(tfnlp.__file__, features['input_ids'].shape)\n"
    # Neither the repository on the path nor as the working folder: only the virtualenv's installed tfnlp.
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH",)}
    result = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, f"is tfnlp installed in {sys.prefix}? (`make setup`)\n{result.stderr[-3000:]}"
    location, shape = result.stdout.split()[0], " ".join(result.stdout.split()[1:])
    assert location == os.path.join(REPO, "tfnlp", "__init__.py")  # Editable: the working tree's code.
    assert shape == "(1, 6)"  # [CLS] hello , world ! [SEP]: padded to the longest text of the batch.
    help_text = subprocess.run([sys.executable, "-m", "pipelines.agnews_transformer", "--help"], cwd=tmp_path,
                               env=env, capture_output=True, text=True, timeout=300)
    assert help_text.returncode == 0, help_text.stderr[-3000:]
    assert "--output-dir" in help_text.stdout and "--quiet" in help_text.stdout
