"""tfnlp: Keras/TensorFlow NLP pipelines from the lesson "Attention mechanisms and transformers".

Importing this package selects Keras 2 (``tf_keras``) for TensorFlow before
TensorFlow is imported (see `tfnlp._keras`), and quiets TensorFlow's C++ logs
unless ``TF_CPP_MIN_LOG_LEVEL`` is set or ``--verbose`` is on the command line
(see `tfnlp._native_logs`).
"""

from tfnlp import _native_logs
from tfnlp import _keras  # noqa: F401  (must run before TensorFlow is imported)

_native_logs.quiet_native_logs()

__version__ = "0.1.0"
