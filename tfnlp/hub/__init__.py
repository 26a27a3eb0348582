"""TF-Hub-format BERT SavedModels built from a local Hugging Face BERT (no tfhub.dev needed)."""

from tfnlp.hub.bert_encoder import ENCODER_INPUTS, bert_encoder_from_pretrained, build_bert_encoder, encoder_model
from tfnlp.hub.bert_preprocessor import BertPreprocessor
from tfnlp.hub.export import (DEFAULT_HUB_DIR, HubArtifacts, export_encoder, export_hub_bert, export_preprocessor,
                              hub_artifact_dirs, is_saved_model)

__all__ = ["BertPreprocessor", "DEFAULT_HUB_DIR", "ENCODER_INPUTS", "HubArtifacts", "bert_encoder_from_pretrained",
           "build_bert_encoder", "encoder_model", "export_encoder", "export_hub_bert", "export_preprocessor",
           "hub_artifact_dirs", "is_saved_model"]
