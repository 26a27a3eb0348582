"""tfnlp: Keras/TensorFlow NLP pipelines from the lesson "Attention mechanisms and transformers".

Importing this package selects Keras 2 (``tf_keras``) for TensorFlow before
TensorFlow is imported; see `tfnlp._keras`.
"""

from tfnlp import _keras  # noqa: F401  (must run before TensorFlow is imported)

__version__ = "0.1.0"
