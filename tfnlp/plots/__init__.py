"""Pictures: attention heat maps, and the run reports' training curves, confusion matrices and entity scores."""

from tfnlp.plots.attention import plot_attention
from tfnlp.plots.confusion import plot_confusion_matrix
from tfnlp.plots.curves import plot_curve_comparison, plot_training_curves
from tfnlp.plots.entity_scores import plot_entity_scores
from tfnlp.plots.png import read_plot_data

__all__ = ["plot_attention", "plot_confusion_matrix", "plot_curve_comparison", "plot_entity_scores",
           "plot_training_curves", "read_plot_data"]
