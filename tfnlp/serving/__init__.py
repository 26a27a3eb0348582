"""The serving layer of every export: TF Serving's layout, signatures on raw text, warm-up requests, op audit,
the REST and gRPC request formats, and a loaded model that answers them as the model server does."""

from tfnlp.serving.export import (SMOKE_TEXTS, export_saved_model, export_text_classifier, export_token_classifier,
                                  next_version, reload_smoke_check)
from tfnlp.serving.op_audit import OpAudit, audit_saved_model
from tfnlp.serving.served_model import ServedModel, signature_kind
from tfnlp.serving.ner_predictor import NerPredictor
from tfnlp.serving.text_classifier_module import TextClassifierModule
from tfnlp.serving.token_classifier_module import TokenClassifierModule
from tfnlp.utils.model_folders import ModelFolderError, ModelVersion, list_versions, resolve_model_folder

__all__ = ["ModelFolderError", "ModelVersion", "NerPredictor", "OpAudit", "SMOKE_TEXTS", "ServedModel", "TextClassifierModule",
           "TokenClassifierModule", "export_token_classifier",
           "audit_saved_model", "export_saved_model", "export_text_classifier", "list_versions", "next_version",
           "reload_smoke_check", "resolve_model_folder", "signature_kind"]
