"""Atomic output: write to a temporary sibling, then rename into place.

A crash or Ctrl-C in the middle of writing never leaves a half-written file
or folder under the final name, and never destroys what was there before.
A process killed outright (SIGKILL, out of memory) cannot remove its hidden
temporary file or folder; each stays locked (``flock``) while its writer
lives, and the next atomic write in the same folder removes those whose writer
is dead (`remove_stale_temporaries`).
"""

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
import time

try:
    import fcntl
except ImportError:  # Windows: no flock; stale temporaries are then left alone.
    fcntl = None

# The hidden siblings `atomic_file` and `atomic_directory` make: ".<name>.<8 random characters>.tmp" (and a
# folder's ".old" while it is being replaced).
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.(?P<kind>tmp|old)$")


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
    remove_stale_temporaries(folder)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    if fcntl is not None:
        with contextlib.suppress(OSError):  # Held until the file is closed; unsupported file systems: unlocked.
            fcntl.flock(fd, fcntl.LOCK_EX)
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
    ``path`` is untouched. While the block runs, the temporary folder is locked
    (``flock``); hidden temporary folders of dead writers in the same parent
    folder are removed first (`remove_stale_temporaries`), so a process killed
    while exporting leaves nothing behind for long.

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
    remove_stale_temporaries(parent)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists")
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=parent)
    with _locked(tmp):
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; the final folder gets the usual permissions
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        old = None
        with contextlib.ExitStack() as old_lock:
            if os.path.exists(path):
                old_lock.enter_context(_locked(path))  # Locked before it becomes ".old": never taken for stale.
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


def remove_stale_temporaries(parent, grace_seconds=2.0):
    """Removes the hidden temporaries of `atomic_file` and `atomic_directory` calls whose process died.

    A temporary (``.<name>.<random>.tmp``, a file or a folder) belongs to a
    dead writer when nobody holds its lock; ``grace_seconds`` covers the
    instant between its creation and its locking. One that a live process is
    writing is never touched. A dead writer's ``.<name>.<random>.old`` folder
    (the previous ``name``, moved aside while being replaced) is put back when
    ``name`` is missing, else removed. Without ``flock`` (Windows) nothing is
    removed.

    Args:
        parent: str. The folder holding the final files and folders.
        grace_seconds: float. Temporaries modified more recently are left alone.

    Returns:
        list of str: the temporaries removed or put back.
    """
    removed = []
    if fcntl is None or not os.path.isdir(parent):
        return removed
    for entry in os.listdir(parent):
        match = _TEMPORARY.match(entry)
        temporary = os.path.join(parent, entry)
        if not match or os.path.islink(temporary):
            continue
        try:
            is_folder = os.path.isdir(temporary)
            if (match["kind"] == "old" and not is_folder) or time.time() - os.stat(temporary).st_mtime < grace_seconds:
                continue
            with _locked(temporary, wait=False):
                final = os.path.join(parent, match["name"])
                if match["kind"] == "old" and not os.path.exists(final):
                    os.replace(temporary, final)
                elif is_folder:
                    shutil.rmtree(temporary)
                else:
                    os.remove(temporary)
            removed.append(temporary)
        except (BlockingIOError, FileNotFoundError):
            continue  # Its writer is alive, or another process removed it first.
    return removed


@contextlib.contextmanager
def _locked(folder, wait=True):
    """Holds an exclusive ``flock`` on a folder or file within the block (the kernel drops it if the process dies).

    With ``wait=False`` a folder locked by another process raises `BlockingIOError`. Where locks are not
    supported (no fcntl, or a file system refusing them), the block runs unlocked when ``wait`` is true.
    """
    if fcntl is None:
        if not wait:
            raise BlockingIOError(errno.EWOULDBLOCK, "file locks are not supported here", folder)
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise
        except OSError as error:  # ENOLCK and the like: locks unsupported on this file system.
            if not wait:
                raise BlockingIOError(errno.EWOULDBLOCK, f"cannot lock: {error.strerror}", folder) from None
        yield
    finally:
        os.close(fd)
