"""Rehearse the Colab quickstart headlessly: notebooks/quickstart.ipynb, top to bottom, in a copy of Colab's runtime.

    python tools/colab_rehearsal.py          # make colab-rehearsal
    python tools/colab_rehearsal.py --full   # the notebook's own (short) settings instead of tiny ones

1. **The mirror.** A virtualenv of Python 3.13 (``--python``, else ``$COLAB_PYTHON``, else
   ``$(pyenv root)/versions/3.13.*``, else ``python3.13``) holding ``tools/colab_runtime.txt``: the
   versions Colab's runtime has of the packages that matter here (TensorFlow 2.20, Keras 3, tf_keras,
   tensorflow-text, tensorflow-hub, transformers 5, NumPy, pandas, matplotlib, scikit-learn, ipykernel,
   nbclient...) and their dependencies; tf-models-official is absent, as in Colab. Built once, outside the
   repository, in ``$TFNLP_CACHE_DIR/colab-rehearsal/<hash>/`` (default ``~/.cache/tfnlp``), the hash
   covering the spec file, the Python version and this script's build recipe; a folder without its
   ``complete`` stamp (an interrupted build) is built again. Other hashes' mirrors are removed.
2. **A fresh copy per run**, ``runs/colab-rehearsal/venv``: hard links of the mirror (``cp -al``, a few
   seconds, no disk). pip replaces files (it unlinks or renames the old ones and writes new ones), so the
   notebook's installs never touch the mirror; the console scripts, whose first line names the mirror's
   Python, are rewritten as new files. After the run the mirror's ``pip freeze`` is compared with the
   one taken at build time; a changed mirror is an error and is removed.
3. **The run.** nbclient executes the notebook in a kernel of the copy (``ipykernel``, as Colab's), in
   ``runs/colab-rehearsal/work/``, with the form fields overridden by environment variables: offline and
   short. ``TFNLP_NOTEBOOK_REPO`` = this working tree (the notebook copies it, installs it and its missing
   dependencies from PyPI), ``TFNLP_DATA_DIR`` (required: the local data, as the Makefile sets it),
   ``TFNLP_NOTEBOOK_MODELS=packaged`` (all-MiniLM-L6-v2 and TF-Hub artifacts built from it),
   ``TFNLP_NOTEBOOK_QUICK=1`` (tiny subsets and epochs; ``--full`` leaves it 0). The kernel gets no
   ``PYTHONPATH`` and no ``TF_USE_LEGACY_KERAS``: the notebook must set what it needs itself.
4. The executed notebook is written to ``runs/colab-rehearsal/quickstart.ipynb`` (also when a cell
   fails); any cell error ends the rehearsal with exit status 1 and one line naming the cell and the error.
   TensorBoard servers the notebook started are stopped (by the process ids TensorBoard recorded in the
   run's temporary folder). The times of the build, the copy and each cell are printed.

Needs the network for PyPI only (the mirror's build, and the notebook's own installs).
"""

import argparse
import datetime
import glob
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(REPO, "tools", "colab_runtime.txt")
NOTEBOOK = os.path.join(REPO, "notebooks", "quickstart.ipynb")
RUN_DIR = os.path.join(REPO, "runs", "colab-rehearsal")
KERNEL_NAME = "colab-rehearsal"
# Bump when the way the mirror is built changes (the hash then changes too).
BUILD_RECIPE = "1: venv, pip/setuptools/wheel first, then --no-deps -r spec, pip check"
BOOTSTRAP = ("pip", "setuptools", "wheel")
PYTHON_VERSION = (3, 13)


class RehearsalError(Exception):
    """A problem reported as one line."""


def log(message):
    print(f"colab-rehearsal: {message}", flush=True)


