"""Writing figures as PNGs atomically, with the plotted numbers stored inside the file."""

import json

from tfnlp.utils import atomic_file

# The PNG text chunk holding the numbers a figure draws (JSON).
DATA_KEY = "tfnlp:data"


def save_figure(figure, path, data=None, dpi=100):
    """Writes a `matplotlib.figure.Figure` to ``path`` as a PNG (atomically), ``data`` stored in a text chunk.

    Storing the plotted numbers inside the picture lets a reader (or a test)
    check what it shows against ``metrics.json`` without reading pixels.

    Args:
        figure: matplotlib.figure.Figure.
        path: str. The PNG to write (a temporary sibling, then renamed).
        data: JSON-serialisable or None. The numbers drawn (`read_plot_data` returns them).
        dpi: int. Resolution.

    Returns:
        str. ``path``.

    Example:
    >>> import os, tempfile
    >>> from matplotlib.figure import Figure
    >>> figure = Figure()
    >>> _ = figure.subplots().plot([1, 2])
    >>> path = save_figure(figure, os.path.join(tempfile.mkdtemp(), "line.png"), {"y": [1, 2]})
    >>> read_plot_data(path)
    {'y': [1, 2]}
    """
    metadata = {"Software": "tfnlp"}
    if data is not None:
        metadata[DATA_KEY] = json.dumps(data, sort_keys=True)
    with atomic_file(path, "wb") as f:
        figure.savefig(f, format="png", dpi=dpi, metadata=metadata)
    return path


def read_plot_data(path):
    """The numbers `save_figure` stored in the PNG ``path`` (None if it holds none)."""
    from PIL import Image  # matplotlib's own dependency.

    with Image.open(path) as image:
        image.load()
        text = getattr(image, "text", {}) or image.info
        value = text.get(DATA_KEY)
    return None if value is None else json.loads(value)
