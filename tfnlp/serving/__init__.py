"""SavedModel export in TF Serving's layout, with signatures that take raw text."""

from tfnlp.serving.export import (SMOKE_TEXTS, export_saved_model, export_text_classifier, next_version,
                                  reload_smoke_check)
from tfnlp.serving.text_classifier_module import TextClassifierModule

__all__ = ["SMOKE_TEXTS", "TextClassifierModule", "export_saved_model", "export_text_classifier", "next_version",
           "reload_smoke_check"]
