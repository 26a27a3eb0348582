"""tfnlp: Keras/TensorFlow NLP pipelines from the lesson "Attention mechanisms and transformers".

Importing this package selects Keras 2 (``tf_keras``) for TensorFlow before
TensorFlow is imported (see `tfnlp._keras`), and quiets TensorFlow's C++ logs
unless ``TF_CPP_MIN_LOG_LEVEL`` is set or ``--verbose`` is on the command line
(see `tfnlp._native_logs`). On Python 3.12 and 3.13 releases whose zipfile
misreads stored members (CPython gh-127847), it fixes that, so that ``.keras``
files load (see `tfnlp._zipfile_seek`).

Each package imports only from the ones below it (`tfnlp._layering`); bottom to top: utils; pretrained; layers,
text and tagging; data; hub; models; plots; training and serving side by side, neither importing the other.
"""

from tfnlp import _native_logs
from tfnlp import _keras  # noqa: F401  (must run before TensorFlow is imported)
from tfnlp import _zipfile_seek

_native_logs.quiet_native_logs()
_zipfile_seek.fix_stored_member_seek()

__version__ = "0.1.0"
