"""Atomic output (tfnlp.utils.atomic): nothing half-written, nothing lost, usual permissions."""

import os
import stat

import pytest

from tfnlp.utils import atomic_directory, atomic_file, atomic_write_json, atomic_write_text


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
