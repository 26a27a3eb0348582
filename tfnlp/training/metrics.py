"""Evaluation figures written to ``metrics.json``."""

import numpy as np


def classification_report(labels, predictions, class_names):
    """Accuracy, per-class precision/recall/F1/support, macro averages and the confusion matrix.

    Args:
        labels: array-like of int. True class ids.
        predictions: array-like of int. Predicted class ids.
        class_names: list of str. Names in class-id order.

    Returns:
        A JSON-ready dict. ``confusion_matrix[i][j]`` counts examples of true class i predicted as j.

    Example:
    >>> classification_report([0, 1, 1], [0, 1, 0], ["a", "b"])["accuracy"]
    0.6666666666666666
    """
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    predictions = np.asarray(predictions, dtype=np.int64).reshape(-1)
    if labels.shape != predictions.shape:
        raise ValueError(f"{labels.size} labels but {predictions.size} predictions")
    n = len(class_names)
    if labels.size and (labels.min() < 0 or labels.max() >= n or predictions.min() < 0 or predictions.max() >= n):
        raise ValueError(f"class ids must lie in 0..{n - 1}")
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    true_positives = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0)
    support = confusion.sum(axis=1)
    precision = np.divide(true_positives, predicted, out=np.zeros(n), where=predicted > 0)
    recall = np.divide(true_positives, support, out=np.zeros(n), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(n), where=(precision + recall) > 0)
    per_class = {
        name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
               "support": int(support[i])}
        for i, name in enumerate(class_names)
    }
    return {
        "accuracy": float(true_positives.sum() / labels.size) if labels.size else float("nan"),
        "num_examples": int(labels.size),
        "per_class": per_class,
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "confusion_matrix": confusion.tolist(),
        "class_names": list(class_names),
    }
