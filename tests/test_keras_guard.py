"""`import tfnlp` selects Keras 2 (tf_keras), or fails clearly when TensorFlow already runs Keras 3."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code):
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["PYTHONPATH"] = ROOT
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.large  # A fresh process; every other test imports tfnlp first too.
def test_importing_tfnlp_first_makes_tf_keras_the_keras_of_tensorflow():
    result = run_python(
        "import tfnlp, os, tensorflow as tf, tf_keras\n"
        "import tfnlp.data, tfnlp.layers, tfnlp.models, tfnlp.pretrained, tfnlp.serving, tfnlp.text, tfnlp.training\n"
        "assert os.environ['TF_USE_LEGACY_KERAS'] == '1'\n"
        "assert tf.keras.layers.Dense is tf_keras.layers.Dense, tf.keras.layers.Dense\n"
        "print('ok')\n")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")


def test_tensorflow_imported_first_with_keras_3_raises_a_clear_error():
    result = run_python("import tensorflow\nimport tfnlp\n")
    assert result.returncode != 0
    assert "KerasVersionError" in result.stderr
    assert "TF_USE_LEGACY_KERAS" in result.stderr and "Import tfnlp before" in result.stderr


@pytest.mark.large  # A fresh process; the refusal above is make test's.
def test_tensorflow_imported_first_with_the_variable_set_is_accepted():
    result = run_python("import os\nos.environ['TF_USE_LEGACY_KERAS'] = '1'\n"
                        "import tensorflow as tf, tf_keras\nimport tfnlp\n"
                        "assert tf.keras.layers.Dense is tf_keras.layers.Dense\nprint('ok')\n")
    assert result.returncode == 0, result.stderr[-2000:]
