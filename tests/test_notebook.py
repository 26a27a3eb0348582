"""notebooks/quickstart.ipynb, checked without executing it (`make colab-rehearsal` executes it).

- its structure: valid nbformat 4, committed without outputs, a set-up cell first that selects Keras 2 before
  anything can import TensorFlow, takes the form fields (CODE, DATA, MODELS, QUICK) and lets the rehearsal's
  environment variables override them, and runs no ``!`` command (whose failure would not stop the notebook);
- every ``run_pipeline(...)`` call, in every combination of the settings (quick or short, online or packaged
  models, with and without a GPU's mixed precision), through the script's own argument parsing *and*
  validation (``parse_arguments`` with the dataclasses' checks and ``validate=``);
- the cells that read run folders and exports (``run_metrics``, ``classifier_figures``, ``show_pictures``,
  ``entity_scores``, ``headline``, ``classify``, ``find_entities``, ``highlighted_html``), run on what the real
  pipelines write: tiny runs of agnews_transformer, agnews_hf_bert (two stages) and conll_ner (``slow``);
- the set-up cell's code fetching, on bad input: one line each, nothing left behind.

The notebook's functions are taken from its cells without running the cells: imports, function and class
definitions and literal constants are executed in a fresh namespace (IPython's display functions stubbed where
IPython is not installed); the settings cell, which only reads environment variables, is executed whole.
"""

import ast
import contextlib
import io
import json
import os
import sys
import types
import zipfile

import pytest

from command_options import parse_command

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(REPO, "notebooks", "quickstart.ipynb")
LESSON_HANDLES = ("https://tfhub.dev/tensorflow/bert_en_uncased_preprocess/3",
                  "https://tfhub.dev/tensorflow/small_bert/bert_en_uncased_L-4_H-128_A-2/1")
MIXED_PRECISION_DEFAULT = False  # tfnlp.training.RuntimeArguments' (checked below).
FIT_SCRIPTS = ("agnews_transformer", "agnews_hub_bert", "agnews_hf_bert", "conll_ner")
# Modules whose import would load TensorFlow (or pick a Keras) in the kernel.
TENSORFLOW_MODULES = ("tensorflow", "tf_keras", "keras", "tfnlp", "transformers", "tensorflow_hub", "tensorflow_text",
                      "official", "pipelines")


@pytest.fixture(scope="module")
def notebook():
    with open(NOTEBOOK, encoding="utf-8") as f:
        return json.load(f)


def source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def code_cells(notebook):
    return [source(cell) for cell in notebook["cells"] if cell["cell_type"] == "code"]


def calls(notebook, function):
    """The ``function(...)`` Call nodes of every code cell."""
    return [node for code in code_cells(notebook) for node in ast.walk(ast.parse(code))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == function]


def string_arguments(notebook, function):
    """The first (literal) argument of each ``function("...")`` call."""
    return [node.args[0].value for node in calls(notebook, function)
            if node.args and isinstance(node.args[0], ast.Constant)]


class Displayed:
    """What the notebook's cells displayed: IPython's display functions, recorded."""

    def __init__(self):
        self.items = []

    def display(self, *objects):
        self.items.extend(objects)


def ipython_stub(displayed):
    """``IPython.display`` with HTML, Image and display that record what the cells show."""
    module = types.ModuleType("IPython.display")

    class HTML:
        def __init__(self, data):
            self.data = data

    class Image:
        def __init__(self, data=None, filename=None):
            self.filename = filename
            with open(filename, "rb") as f:
                assert f.read(8) == b"\x89PNG\r\n\x1a\n", f"{filename} is not a PNG"

    module.HTML, module.Image, module.display = HTML, Image, displayed.display
    package = types.ModuleType("IPython")
    package.display = module
    return package, module


def is_literal_constant(node):
    if not (isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets)):
        return False
    try:
        ast.literal_eval(node.value)
    except ValueError:
        return False
    return True


def settings_cell(notebook):
    cells = [code for code in code_cells(notebook) if "def pipeline_arguments(" in code]
    assert len(cells) == 1, "expected one settings cell defining pipeline_arguments"
    return cells[0]


