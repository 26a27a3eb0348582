"""Keras layers of the custom Transformer: embedding, encoder block, masked pooling, n-gram bag.

Each layer is registered for deserialization under the ``tfnlp`` package, so
models that contain them reload with `tf_keras.models.load_model` without
``custom_objects``.
"""

from tfnlp.layers.hashed_ngram_bag import HashedNgramBag
from tfnlp.layers.masked_mean_pooling import MaskedMeanPooling
from tfnlp.layers.position_embedding import PositionEmbedding
from tfnlp.layers.token_and_position_embedding import TokenAndPositionEmbedding
from tfnlp.layers.transformer_block import TransformerBlock

__all__ = ["HashedNgramBag", "MaskedMeanPooling", "PositionEmbedding", "TokenAndPositionEmbedding", "TransformerBlock"]
