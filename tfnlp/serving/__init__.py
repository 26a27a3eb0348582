"""SavedModel export in TF Serving's layout, with signatures that take raw text."""

from tfnlp.serving.export import export_saved_model, next_version, reload_smoke_check
from tfnlp.serving.text_classifier_module import TextClassifierModule

__all__ = ["TextClassifierModule", "export_saved_model", "next_version", "reload_smoke_check"]