def notebook_namespace(notebook, monkeypatch, *, quick, models, work_dir):
    """The notebook's definitions and its settings cell run for the given settings; `Displayed` under "displayed"."""
    displayed = Displayed()
    package, module = ipython_stub(displayed)
    monkeypatch.setitem(sys.modules, "IPython", package)
    monkeypatch.setitem(sys.modules, "IPython.display", module)
    monkeypatch.setenv("TFNLP_NOTEBOOK_QUICK", "1" if quick else "0")
    monkeypatch.setenv("TFNLP_NOTEBOOK_MODELS", models)
    namespace = {"__name__": "quickstart", "WORK_DIR": str(work_dir), "IN_COLAB": False}
    for index, code in enumerate(code_cells(notebook)):
        kept = [node for node in ast.parse(code).body
                if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef))
                or is_literal_constant(node)]
        exec(compile(ast.Module(body=kept, type_ignores=[]), f"quickstart code cell {index}", "exec"), namespace)
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(settings_cell(notebook), "quickstart settings cell", "exec"), namespace)
    namespace["WORK_DIR"] = str(work_dir)
    namespace["displayed"] = displayed
    return namespace


def test_mixed_precision_is_off_unless_asked_for():
    import dataclasses

    from tfnlp.training import RuntimeArguments

    fields = {field.name: field.default for field in dataclasses.fields(RuntimeArguments)}
    assert fields["mixed_precision"] is MIXED_PRECISION_DEFAULT


def pipeline_commands(notebook, namespace):
    """``(script name, options dict)`` of every run_pipeline call, its arguments evaluated in ``namespace``."""
    commands = []
    for node in calls(notebook, "run_pipeline"):
        name = eval(compile(ast.Expression(node.args[0]), "call", "eval"), namespace)  # noqa: S307
        options = {keyword.arg: eval(compile(ast.Expression(keyword.value), "call", "eval"), namespace)  # noqa: S307
                   for keyword in node.keywords}
        commands.append((name, options))
    return commands


# ---------------------------------------------------------------- structure


def test_notebook_is_valid_nbformat_4_without_outputs(notebook):
    assert notebook["nbformat"] == 4 and notebook["nbformat_minor"] >= 0
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    ids = [cell.get("id") for cell in notebook["cells"]]
    assert len(set(ids)) == len(ids) and all(ids)
    for cell in notebook["cells"]:
        assert cell["cell_type"] in ("markdown", "code")
        assert isinstance(cell["source"], (list, str)) and isinstance(cell["metadata"], dict)
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None  # Committed without outputs.
    assert notebook["cells"][0]["cell_type"] == "markdown"


def test_every_code_cell_is_python_and_runs_no_shell_escape(notebook):
    cells = code_cells(notebook)
    assert len(cells) >= 15
    for index, code in enumerate(cells):
        ast.parse(code, f"quickstart code cell {index}")  # No IPython `!`/`%` line: they would not parse.
        assert "get_ipython().system" not in code and "os.system(" not in code, f"code cell {index}"


