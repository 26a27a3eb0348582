"""`import tfnlp` makes zip members seekable on the Pythons whose zipfile misreads them (CPython gh-127847), and
leaves zipfile alone elsewhere; `.keras` files then load (tests/test_transformer_classifier.py saves and reloads
them on every Python)."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The bug's report: read one stored member, seek in another, read it.
PROBE = """
import io, sys, zipfile
if sys.argv[1] == "tfnlp":
    import tfnlp
    from tfnlp import _zipfile_seek
buffer = io.BytesIO()
with zipfile.ZipFile(buffer, "w") as archive:
    archive.writestr("a.txt", b"123")
    archive.writestr("b.txt", b"456")
with zipfile.ZipFile(buffer) as archive, archive.open("a.txt") as a, archive.open("b.txt") as b:
    a.read(1)
    b.seek(1)
    print(b.read(1).decode("latin-1"), _zipfile_seek.fixed if sys.argv[1] == "tfnlp" else "-")
"""


def probe(*args):
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": REPO}, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()


def test_import_tfnlp_fixes_seeking_in_zip_members_only_where_python_needs_it():
    bare, _ = probe("bare")
    with_tfnlp, fixed = probe("tfnlp")
    assert with_tfnlp == "5"
    affected = bare != "5"  # Python 3.12.0-3.12.8 and 3.13.0-3.13.1 read a wrong byte.
    assert fixed == str(affected)
    if sys.version_info[:2] == (3, 11):
        assert not affected  # 3.11 has no fast seek in stored members, so no bug.
