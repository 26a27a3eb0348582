"""Named-entity scores: precision, recall and F1 per entity type, as grouped bars."""

import numpy as np

from tfnlp.plots.png import save_figure

SCORES = ("precision", "recall", "f1")


def plot_entity_scores(splits, path, *, title=None):
    """Draws one panel per split: precision, recall and F1 bars for each entity type, and writes a PNG.

    Args:
        splits: dict. Split name (e.g. ``"validation"``, ``"test"``) -> seqeval-style scores: ``precision``,
            ``recall``, ``f1`` (all entities) and ``per_type`` = {type: {"precision", "recall", "f1",
            "support"}}, ``support`` being the number of true entities of the type: the figures of
            `tfnlp.training.ner_metrics.entity_report`.
        path: str. The PNG to write (atomically).
        title: str or None. Figure title.

    Returns:
        str. ``path``. The PNG stores what it shows, ``{split: {type: {"precision", "recall", "f1", "support"}}}``,
        all entities under ``"ALL"`` (their support is the sum of the types').

    Raises:
        ValueError: no splits, a split without ``per_type`` figures, or a type without its ``support``.

    Example:
    >>> import os, tempfile
    >>> from tfnlp.training.ner_metrics import entity_report
    >>> scores = entity_report([["B-PER", "O"], ["B-PER"]], [["B-PER", "B-PER"], ["B-PER"]])
    >>> path = plot_entity_scores({"test": scores}, os.path.join(tempfile.mkdtemp(), "entities.png"))
    >>> from tfnlp.plots.png import read_plot_data
    >>> read_plot_data(path)["test"]["PER"]
    {'f1': 0.8, 'precision': 0.6666666666666666, 'recall': 1.0, 'support': 2}
    """
    from matplotlib.figure import Figure  # No pyplot: no global state, no display needed.

    if not splits:
        raise ValueError("no splits to draw")
    figure = Figure(figsize=(6.5 * len(splits), 4.0), layout="constrained")
    figure.suptitle(title or "entity scores per type")
    axes = figure.subplots(1, len(splits), squeeze=False)[0]
    drawn = {}
    width = 0.8 / len(SCORES)
    for axis, (split, scores) in zip(axes, splits.items()):
        per_type = dict(scores.get("per_type") or {})
        if not per_type:
            raise ValueError(f"{split}: no per_type scores to draw")
        for name, values in per_type.items():
            if "support" not in values:
                raise ValueError(f"{split}: per_type {name} has no 'support' (the number of its entities, as "
                                 f"tfnlp.training.ner_metrics.entity_report gives it)")
        rows = {name: {**{score: float(values[score]) for score in SCORES}, "support": int(values["support"])}
                for name, values in sorted(per_type.items())}
        rows["ALL"] = {**{score: float(scores[score]) for score in SCORES},
                       "support": sum(row["support"] for row in rows.values())}
        labels = [f"{'all' if name == 'ALL' else name}\n({row['support']})" for name, row in rows.items()]
        positions = np.arange(len(rows))
        for k, score in enumerate(SCORES):
            values = [row[score] for row in rows.values()]
            bars = axis.bar(positions + (k - 1) * width, values, width, label=score, color=f"C{k}")
            axis.bar_label(bars, labels=[f"{value:.2f}" for value in values], fontsize=6, padding=1)
        axis.set_xticks(positions, labels, fontsize=8)
        axis.set_ylim(0, 1.2)  # Room for the legend above the bars.
        axis.set_title(f"{split}: F1 {rows['ALL']['f1']:.4f} (entities of each type in brackets)", fontsize=10)
        axis.grid(axis="y", alpha=0.3)
        axis.legend(fontsize=8, loc="upper center", ncols=3)
        drawn[split] = rows
    return save_figure(figure, path, drawn)