def test_first_cell_selects_keras_2_before_anything_imports_tensorflow(notebook):
    first = next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")
    assert first["metadata"].get("cellView") == "form"
    tree = ast.parse(source(first))
    selects = [index for index, node in enumerate(tree.body) if isinstance(node, ast.Assign)
               and ast.unparse(node) == "os.environ['TF_USE_LEGACY_KERAS'] = '1'"]
    assert len(selects) == 1, "the first cell must set os.environ['TF_USE_LEGACY_KERAS'] = '1'"
    imports_before = [ast.unparse(node) for node in tree.body[:selects[0]] if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert imports_before == ["import os", "import sys"]
    for node in ast.walk(tree):  # Anywhere in the cell, not only before: it installs what TensorFlow loads.
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        for name in names:
            assert name.split(".")[0] not in TENSORFLOW_MODULES, f"the set-up cell imports {name}"


def test_set_up_takes_form_fields_that_the_rehearsal_environment_overrides(notebook):
    first = source(next(cell for cell in notebook["cells"] if cell["cell_type"] == "code"))
    for field, form in (("CODE", '""  #@param {type:"string"}'), ("DATA", '""  #@param {type:"string"}'),
                        ("MODELS", '"online"  #@param ["online", "packaged"]'),
                        ("QUICK", 'False  #@param {type:"boolean"}')):
        assert f"\n{field} = {form}\n" in first, f"form field {field}"
    for variable in ("TFNLP_NOTEBOOK_REPO", "TFNLP_DATA_DIR", "TFNLP_NOTEBOOK_MODELS", "TFNLP_NOTEBOOK_QUICK"):
        assert f'os.environ.get("{variable}"' in first
    assert 'os.kill(os.getpid(), signal.SIGKILL)' in first  # Colab's restart, from code.
    assert "tools\", \"colab_setup.py\"" in first


# ---------------------------------------------------------------- commands


@pytest.mark.parametrize("quick", [False, True], ids=["short", "quick"])
@pytest.mark.parametrize("models", ["online", "packaged"])
def test_every_pipeline_command_passes_the_scripts_parsing_and_validation(notebook, monkeypatch, tmp_path, quick,
                                                                         models):
    namespace = notebook_namespace(notebook, monkeypatch, quick=quick, models=models, work_dir=tmp_path)
    commands = pipeline_commands(notebook, namespace)
    names = [name for name, _ in commands]
    assert names == ["agnews_transformer", "export_hub_bert", "agnews_hub_bert", "agnews_hf_bert", "conll_ner"]
    monkeypatch.chdir(tmp_path)  # Relative folders (saved_models/hub) as in the notebook's WORK_DIR.
    for name, options in commands:
        for mixed_precision in (False, True):  # No GPU, or a GPU (mixed precision on).
            argv = namespace["pipeline_arguments"](name, options, mixed_precision)
            parsed = parse_command(name, argv, monkeypatch)  # The script's own parsing and checks, then stop.
            if name in FIT_SCRIPTS:  # The namespace holds the options given; the others keep their defaults.
                assert vars(parsed).get("mixed_precision", MIXED_PRECISION_DEFAULT) is mixed_precision
                assert parsed.output_dir == f"runs/{name}" and "--data-dir" not in argv  # TFNLP_DATA_DIR or online.
    options = dict(commands)
    hub, hf, ner = options["agnews_hub_bert"], options["agnews_hf_bert"], options["conll_ner"]
    if models == "online":
        assert (hub["preprocess"], hub["encoder"]) == LESSON_HANDLES
        assert (hf["pretrained"], ner["pretrained"]) == ("bert-base-uncased", "bert-base-cased")
    else:  # '': the packaged all-MiniLM-L6-v2, and the TF-Hub artifacts export_hub_bert builds from it.
        assert (hub["preprocess"], hub["encoder"], hf["pretrained"], ner["pretrained"]) == ("", "", "", "")
    transformer = options["agnews_transformer"]
    assert transformer["max_train_examples"] == (2000 if quick else 20000)


def test_every_run_is_read_back_and_every_export_served(notebook):
    outputs = {}
    for node in calls(notebook, "run_pipeline"):
        keywords = {keyword.arg: keyword.value.value for keyword in node.keywords
                    if keyword.arg in ("output_dir", "export_dir")}
        if keywords:
            outputs[node.args[0].value] = keywords
    assert set(outputs) == set(FIT_SCRIPTS)
    shown = set(string_arguments(notebook, "classifier_figures")) | set(string_arguments(notebook, "entity_scores"))
    pictured = set(string_arguments(notebook, "show_pictures"))
    served = set(string_arguments(notebook, "classify")) | set(string_arguments(notebook, "find_entities"))
    for name, folders in outputs.items():
        assert folders["output_dir"] in shown and folders["output_dir"] in pictured, name
        assert folders["export_dir"] in served, name
    assert string_arguments(notebook, "load_attention_model") == [outputs["agnews_hf_bert"]["export_dir"]]


# ---------------------------------------------------------------- the cells that read runs, on real runs


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory, classifier_run, ner_run, hf_bert_run):
    """A work folder as the notebook leaves it: ``runs/`` and ``saved_models/`` of three tiny real runs.

    The session's transformer, HF BERT (frozen, then fine-tuned) and NER runs (`conftest.classifier_run`,
    `conftest.hf_bert_run`, `conftest.ner_run`), linked in.
    """
    root = tmp_path_factory.mktemp("notebook_runs")
    runs, exports = root / "runs", root / "saved_models"
    os.makedirs(runs)
    os.makedirs(exports)
    for name, run in (("agnews_transformer", classifier_run), ("agnews_hf_bert", hf_bert_run),
                      ("conll_ner", ner_run)):
        os.symlink(run["run"], runs / name)
        os.symlink(os.path.dirname(run["export"]), exports / name)
    return root


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.slow
def test_run_reading_cells_on_what_the_pipelines_write(notebook, monkeypatch, real_runs):
    namespace = notebook_namespace(notebook, monkeypatch, quick=True, models="packaged", work_dir=real_runs)
    monkeypatch.chdir(real_runs)  # The notebook reads runs/... relative to its WORK_DIR.
    displayed = namespace["displayed"]

    # A one-stage classifier run.
    metrics = read_json(real_runs / "runs" / "agnews_transformer" / "metrics.json")
    table = namespace["classifier_figures"]("runs/agnews_transformer")
    assert table.to_dict("records") == [{
        "stage": "training", "test accuracy": round(metrics["test"]["accuracy"], 4),
        "validation accuracy": round(metrics["validation_accuracy"], 4),
        "test macro F1": round(metrics["test"]["macro_f1"], 4), "training s": round(metrics["train_wall_seconds"], 1)}]
    namespace["show_pictures"]("runs/agnews_transformer")
    assert [os.path.basename(item.filename) for item in displayed.items] == ["curves.png", "confusion_matrix.png"]
    assert metrics["plots"] == {"curves": "curves.png", "confusion_matrix": "confusion_matrix.png"}

    # A two-stage run: both stages' rows, the final stage's pictures from its own folder.
    hf = read_json(real_runs / "runs" / "agnews_hf_bert" / "metrics.json")
    rows = namespace["classifier_figures"]("runs/agnews_hf_bert").to_dict("records")
    assert [row["stage"] for row in rows] == ["frozen", "fine_tune"]
    assert [row["test accuracy"] for row in rows] == [round(hf[s]["test"]["accuracy"], 4) for s in ("frozen", "fine_tune")]
    displayed.items.clear()
    namespace["show_pictures"]("runs/agnews_hf_bert")
    assert [item.filename for item in displayed.items] == [os.path.join("runs/agnews_hf_bert", "fine_tune", name)
                                                          for name in ("curves.png", "confusion_matrix.png")]

    # NER: per-type scores and entity counts as ner_metrics writes them ("support").
    ner = read_json(real_runs / "runs" / "conll_ner" / "metrics.json")
    scores = namespace["entity_scores"]("runs/conll_ner")
    for split in ("validation", "test"):
        part = scores[scores["split"] == split].set_index("entity")
        assert set(part.index) == set(ner[split]["per_type"]) | {"all"}
        for entity, figures in ner[split]["per_type"].items():
            assert part.loc[entity, "entities"] == figures["support"] and part.loc[entity, "F1"] == round(figures["f1"], 3)
        assert part.loc["all", "F1"] == round(ner[split]["f1"], 3)
    assert part.loc["all", "entities"] == sum(f["support"] for f in ner["test"]["per_type"].values()) > 0
    displayed.items.clear()
    namespace["show_pictures"]("runs/conll_ner")
    assert [os.path.basename(item.filename) for item in displayed.items] == ["curves.png", "entity_scores.png"]

    # The comparison: accuracy for classifiers, entity F1 for NER (whose test figures hold an accuracy too).
    headlines = {run: namespace["headline"](f"runs/{run}") for run in ("agnews_transformer", "agnews_hf_bert", "conll_ner")}
    assert headlines["agnews_transformer"]["test"] == round(metrics["test"]["accuracy"], 4)
    assert headlines["agnews_hf_bert"]["validation"] == round(hf["fine_tune"]["validation_accuracy"], 4)
    assert (headlines["conll_ner"]["metric"], headlines["conll_ner"]["test"]) == ("entity F1", round(ner["test"]["f1"], 4))


