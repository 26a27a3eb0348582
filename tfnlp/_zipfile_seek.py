"""A fix for reading ``.keras`` files on Python 3.12.0-3.12.8 and 3.13.0-3.13.1 (CPython gh-127847).

Those versions seek forward in a stored (uncompressed) zip member relative to
wherever the shared archive file was last left, not to the member's own
position, so reading two members in turn returns the wrong bytes. tf_keras
reads the weights of a ``.keras`` file (an HDF5 file stored in a zip) that way:
``tf_keras.models.load_model("model.keras")`` fails with ``OutOfRangeError:
reached end of file``, or could read wrong weights. CPython fixed it in 3.12.9
and 3.13.2 by seeking from the member's position; `fix_stored_member_seek`
does the same, only when a probe shows that this interpreter has the bug
(``import tfnlp`` calls it).
"""

import io
import os
import zipfile

fixed = False  # True once this module has patched `zipfile._SharedFile.seek`.


def has_stored_member_seek_bug():
    """True when seeking in one stored member of a zip after reading another returns the wrong bytes.

    Example (after ``import tfnlp``, whatever the Python):
    >>> has_stored_member_seek_bug()
    False
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("a", b"123")
        archive.writestr("b", b"456")
    with zipfile.ZipFile(buffer) as archive, archive.open("a") as first, archive.open("b") as second:
        first.read(1)
        second.seek(1)
        return second.read(1) != b"5"


def fix_stored_member_seek():
    """Makes relative seeks in a zip member start from the member's position, if this Python needs it.

    Returns:
        bool. Whether the fix is in place (False: this interpreter has no such bug).
    """
    global fixed
    if fixed or not has_stored_member_seek_bug():
        return fixed
    seek = zipfile._SharedFile.seek

    def seek_from_own_position(self, offset, whence=os.SEEK_SET):
        if whence == os.SEEK_CUR:  # `tell()` is this member's position; the shared file may be elsewhere.
            offset, whence = self._pos + offset, os.SEEK_SET
        return seek(self, offset, whence)

    zipfile._SharedFile.seek = seek_from_own_position
    fixed = True
    return fixed