def find_python(explicit=None):
    """The Python 3.13 to build the mirror with: ``explicit``, ``$COLAB_PYTHON``, pyenv's 3.13.x, ``python3.13``."""
    candidates = [explicit or os.environ.get("COLAB_PYTHON")]
    if not candidates[0]:
        root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
        if shutil.which("pyenv"):
            result = subprocess.run(["pyenv", "root"], capture_output=True, text=True)
            root = result.stdout.strip() or root
        versions = sorted(glob.glob(os.path.join(root, "versions", "3.13.*", "bin", "python3.13")),
                          key=lambda path: [int(part) for part in re.findall(r"\d+", path.split("versions")[-1])])
        candidates = versions[-1:] + [shutil.which("python3.13")]
    python = next((path for path in candidates if path), None)
    if python is None:
        raise RehearsalError("no Python 3.13 found (Colab's runtime is 3.13): set COLAB_PYTHON=/path/to/python3.13 "
                             "or install one with pyenv (pyenv install 3.13)")
    try:
        version = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:3])"], capture_output=True,
                                 text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError) as error:
        raise RehearsalError(f"{python}: cannot run it ({error})") from None
    if tuple(map(int, version[:2])) != PYTHON_VERSION:
        raise RehearsalError(f"{python} is Python {'.'.join(version)}; Colab's runtime is 3.13: set COLAB_PYTHON "
                             f"to a Python 3.13")
    return python, ".".join(version)


