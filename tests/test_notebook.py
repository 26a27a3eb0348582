"""notebooks/quickstart.ipynb: valid nbformat 4 JSON, code cells that compile, commands the scripts accept.

The notebook runs online (tfds, the HF hub, tfhub.dev) in Colab; here it is
checked without running it: every code cell compiles once its ``!``/``%``
shell and magic lines are set aside, and every ``!python -m pipelines.<name>``
command goes through that script's own argument parser.
"""

import json
import os
import re

import pytest

from command_options import command_parser, pipeline_commands  # noqa: F401  (a fixture)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(REPO, "notebooks", "quickstart.ipynb")
LESSON_HANDLES = ("https://tfhub.dev/tensorflow/bert_en_uncased_preprocess/3",
                  "https://tfhub.dev/tensorflow/small_bert/bert_en_uncased_L-4_H-128_A-2/1")


@pytest.fixture(scope="module")
def notebook():
    with open(NOTEBOOK, encoding="utf-8") as f:
        return json.load(f)


def source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def code_cells(notebook):
    return [source(cell) for cell in notebook["cells"] if cell["cell_type"] == "code"]


def as_python(code):
    """The cell with each IPython ``!``/``%`` line replaced by ``pass`` at its indentation."""
    return "\n".join(re.sub(r"^(\s*)[!%].*$", r"\1pass", line) for line in code.splitlines())


def test_notebook_is_valid_nbformat_4(notebook):
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


def test_every_code_cell_compiles(notebook):
    cells = code_cells(notebook)
    assert len(cells) >= 8
    for index, code in enumerate(cells):
        compile(as_python(code), f"quickstart.ipynb code cell {index}", "exec")


def test_installs_from_the_repository(notebook):
    install = code_cells(notebook)[0]
    assert re.search(r"^!git clone .*\{REPO_URL\}", install, flags=re.M)
    assert "!pip install --quiet -r requirements.txt" in install
    assert "!pip install --quiet --no-deps -e ." in install


def test_runs_every_pipeline_online_then_predicts_groups_entities_and_draws_attention(notebook):
    commands = [command for code in code_cells(notebook) for command in pipeline_commands(code)]
    names = [name for name, _ in commands]
    for pipeline in ("agnews_transformer", "agnews_hub_bert", "agnews_hf_bert", "conll_ner", "compare", "predict",
                     "plot_attention"):
        assert pipeline in names, f"the notebook never runs pipelines.{pipeline}"
    assert names.index("plot_attention") > names.index("predict") > names.index("conll_ner")
    arguments = {name: argv for name, argv in commands if name not in ("predict",)}
    for name in ("agnews_transformer", "agnews_hub_bert", "agnews_hf_bert", "conll_ner"):
        assert "--data-dir" not in arguments[name], f"{name} must read its data online (tfds / HF datasets)"
        assert "--output-dir" in arguments[name] and "--export-dir" in arguments[name]
    hub = arguments["agnews_hub_bert"]
    assert (hub[hub.index("--preprocess") + 1], hub[hub.index("--encoder") + 1]) == LESSON_HANDLES
    assert arguments["agnews_hf_bert"][arguments["agnews_hf_bert"].index("--pretrained") + 1] == "bert-base-uncased"
    predicted = [argv for name, argv in commands if name == "predict"]
    assert any("saved_models/conll_ner" in argv for argv in predicted), "no grouped entities from the NER export"
    last_code = code_cells(notebook)[-1]
    assert "plot_attention" in last_code and 'display(Image("attention.png"))' in last_code


def test_every_command_names_options_its_script_accepts(notebook, command_parser):
    commands = [command for code in code_cells(notebook) for command in pipeline_commands(code)]
    assert len(commands) >= 8
    for name, argv in commands:
        namespace = command_parser(name, argv)
        assert namespace is not None, f"pipelines.{name} {argv}: only --help was parsed"
    transformer = dict(commands)["agnews_transformer"]
    assert vars(command_parser("agnews_transformer", transformer))["epochs"] == 2
