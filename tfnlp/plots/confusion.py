"""A classifier's confusion matrix as an annotated heat map."""

import numpy as np

from tfnlp.plots.png import save_figure


def plot_confusion_matrix(matrix, class_names, path, *, title=None):
    """Draws ``matrix`` (rows: true class, columns: predicted class) with its counts, and writes a PNG.

    Each cell shows its count and, in brackets, its share of the true class (the
    row); the colour is that share, so classes of different sizes compare.

    Args:
        matrix: array-like of int ``[classes, classes]``. ``matrix[i][j]`` counts examples of class i
            predicted as j (`tfnlp.training.metrics.classification_report`'s ``confusion_matrix``).
        class_names: list of str. Names in class-id order.
        path: str. The PNG to write (atomically).
        title: str or None. Figure title (default: the accuracy and number of examples).

    Returns:
        str. ``path``. The PNG stores ``{"confusion_matrix", "class_names"}`` (`tfnlp.plots.png.read_plot_data`).

    Example:
    >>> import os, tempfile
    >>> path = plot_confusion_matrix([[3, 1], [0, 4]], ["a", "b"], os.path.join(tempfile.mkdtemp(), "cm.png"))
    >>> from tfnlp.plots.png import read_plot_data
    >>> read_plot_data(path)["confusion_matrix"]
    [[3, 1], [0, 4]]
    """
    from matplotlib.figure import Figure  # No pyplot: no global state, no display needed.

    counts = np.asarray(matrix, dtype=np.int64)
    n = len(class_names)
    if counts.shape != (n, n):
        raise ValueError(f"the confusion matrix is {counts.shape}, expected ({n}, {n}) for {n} class names")
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    size = max(3.5, 0.9 * n + 2.0)
    figure = Figure(figsize=(size + 1.2, size), layout="constrained")
    axis = figure.subplots()
    image = axis.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(n):
        for j in range(n):
            axis.text(j, i, f"{counts[i, j]}\n({shares[i, j]:.0%})", ha="center", va="center", fontsize=8,
                      color="white" if shares[i, j] > 0.6 else "black")
    axis.set_xticks(range(n), class_names, rotation=30, ha="right")
    axis.set_yticks(range(n), class_names)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    total = int(counts.sum())
    accuracy = np.trace(counts) / total if total else float("nan")
    axis.set_title(title or f"confusion matrix: accuracy {accuracy:.4f} on {total} examples", fontsize=10)
    figure.colorbar(image, ax=axis, shrink=0.8, label="share of the true class")
    return save_figure(figure, path, {"confusion_matrix": counts.tolist(), "class_names": list(class_names)})
