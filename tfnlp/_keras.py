"""One Keras for the whole package: Keras 2 (``tf_keras``).

TF-Hub, tf-models-official and the TensorFlow models of HuggingFace
``transformers`` are all written for Keras 2. TensorFlow 2.16+ resolves
``tf.keras`` to Keras 3 unless ``TF_USE_LEGACY_KERAS=1`` is set *before*
TensorFlow is imported, so this module must run before anything imports
TensorFlow. ``import tfnlp`` does that first.
"""

import os
import sys

_LEGACY_VALUES = ("1", "true", "True", "TRUE")


class KerasVersionError(RuntimeError):
    """TensorFlow was imported with Keras 3 before tfnlp could select Keras 2."""


def ensure_legacy_keras():
    """Selects Keras 2 (``tf_keras``) for TensorFlow, or raises a clear error.

    If TensorFlow has not been imported yet, ``TF_USE_LEGACY_KERAS=1`` is set
    and every later ``import tensorflow`` uses ``tf_keras``. If TensorFlow was
    imported already without that variable, Keras 3 may already be bound to
    ``tf.keras``; mixing two Keras versions silently breaks hub layers and HF
    models, so this raises `KerasVersionError` saying how to fix it.
    """
    if "tensorflow" not in sys.modules:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        return
    if os.environ.get("TF_USE_LEGACY_KERAS") in _LEGACY_VALUES:
        return
    raise KerasVersionError(
        "TensorFlow was imported before tfnlp without TF_USE_LEGACY_KERAS=1, so "
        "tf.keras may be Keras 3, but tfnlp (like TF-Hub, tf-models-official and "
        "HuggingFace's TF models) needs Keras 2 (tf_keras). Import tfnlp before "
        "tensorflow, or set os.environ['TF_USE_LEGACY_KERAS'] = '1' before the first "
        "'import tensorflow' (in Colab: at the top of the notebook, then restart "
        "the runtime).")


ensure_legacy_keras()
