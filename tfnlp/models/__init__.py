"""Model builders: the lesson's custom Transformer text classifier."""

from tfnlp.models.transformer_classifier import build_text_vectorizer, build_transformer_classifier

__all__ = ["build_text_vectorizer", "build_transformer_classifier"]
