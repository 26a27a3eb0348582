"""Atomic output: write to a temporary sibling, then rename into place.

A crash or Ctrl-C in the middle of writing never leaves a half-written file
or folder under the final name, and never destroys what was there before.
"""

import contextlib
import json
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_file(path, mode="wb", encoding=None):
    """Yields a file open on a temporary sibling of ``path``, renamed to ``path`` when the block succeeds.

    Args:
        path: str. Destination file; its folder is created if missing.
        mode: str. "wb" or "w".
        encoding: str or None. Text encoding for "w".

    Example:
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "a.bin")
    >>> with atomic_file(p) as f:
    ...     _ = f.write(b"data")
    >>> open(p, "rb").read()
    b'data'
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; the final file gets the usual permissions
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def atomic_write_text(path, text, encoding="utf-8"):
    """Writes ``text`` to ``path`` atomically (temporary file + ``os.replace``).

    Args:
        path: str. Destination file; its folder is created if missing.
        text: str. Content to write.
        encoding: str. Text encoding.

    Example:
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> atomic_write_text(p, "hello")
    >>> open(p).read()
    'hello'
    """
    with atomic_file(path, "w", encoding=encoding) as f:
        f.write(text)


def atomic_write_json(path, obj, indent=2):
    """Writes ``obj`` as JSON to ``path`` atomically (sorted keys, trailing newline)."""
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=True, default=str) + "\n")


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_directory(path, overwrite=False):
    """Yields a temporary folder that is renamed to ``path`` when the block succeeds.

    The temporary folder is a sibling of ``path`` (same file system, so the
    rename is atomic). If the block raises, the temporary folder is removed and
    ``path`` is untouched.

    Args:
        path: str. Final folder.
        overwrite: bool. If True an existing ``path`` is replaced (the old folder
            is moved aside first and deleted only after the new one is in place);
            if False an existing ``path`` raises `FileExistsError`.

    Example:
    >>> import tempfile, os
    >>> root = tempfile.mkdtemp()
    >>> with atomic_directory(os.path.join(root, "export")) as tmp:
    ...     open(os.path.join(tmp, "x"), "w").close()
    >>> os.listdir(os.path.join(root, "export"))
    ['x']
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists")
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=parent)
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; the final folder gets the usual permissions
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if os.path.exists(path):
        old = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".", suffix=".old", dir=parent)
        os.rmdir(old)
        os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        if old is not None:
            os.replace(old, path)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