@pytest.mark.slow
def test_export_cells_call_serving_default_of_the_real_exports(notebook, monkeypatch, real_runs):
    namespace = notebook_namespace(notebook, monkeypatch, quick=True, models="packaged", work_dir=real_runs)
    monkeypatch.chdir(real_runs)
    class_names = read_json(real_runs / "runs" / "agnews_transformer" / "metrics.json")["test"]["class_names"]
    table = namespace["classify"]("saved_models/agnews_transformer", namespace["HEADLINES"])
    assert list(table["text"]) == namespace["HEADLINES"] and set(table["label"]) <= set(class_names)
    assert ((table["probability"] >= 0.25) & (table["probability"] <= 1)).all()
    texts = ["John lives in New York.", "the cat sat on the mat!", ""]
    found = namespace["find_entities"]("saved_models/conll_ner", texts)
    assert len(found) == 3 and found[2] == []
    for text, entities in zip(texts, found):
        for entity in entities:
            assert entity["word"] == text[entity["start"]:entity["end"]] and 0 < entity["score"] <= 1
            assert entity["entity_group"] in ("PER", "ORG", "LOC", "MISC")
    page = namespace["highlighted_html"]("John lives in New York.", [
        {"entity_group": "PER", "word": "John", "start": 0, "end": 4, "score": 0.9},
        {"entity_group": "LOC", "word": "New York", "start": 14, "end": 22, "score": 0.8}])
    assert page.count("<mark") == 2 and "John <small><b>PER</b> 0.90" in page and page.endswith(".</p>")


