"""Training curves: each loss and metric per epoch, on training and validation data; and runs compared."""

import math

from tfnlp.plots.png import save_figure

# history.csv columns that are not curves of the model's quality.
NOT_CURVES = frozenset({"epoch", "learning_rate", "lr", "train_seconds", "examples_per_second"})


def curve_names(history):
    """The metrics of ``history`` to draw (``loss`` first), each once whether or not it has a ``val_`` twin."""
    names = []
    for name in history:
        base = name[4:] if name.startswith("val_") else name
        if base not in NOT_CURVES and base not in names:
            names.append(base)
    return sorted(names, key=lambda name: (name != "loss", names.index(name)))


def plot_training_curves(history, path, *, title=None, columns=2):
    """Draws one panel per metric, training and validation values per epoch, and writes it as a PNG.

    Args:
        history: dict. Column name -> list of per-epoch values, as in ``history.csv``
            (``loss``, ``val_loss``, ``accuracy``...); ``epoch`` (0-based) gives the x values.
        path: str. The PNG to write (atomically).
        title: str or None. Figure title.
        columns: int. Panels per row.

    Returns:
        str. ``path``. The PNG stores ``history``'s drawn columns (`tfnlp.plots.png.read_plot_data`).

    Example:
    >>> import os, tempfile
    >>> history = {"epoch": [0, 1], "loss": [1.2, 0.8], "val_loss": [1.0, 0.9], "accuracy": [0.5, 0.7]}
    >>> path = plot_training_curves(history, os.path.join(tempfile.mkdtemp(), "curves.png"))
    >>> from tfnlp.plots.png import read_plot_data
    >>> read_plot_data(path)["val_loss"]
    [1.0, 0.9]
    """
    from matplotlib.figure import Figure  # No pyplot: no global state, no display needed.

    names = curve_names(history)
    if not names:
        raise ValueError(f"no loss or metric columns to draw among {sorted(history)}")
    length = max(len(values) for values in history.values())
    epochs = [int(epoch) + 1 for epoch in history.get("epoch", range(length))]
    columns = max(1, min(columns, len(names)))
    rows = math.ceil(len(names) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.2 * rows + 0.4), layout="constrained")
    figure.suptitle(title or "training curves")
    axes = figure.subplots(rows, columns, squeeze=False)
    drawn = {"epoch": epochs}
    for index, axis in enumerate(axes.flat):
        if index >= len(names):
            axis.set_axis_off()
            continue
        name = names[index]
        for column, label, style in ((name, "training", "o-"), ("val_" + name, "validation", "s--")):
            values = history.get(column)
            if values:
                axis.plot(epochs[:len(values)], values, style, label=label, markersize=3)
                drawn[column] = list(values)
        axis.set_title(name.replace("_", " "))
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
        if len(epochs) <= 20:
            axis.set_xticks(epochs)
    return save_figure(figure, path, drawn)


def plot_curve_comparison(histories, path, *, names=None, title=None):
    """Draws several runs' curves on shared panels (validation solid, training dashed) and writes a PNG.

    Args:
        histories: dict. Run label -> history (as `plot_training_curves` takes).
        path: str. The PNG to write (atomically).
        names: sequence of str or None. Metrics to draw (default: every metric of any run, ``loss`` first,
            at most four).
        title: str or None. Figure title.

    Returns:
        str. ``path``. The PNG stores ``{run: {column: values}}`` for the drawn columns.
    """
    from matplotlib.figure import Figure

    if not histories:
        raise ValueError("no runs to compare")
    if names is None:
        names = []
        for history in histories.values():
            names.extend(name for name in curve_names(history) if name not in names)
        names = sorted(names, key=lambda name: (name != "loss", names.index(name)))[:4]
    if not names:
        raise ValueError("the runs have no loss or metric columns to draw")
    figure = Figure(figsize=(4.8 * len(names), 3.8), layout="constrained")
    figure.suptitle(title or "runs compared (validation solid, training dashed)")
    axes = figure.subplots(1, len(names), squeeze=False)[0]
    colors = [f"C{i % 10}" for i in range(len(histories))]
    drawn = {}
    for axis, name in zip(axes, names):
        for color, (label, history) in zip(colors, histories.items()):
            length = max((len(values) for values in history.values()), default=0)
            epochs = [int(epoch) + 1 for epoch in history.get("epoch", range(length))]
            for column, style, suffix in (("val_" + name, "-", ""), (name, "--", " (training)")):
                values = history.get(column)
                if values:
                    axis.plot(epochs[:len(values)], values, style, color=color, label=label + suffix,
                              marker="o", markersize=3)
                    drawn.setdefault(label, {})[column] = list(values)
        axis.set_title(name.replace("_", " "))
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    return save_figure(figure, path, drawn)
