"""Model builders: the lesson's custom Transformer text classifier and its distillation trainer, and the TF-Hub
BERT classifier."""

from tfnlp.models.bert_token_classifier import build_bert_token_classifier, token_classifier_model
from tfnlp.models.hub_bert_classifier import (LESSON_ENCODER_HANDLE, LESSON_PREPROCESS_HANDLE,
                                              build_encoder_classifier, build_hub_bert_classifier, classifier_head,
                                              pooled_output_model)
from tfnlp.models.sentence_embedding_distiller import SentenceEmbeddingDistiller
from tfnlp.models.transformer_classifier import build_text_vectorizer, build_transformer_classifier

__all__ = ["LESSON_ENCODER_HANDLE", "LESSON_PREPROCESS_HANDLE", "SentenceEmbeddingDistiller", "build_bert_token_classifier",
           "token_classifier_model",
           "build_encoder_classifier", "build_hub_bert_classifier", "build_text_vectorizer", "build_transformer_classifier", "classifier_head",
           "pooled_output_model"]