# ---------------------------------------------------------------- fetching the code, on bad input


@pytest.fixture
def fetching(notebook, monkeypatch, tmp_path):
    namespace = notebook_namespace(notebook, monkeypatch, quick=True, models="packaged", work_dir=tmp_path)
    return namespace, str(tmp_path / "tfnlp-code")


def one_line_error(namespace, call):
    with pytest.raises(namespace["NotebookError"]) as error:
        call()
    (line,) = error.value._render_traceback_()
    assert line.startswith("error: ") and "\n" not in line
    return line


def test_fetching_a_project_folder_copies_it_without_build_outputs(fetching, tmp_path):
    namespace, target = fetching
    assert namespace["fetch_code"](REPO, target) == target
    assert namespace["is_tfnlp_project"](target)
    assert not {".git", ".venv", "runs", "saved_models"} & set(os.listdir(target))
    assert namespace["fetch_code"](REPO, target) == target  # Again: replaced, harmless.
    assert sorted(os.listdir(tmp_path)) == ["tfnlp-code"]  # No scratch folder left.


def test_fetching_leaves_out_every_virtualenv_of_the_project(fetching, tmp_path):
    """A project folder with CI's second venv (`.venv-py313`): never copied (3.6 GB)."""
    namespace, target = fetching
    project = tmp_path / "project"
    for folder in ("tfnlp", "pipelines", "tools", ".venv-py313/bin"):
        os.makedirs(project / folder)
    (project / "pyproject.toml").write_text('[project]\nname = "tfnlp"\n', encoding="utf-8")
    for file in ("tfnlp/__init__.py", "pipelines/__init__.py", "tools/colab_setup.py", ".venv-py313/bin/python"):
        (project / file).write_text("", encoding="utf-8")
    assert namespace["is_tfnlp_project"](str(project))
    assert namespace["fetch_code"](str(project), target) == target
    assert sorted(os.listdir(target)) == ["pipelines", "pyproject.toml", "tfnlp", "tools"]


def test_bad_code_sources_are_one_line_each_and_leave_nothing(fetching, tmp_path):
    namespace, target = fetching
    fetch = namespace["fetch_code"]
    not_project = tmp_path / "other.zip"
    with zipfile.ZipFile(not_project, "w") as archive:
        archive.writestr("other-main/README.md", "not tfnlp")
    not_zip = tmp_path / "notes.zip"
    not_zip.write_text("plain text")
    assert "not the tfnlp project" in one_line_error(namespace, lambda: fetch(str(not_project), target))
    assert "not a zip file" in one_line_error(namespace, lambda: fetch(str(not_zip), target))
    assert "not a git URL, an existing folder or a .zip" in one_line_error(namespace, lambda: fetch("tfnlp-main", target))
    assert "not the tfnlp project" in one_line_error(namespace, lambda: fetch(str(tmp_path), target))
    assert "CODE is empty" in one_line_error(namespace, lambda: fetch("", target))
    line = one_line_error(namespace, lambda: fetch("https://no-such-host.invalid/tfnlp.git", target))
    assert "cannot reach no-such-host.invalid:443" in line and "upload a .zip" in line
    assert sorted(os.listdir(tmp_path)) == ["notes.zip", "other.zip"]  # Nothing half-fetched.


def test_a_zip_of_the_project_in_one_top_folder_is_found(fetching, tmp_path):
    namespace, target = fetching
    archive_path = tmp_path / "tfnlp-main.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        for folder, _, files in os.walk(REPO):
            relative = os.path.relpath(folder, REPO)
            if relative.split(os.sep)[0] in (".git", ".venv", "runs", "saved_models") or "__pycache__" in relative:
                continue
            for name in files:
                archive.write(os.path.join(folder, name), os.path.join("tfnlp-main", relative, name))
    assert namespace["fetch_code"](str(archive_path), target) == target
    assert namespace["is_tfnlp_project"](target)
    assert sorted(os.listdir(tmp_path)) == ["tfnlp-code", "tfnlp-main.zip"]
