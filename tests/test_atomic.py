"""Atomic output (tfnlp.utils.atomic): nothing half-written, nothing lost, usual permissions, no stale temporaries."""

import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from tfnlp.utils import atomic_directory, atomic_file, atomic_write_json, atomic_write_text, remove_stale_temporaries

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_files_get_the_usual_permissions(tmp_path, umask_022):
    atomic_write_json(tmp_path / "metrics.json", {"a": 1})
    assert mode(tmp_path / "metrics.json") == 0o644
    assert (tmp_path / "metrics.json").read_text() == '{\n  "a": 1\n}\n'
    with atomic_directory(str(tmp_path / "export")) as tmp:
        open(os.path.join(tmp, "x"), "w").close()
    assert mode(tmp_path / "export") == 0o755


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic_file(tmp_path / "a.txt", "w", encoding="utf-8") as f:
            f.write("half")
            raise RuntimeError("crash")
    assert (tmp_path / "a.txt").read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_atomic_directory_replaces_only_when_asked_and_survives_a_crash(tmp_path):
    target = str(tmp_path / "model")
    with atomic_directory(target) as tmp:
        open(os.path.join(tmp, "v1"), "w").close()
    with pytest.raises(FileExistsError):
        with atomic_directory(target):
            pass
    with pytest.raises(RuntimeError):
        with atomic_directory(target, overwrite=True) as tmp:
            open(os.path.join(tmp, "v2"), "w").close()
            raise RuntimeError("crash")
    assert os.listdir(target) == ["v1"]
    with atomic_directory(target, overwrite=True) as tmp:
        open(os.path.join(tmp, "v2"), "w").close()
    assert os.listdir(target) == ["v2"] and os.listdir(tmp_path) == ["model"]


# A writer killed outright (SIGKILL) leaves its hidden temporary behind; the next atomic write removes it,
# never one that a live process is still writing.

WRITER = """
import os, sys, time
from tfnlp.utils import atomic_directory, atomic_file

kind, target = sys.argv[1], sys.argv[2]
if kind == "folder":
    with atomic_directory(target) as tmp:
        open(os.path.join(tmp, "saved_model.pb"), "w").close()
        print(tmp, flush=True)
        time.sleep(600)
else:
    with atomic_file(target) as f:
        f.write(b"half")
        f.flush()
        folder = os.path.dirname(target)
        print(os.path.join(folder, next(name for name in os.listdir(folder) if name.endswith(".tmp"))), flush=True)
        time.sleep(600)
"""


def start_writer(kind, target):
    """A process that is writing ``target`` atomically (and sleeps there); returns (process, its temporary)."""
    env = {**os.environ, "PYTHONPATH": REPO}
    process = subprocess.Popen([sys.executable, "-c", WRITER, kind, str(target)], stdout=subprocess.PIPE, text=True,
                               env=env)
    temporary = process.stdout.readline().strip()
    assert temporary and os.path.exists(temporary), "the writer did not start"
    return process, temporary


def kill(process):
    process.kill()  # SIGKILL: no clean-up of any kind.
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_a_killed_writers_temporary_is_removed_by_the_next_write_and_a_live_ones_is_kept(tmp_path, kind):
    export = tmp_path / "export"
    export.mkdir()
    process, temporary = start_writer(kind, export / "3")
    try:
        assert os.path.basename(temporary).startswith(".3.") and temporary.endswith(".tmp")
        assert remove_stale_temporaries(str(export), grace_seconds=0) == []  # Alive: its lock is held.
        with atomic_directory(str(export / "4")) as tmp:  # Another export meanwhile.
            open(os.path.join(tmp, "saved_model.pb"), "w").close()
        assert os.path.exists(temporary)
    finally:
        kill(process)
    assert os.path.exists(temporary)  # Nothing removes it at the kill...
    os.utime(temporary, (time.time() - 10, time.time() - 10))  # (older than the 2 s grace of a new temporary)
    with atomic_directory(str(export / "5")) as tmp:  # ... the next export does.
        open(os.path.join(tmp, "saved_model.pb"), "w").close()
    assert sorted(os.listdir(export)) == ["4", "5"]


def test_a_new_unlocked_temporary_is_kept_for_the_grace_period(tmp_path):
    young = tmp_path / ".model.abcd1234.tmp"
    young.mkdir()  # As between mkdtemp and flock: unlocked for an instant.
    assert remove_stale_temporaries(str(tmp_path)) == []
    os.utime(young, (time.time() - 10, time.time() - 10))
    assert remove_stale_temporaries(str(tmp_path)) == [str(young)]
    assert os.listdir(tmp_path) == []


def test_a_killed_replacements_old_folder_is_put_back_when_the_new_one_is_missing(tmp_path):
    old = tmp_path / ".model.abcd1234.old"  # Killed between moving "model" aside and renaming the new one in.
    old.mkdir()
    (old / "v1").write_text("weights")
    os.utime(old, (time.time() - 10, time.time() - 10))
    with atomic_directory(str(tmp_path / "other")):
        pass
    assert sorted(os.listdir(tmp_path)) == ["model", "other"] and os.listdir(tmp_path / "model") == ["v1"]
    # Killed after the new one was in place: the old one is only removed.
    (tmp_path / ".model.efgh5678.old").mkdir()
    os.utime(tmp_path / ".model.efgh5678.old", (time.time() - 10, time.time() - 10))
    assert remove_stale_temporaries(str(tmp_path)) == [str(tmp_path / ".model.efgh5678.old")]
    assert os.listdir(tmp_path / "model") == ["v1"]


def test_names_that_merely_look_alike_are_left_alone(tmp_path):
    for name in (".model.tmp", "model.abcd1234.tmp", ".model.ABCD1234.tmp", ".model.abcd1234.tmp.keep"):
        (tmp_path / name).mkdir()
        os.utime(tmp_path / name, (time.time() - 10, time.time() - 10))
    assert remove_stale_temporaries(str(tmp_path)) == []
