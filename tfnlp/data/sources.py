"""Where a data set comes from: a local folder, or its online catalogue.

Every loader looks for local files first: the ``data_dir`` argument, else the
``TFNLP_DATA_DIR`` environment variable. Either may name the root folder that
holds one sub-folder per data set (``ag_news/``, ``conll2003/``) or the data
set's folder itself. Only when neither is set does a loader go online (tfds or
HF datasets); when that fails it raises `DataSourceUnavailableError`.

Before going online, a loader whose data is not already in the tfds or HF
cache checks that the download host answers (`check_reachable`, a few
seconds at most): offline, it fails at once instead of after minutes of
retries, and leaves nothing behind in the cache folders.
"""

import os

from tfnlp.data.errors import DataFormatError
from tfnlp.utils import network

DATA_DIR_ENV = "TFNLP_DATA_DIR"


class DataSourceUnavailableError(RuntimeError):
    """No local data folder is configured and the online source could not be reached.

    The message is one line telling how to point at local files; loaders raise
    it ``from None`` so no download stack trace buries that line.
    """


def resolve_data_dir(data_dir, subdir, required_files):
    """Returns the local folder holding a data set's files, or None when none is configured.

    Args:
        data_dir: str, os.PathLike or None. Root folder holding ``subdir``, or
            ``subdir`` itself. None falls back to ``$TFNLP_DATA_DIR``.
        subdir: str. The data set's folder name under the root, e.g. ``"ag_news"``.
        required_files: sequence of str. File names that must be in the folder.

    Returns:
        str: ``<root>/<subdir>`` when that folder exists, else ``<root>``; None
        when neither ``data_dir`` nor ``$TFNLP_DATA_DIR`` is set.

    Raises:
        DataFormatError: a folder is configured but lacks a required file
            (line None, the message names the missing file).

    Example:
    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(root, "ag_news"))
    >>> open(os.path.join(root, "ag_news", "test.csv"), "w").close()
    >>> resolve_data_dir(root, "ag_news", ["test.csv"]) == os.path.join(root, "ag_news")
    True
    """
    root = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or None
    if root is None:
        return None
    root = os.fspath(root)
    nested = os.path.join(root, subdir)
    folder = nested if os.path.isdir(nested) else root
    for name in required_files:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise DataFormatError(path, None, f"file not found (expected {subdir}/{name} under the data folder {root})")
    return folder


def unavailable_message(dataset, subdir, files, cause):
    """Returns the one-line message of a `DataSourceUnavailableError`.

    Args:
        dataset: str. Human name of the data set and where it was fetched from.
        subdir: str. The data set's folder name, e.g. ``"ag_news"``.
        files: sequence of str. The files that folder holds.
        cause: Exception or str. Why the online source failed: an exception (the first line of the
            message at the root of its chain is kept, shortened at a word boundary), or a sentence.

    Example:
    >>> unavailable_message("AG News (tfds)", "ag_news", ["train.csv"], OSError("offline"))[:41]
    'AG News (tfds) could not be loaded (OSErr'
    """
    if isinstance(cause, BaseException):
        root = cause
        while root.__cause__ is not None or (root.__context__ is not None and not root.__suppress_context__):
            root = root.__cause__ or root.__context__
        lines = str(root).strip().splitlines() or [""]
        cause = f"{type(cause).__name__}: {_shorten(lines[0])}"
        if root is not cause and type(root) is not type(cause):
            cause += f" ({type(root).__name__})"
    return f"{dataset} could not be loaded ({cause}). {use_local_files(subdir, files)}"


def use_local_files(subdir, files):
    """The sentence of every `DataSourceUnavailableError` that says how to read local files instead."""
    listed = ", ".join(f"{subdir}/{name}" for name in files)
    return (f"Use local files instead: pass data_dir=... or set {DATA_DIR_ENV}=... to a folder holding {listed} "
            f"(fit scripts: --data-dir).")


def check_reachable(dataset, url, subdir, files, tried):
    """Raises `DataSourceUnavailableError` at once when ``url``'s host cannot be reached (`tfnlp.utils.network`).

    Args:
        dataset: str. Human name of the data set, e.g. ``"AG News"``.
        url: str. Where the online source downloads from.
        subdir: str. The data set's local folder name, e.g. ``"ag_news"``.
        files: sequence of str. The files that folder holds.
        tried: str. What was looked for before going online, e.g. "tfds 'ag_news_subset' is not prepared in ...".

    Returns:
        None when the host answers.
    """
    reason = network.unreachable_reason(url)
    if reason is not None:
        raise DataSourceUnavailableError(
            f"{dataset}: no local folder is set (data_dir, ${DATA_DIR_ENV}), {tried}, and {url} cannot be reached "
            f"({reason}). {use_local_files(subdir, files)}")


def _shorten(text, limit=160):
    """``text`` cut to at most ``limit`` characters at a word boundary, with "..." when cut."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:(")
    return cut + " ..."