def mirror_folder(python_version):
    """``<cache>/colab-rehearsal/<hash>``: the hash of the spec file, the Python version and the build recipe."""
    with open(SPEC, "rb") as f:
        digest = hashlib.sha256(f.read() + f"\n{python_version}\n{BUILD_RECIPE}".encode()).hexdigest()[:16]
    cache = os.environ.get("TFNLP_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "tfnlp")
    return os.path.join(cache, "colab-rehearsal", digest)


def run_logged(command, log_path, what, **kwargs):
    """Runs ``command`` with its output appended to ``log_path``; a failure is one line naming the log."""
    with open(log_path, "a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, **kwargs)
    if result.returncode != 0:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            lines = [line.strip() for line in f if line.strip() and not line.startswith("WARNING: Location")]
        errors = [line for line in lines if line.startswith("ERROR")] or lines
        raise RehearsalError(f"{what} failed: {errors[-1] if errors else 'no output'} (log: {log_path})")


def spec_pins():
    """``{name: "name==version"}`` of the spec's pip, setuptools and wheel (installed before the rest)."""
    pins = {}
    with open(SPEC, encoding="utf-8") as f:
        for line in f:
            name = line.split("==")[0].strip().lower()
            if name in BOOTSTRAP:
                pins[name] = line.strip()
    return pins


def build_mirror(python, folder):
    """Builds the mirror in ``folder`` unless it is complete. Returns the seconds spent (0: cached)."""
    import fcntl

    os.makedirs(os.path.dirname(folder), exist_ok=True)
    with open(folder + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # Two rehearsals at once: the second waits for the first's build.
        if os.path.exists(os.path.join(folder, "complete")):
            return 0.0
        shutil.rmtree(folder, ignore_errors=True)  # An interrupted build.
        os.makedirs(folder)
        start = time.monotonic()
        venv, build_log = os.path.join(folder, "venv"), os.path.join(folder, "build.log")
        log(f"building the Colab mirror in {folder} (once; about 3 GB, 5 minutes)")
        python_in_venv = os.path.join(venv, "bin", "python")
        run_logged([python, "-m", "venv", venv], build_log, "creating the virtualenv")
        run_logged([python_in_venv, "-m", "pip", "install", "--quiet", *spec_pins().values()], build_log,
                   "installing pip, setuptools and wheel")
        run_logged([python_in_venv, "-m", "pip", "install", "--quiet", "--no-deps", "--requirement", SPEC], build_log,
                   f"installing {SPEC}")
        run_logged([python_in_venv, "-m", "pip", "check"], build_log, "pip check of the mirror")
        with open(os.path.join(folder, "freeze.txt"), "w", encoding="utf-8") as f:
            f.write(freeze(venv))
        seconds = time.monotonic() - start
        with open(os.path.join(folder, "complete"), "w", encoding="utf-8") as f:
            json.dump({"python": python, "seconds": round(seconds, 1)}, f)
    for other in glob.glob(os.path.join(os.path.dirname(folder), "*")):
        if os.path.isdir(other) and other != folder and re.fullmatch(r"[0-9a-f]{16}", os.path.basename(other)):
            log(f"removing an older mirror: {other}")
            shutil.rmtree(other, ignore_errors=True)
    return seconds


def freeze(venv):
    result = subprocess.run([os.path.join(venv, "bin", "python"), "-m", "pip", "freeze", "--all"],
                            capture_output=True, text=True, check=True)
    return "\n".join(sorted(line for line in result.stdout.splitlines() if "==" in line)) + "\n"


def fresh_copy(mirror_venv, copy):
    """``copy``: hard links of ``mirror_venv``, with the console scripts rewritten (as new files) to name the copy."""
    subprocess.run(["rm", "-rf", copy], check=True)  # 70,000 entries: faster than shutil.rmtree.
    subprocess.run(["cp", "-al", mirror_venv, copy], check=True)
    old, new = mirror_venv.encode(), copy.encode()
    for path in glob.glob(os.path.join(copy, "bin", "*")):
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            content = f.read()
        if old in content[:512]:
            mode = os.stat(path).st_mode
            os.unlink(path)  # A new inode: the mirror's file stays as it is.
            with open(path, "wb") as f:
                f.write(content.replace(old, new))
            os.chmod(path, mode)


def kernel_environment(copy, work, data_dir, quick):
    """The kernel's environment: Colab-like (no PYTHONPATH, no TF_USE_LEGACY_KERAS), overrides for a short offline run."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV", "TF_USE_LEGACY_KERAS", "PYTHONHOME")
           and not key.startswith(("JUPYTER", "IPYTHON", "TFNLP_"))}
    private = os.path.join(RUN_DIR, "home")
    env.update({
        "PATH": os.path.join(copy, "bin") + os.pathsep + os.environ.get("PATH", ""),
        "JUPYTER_PATH": os.path.join(RUN_DIR, "jupyter"),
        "JUPYTER_RUNTIME_DIR": os.path.join(private, "jupyter-runtime"),
        "IPYTHONDIR": os.path.join(private, "ipython"),
        "MPLCONFIGDIR": os.path.join(private, "matplotlib"),
        "TMPDIR": os.path.join(private, "tmp"),  # TensorBoard records its servers here.
        "TFNLP_CACHE_DIR": os.path.join(private, "tfnlp-cache"),  # The MiniLM converted afresh, as in Colab.
        "TFNLP_NOTEBOOK_REPO": REPO,
        "TFNLP_DATA_DIR": data_dir,
        "TFNLP_NOTEBOOK_MODELS": "packaged",
        "TFNLP_NOTEBOOK_QUICK": "1" if quick else "0",
        "PYTHONUNBUFFERED": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",  # ipykernel's debugger notice about frozen modules.
    })
    for key in ("JUPYTER_RUNTIME_DIR", "IPYTHONDIR", "MPLCONFIGDIR", "TMPDIR", "TFNLP_CACHE_DIR"):
        os.makedirs(env[key], exist_ok=True)
    kernel_dir = os.path.join(env["JUPYTER_PATH"], "kernels", KERNEL_NAME)
    os.makedirs(kernel_dir, exist_ok=True)
    with open(os.path.join(kernel_dir, "kernel.json"), "w", encoding="utf-8") as f:
        json.dump({"argv": [os.path.join(copy, "bin", "python"), "-m", "ipykernel_launcher", "-f",
                            "{connection_file}"],
                   "display_name": "Python 3 (Colab rehearsal)", "language": "python"}, f, indent=1)
    return env


def stop_tensorboards(tmp):
    """Stops the TensorBoard servers the notebook started: their process ids from TensorBoard's info files."""
    for path in glob.glob(os.path.join(tmp, ".tensorboard-info", "pid-*.info")):
        try:
            with open(path, encoding="utf-8") as f:
                pid = int(json.load(f)["pid"])
            os.kill(pid, signal.SIGTERM)
            log(f"stopped the TensorBoard server the notebook started (pid {pid})")
        except (OSError, ValueError, KeyError):
            pass


def rehearse(args):
    data_dir = os.environ.get("TFNLP_DATA_DIR")
    if not data_dir or not os.path.isdir(data_dir):
        raise RehearsalError("the rehearsal runs offline: set TFNLP_DATA_DIR to the folder holding ag_news/ and "
                             "conll2003/ (the Makefile sets it to ../shared/data when that exists)")
    python, version = find_python(args.python)
    folder = mirror_folder(version)
    build_seconds = build_mirror(python, folder)
    log(f"Colab mirror: Python {version}, {folder} "
        + (f"(built in {build_seconds:.0f} s)" if build_seconds else "(cached)"))

    start = time.monotonic()
    os.makedirs(RUN_DIR, exist_ok=True)
    copy, work = os.path.join(RUN_DIR, "venv"), os.path.join(RUN_DIR, "work")
    shutil.rmtree(os.path.join(RUN_DIR, "home"), ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    fresh_copy(os.path.join(folder, "venv"), copy)
    log(f"fresh copy of the mirror in {copy} ({time.monotonic() - start:.1f} s)")

    env = kernel_environment(copy, work, os.path.abspath(data_dir), quick=not args.full)
    output = os.path.join(RUN_DIR, "quickstart.ipynb")
    command = [os.path.join(copy, "bin", "python"), os.path.abspath(__file__), "execute", "--notebook", args.notebook,
               "--work", work, "--output", output, "--timeout", str(args.timeout)]
    started, cpu_before = time.monotonic(), cpu_seconds()
    try:
        result = subprocess.run(command, env=env)
    finally:
        stop_tensorboards(env["TMPDIR"])
    seconds, cpu = time.monotonic() - started, cpu_seconds() - cpu_before
    if freeze(os.path.join(folder, "venv")) != open(os.path.join(folder, "freeze.txt"), encoding="utf-8").read():
        shutil.rmtree(folder, ignore_errors=True)
        raise RehearsalError(f"the notebook's installs changed the cached mirror {folder} (removed; the next "
                             f"rehearsal rebuilds it)")
    if result.returncode != 0:
        raise RehearsalError(f"the notebook failed after {seconds:.0f} s; executed notebook: {output}")
    log(f"passed: notebook executed in {seconds:.0f} s ({cpu:.0f} CPU-seconds: kernel, pip and pipelines); mirror "
        f"{'built in %.0f s' % build_seconds if build_seconds else 'cached'}; executed notebook: {output}")


def cpu_seconds():
    """User and system CPU time of the finished child processes (and theirs, when waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cell_seconds(cell):
    timing = cell.get("metadata", {}).get("execution", {})
    try:
        begin = datetime.datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
        end = datetime.datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
    return (end - begin).total_seconds()


def execute(args):
    """Runs inside the mirror's copy: executes the notebook with nbclient, writes it, prints each cell's time."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(args.notebook, as_version=4)
    def executed(cell, cell_index, execute_reply):  # A line per cell as it ends: progress in CI's log.
        status = execute_reply.get("content", {}).get("status", "?")
        title = next((line for line in cell.source.splitlines() if line.strip()), "")[:70]
        print(f"  cell {cell_index:>2} {status:<5} {title}", flush=True)

    client = NotebookClient(notebook, timeout=args.timeout, kernel_name=KERNEL_NAME,
                            resources={"metadata": {"path": args.work}}, record_timing=True,
                            on_cell_executed=executed)
    failure = None
    try:
        client.execute()
    except CellExecutionError:
        failure = True
    except Exception as error:  # noqa: BLE001  (a dead kernel, a timeout: reported as one line below)
        failure = f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
    finally:
        nbformat.write(notebook, args.output)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        seconds = cell_seconds(cell)
        title = next((line for line in cell.source.splitlines() if line.strip()), "")[:70]
        if seconds is not None:
            print(f"  cell {index:>2}  {seconds:7.1f} s  {title}", flush=True)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                failure = f"cell {index} ({title}): {output['ename']}: {' '.join(output['evalue'].split())[:400]}"
    if failure:
        print(f"error: {failure}", file=sys.stderr, flush=True)
        return 1
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=None, help="Python 3.13 for the mirror (default: $COLAB_PYTHON, pyenv's).")
    parser.add_argument("--full", action="store_true", help="The notebook's short settings, not the tiny ones.")
    parser.add_argument("--notebook", default=NOTEBOOK, help="The notebook to execute.")
    parser.add_argument("--timeout", type=int, default=3600, help="Seconds a cell may take.")
    sub = parser.add_subparsers(dest="command")
    inner = sub.add_parser("execute", help="(internal) execute the notebook in this Python's kernel")
    inner.add_argument("--notebook", required=True)
    inner.add_argument("--work", required=True)
    inner.add_argument("--output", required=True)
    inner.add_argument("--timeout", type=int, required=True)
    args = parser.parse_args(argv)
    if args.command == "execute":
        return execute(args)
    try:
        rehearse(args)
    except RehearsalError as error:
        print(f"colab-rehearsal: error: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
