"""Attention heat maps: one panel per head, the text's word pieces on both axes."""

import math

import numpy as np

from tfnlp.utils import atomic_file


def plot_attention(maps, path, *, layer=-1, heads=None, columns=4, title=None):
    """Draws one layer's attention as a grid of heat maps, one per head, and writes it as a PNG.

    Row ``i`` of a panel is how token ``i`` (the query, on the vertical axis)
    spreads its attention over the tokens on the horizontal axis; each row sums
    to 1. Only the text's own tokens are drawn (no padding).

    Args:
        maps: tfnlp.models.attention_maps.AttentionMaps. One text's tokens and attentions.
        path: str. The PNG to write (atomically: a temporary file, then renamed).
        layer: int. Layer index (0 = the first; negative counts from the last).
        heads: sequence of int or None. Heads to draw (default: all).
        columns: int. Panels per row.
        title: str or None. Figure title (default: the layer).

    Returns:
        str. ``path``.

    Example:
    >>> import os, tempfile
    >>> from tfnlp.models.attention_maps import AttentionMaps
    >>> maps = AttentionMaps(["[CLS]", "hi", "[SEP]"], np.full((1, 2, 3, 3), 1 / 3, np.float32))
    >>> path = plot_attention(maps, os.path.join(tempfile.mkdtemp(), "attention.png"))
    >>> open(path, "rb").read(4)
    b'\\x89PNG'
    """
    from matplotlib.figure import Figure  # No pyplot: no global state, no display needed.

    num_layers, num_heads = maps.attentions.shape[:2]
    if not -num_layers <= layer < num_layers:
        raise ValueError(f"layer must lie in [{-num_layers}, {num_layers - 1}] for a {num_layers}-layer model, "
                         f"got {layer}")
    heads = list(range(num_heads)) if heads is None else list(heads)
    if not heads or min(heads) < 0 or max(heads) >= num_heads:
        raise ValueError(f"heads must be indices in [0, {num_heads - 1}], got {heads}")
    tokens = list(maps.tokens)
    size = len(tokens)
    columns = max(1, min(columns, len(heads)))
    rows = math.ceil(len(heads) / columns)
    panel = max(2.5, 0.16 * size + 1.0)  # Inches: room for one label per token.
    fontsize = max(4.0, min(9.0, 260.0 / max(size, 1)))
    figure = Figure(figsize=(columns * panel, rows * panel + 0.6), layout="constrained")
    shown_layer = layer % num_layers
    figure.suptitle(title or f"layer {shown_layer} of {num_layers}: attention of each token (rows) to every "
                              f"token (columns)")
    axes = figure.subplots(rows, columns, squeeze=False)
    for index, axis in enumerate(axes.flat):
        if index >= len(heads):
            axis.set_axis_off()
            continue
        head = heads[index]
        image = axis.imshow(np.asarray(maps.attentions[shown_layer, head]), cmap="viridis", vmin=0.0,
                            vmax=1.0, interpolation="nearest")
        axis.set_title(f"head {head}", fontsize=fontsize + 1)
        axis.set_xticks(range(size), tokens, rotation=90, fontsize=fontsize)
        axis.set_yticks(range(size), tokens, fontsize=fontsize)
    figure.colorbar(image, ax=axes, shrink=0.6, label="attention weight")
    with atomic_file(path, "wb") as f:
        figure.savefig(f, format="png", dpi=100)
    return path
