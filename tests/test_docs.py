"""The documents work as written: README.md and every ``docs/*.md`` page.

Their Python snippets run, their commands name real options and Makefile
targets, their links resolve, the README stays a guide (at most `README_MAX_LINES`
lines) and its Troubleshooting table quotes messages the code prints.

- Every ```` ```python ```` block of README.md and ``docs/*.md`` runs in a fresh interpreter, from a
  temporary folder outside the repository (the package as installed by
  ``make setup``), with tiny fixtures where the README points at real things:
  ``../shared/data`` and ``$TFNLP_DATA_DIR`` hold tiny AG News and CoNLL-2003
  files, ``path/to/hf_bert`` a tiny BERT, ``saved_models/hub/...`` TF-Hub
  artifacts exported from it, and ``saved_models/agnews_transformer`` the
  session's tiny export (`classifier_run`) that an in-process gRPC PredictionService serves for the gRPC snippet
  (its ``localhost:8500`` is replaced by that server's port). They run in one fresh Python, each in a
  namespace of its own (one TensorFlow start-up for all). `SNIPPETS` says,
  per snippet, what runs before it and what is then asserted. A block that no
  entry of `SNIPPETS` names still runs, bare. A block that cannot run here is
  marked explicitly: its first line is ``# not run: <why>``.
- Every ``python -m pipelines.<name> ...`` command (code blocks and inline
  code) goes through that script's own argument parsing and validation
  (`command_options.parse_command`: its checks of values and combinations too);
  every ``--option`` mentioned anywhere is one of a script's options or a listed
  option of another tool; every ``make <target>`` is a Makefile target.
- Every relative link (``[text](path)``, ``[text](path#anchor)``,
  ``[text](#anchor)``) names a file that exists and a heading of that file.
- Each message the README's Troubleshooting table quotes (its first table's
  first column; ``...`` stands for a varying part) is found in one string of
  the code (`tfnlp/`, `pipelines/`, `tools/`, the Makefile, `.ci/run`), and each
  one-line error the fit scripts' argument checks, the data loaders, the model
  folders and the set-up tools raise is matched by a row: the table cannot rot.
"""

import ast
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import pytest

from command_options import command_parser, make_targets, script_options  # noqa: F401  (command_parser: a fixture)
from command_options import pipeline_commands_with_env, validating_function
from helpers import topic_rows, write_ag_news_folder, write_tiny_bert_folder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "README.md")
# The documents checked here: the README (the guide) and the pages it links to.
DOCUMENTS = [README] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))
README_MAX_LINES = 350
NOT_RUN = re.compile(r"^# not run: \S")
TAG_NAMES = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
CONLL = ("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\ncall NN I-NP O\n"
         ". . O O\n\nPeter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n\nBRUSSELS NNP B-NP B-LOC\n")
VOCAB = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "i", "love", "transformers", "stocks",
         "rallied", "on", "wall", "street", ".", "the", "a", "##s"]

GRPC_SERVER = """
import grpc as _grpc
from concurrent import futures as _futures
from tensorflow_serving.apis import prediction_service_pb2_grpc as _services
from tfnlp.serving import ServedModel as _ServedModel

class _PredictionService(_services.PredictionServiceServicer):  # What tensorflow_model_server answers.
    _model = _ServedModel.load("saved_models/agnews_transformer")

    def Predict(self, request, context):
        return self._model.predict(request)

_server = _grpc.server(_futures.ThreadPoolExecutor(max_workers=2))
_services.add_PredictionServiceServicer_to_server(_PredictionService(), _server)
_port = _server.add_insecure_port("localhost:0")
_server.start()
"""

# A snippet's marker (a line it contains) -> (code run before it, replacements in it, checks run after it).
SNIPPETS = {
    'data.load_ag_news("train"': ("", {}, """
        assert list(class_names) == ["World", "Sports", "Business", "Sci/Tech"], class_names
        train_count, validation_count = len(list(train)), len(list(validation))
        assert train_count + validation_count == 44 and 4 <= validation_count <= 5, (train_count, validation_count)
        assert list(tag_names[:3]) == ["O", "B-PER", "I-PER"] and len(list(conll)) == 3, (tag_names, len(list(conll)))
        """),
    "pretrained.load_bert_for_token_classification": (
        f"class_names = ['World', 'Sports', 'Business', 'Sci/Tech']\ntag_names = {TAG_NAMES!r}\n", {}, """
        assert model.config.num_labels == 9 and model.config.hidden_size == 32  # The tiny BERT, for NER.
        """),
    "BertTokenizer.from_pretrained(sequence_length=128)": ("", {}, """
        assert features["input_ids"].shape[0] == 1 and int(tf.reduce_sum(features["attention_mask"])) == 6, features
        """),
    'hub.KerasLayer("saved_models/hub/all-MiniLM-L6-v2_encoder"': ("", {}, """
        assert pooled.shape == (1, 32)  # The tiny BERT's width.
        """),
    'TFBertForSequenceClassification.from_pretrained("saved_models/agnews_hf_bert': ("", {}, """
        assert model.config.num_labels == 4 and tokenizer("I love transformers")["input_ids"][0] == 3  # [CLS]
        """),
    "prediction_service_pb2_grpc.PredictionServiceStub": (GRPC_SERVER, {'"localhost:8500"': 'f"localhost:{_port}"'}, """
        assert tf.make_ndarray(response.outputs["probabilities"]).shape == (1, 4)
        assert tf.make_ndarray(response.outputs["label"])[0].decode() in ("World", "Sports", "Business", "Sci/Tech")
        _server.stop(None)
        """),
}

# Options the README mentions for other tools than tfnlp's scripts (TF Serving, docker, pip, pytest).
OTHER_TOOLS_OPTIONS = {"--port", "--rest_api_port", "--model_config_file", "--enable_model_warmup", "--rm",
                       "--no-deps", "--quiet", "--upgrade", "--editable", "--model_base_path", "--model_name",
                       # tensorflow_model_server's (model_servers/main.cc) and docker run's.
                       "--enable_batching", "--batching_parameters_file", "--enable_per_model_batching_parameters",
                       "--monitoring_config_file", "--tensorflow_intra_op_parallelism",
                       "--tensorflow_inter_op_parallelism", "--cpus"}


def read_readme():
    with open(README, encoding="utf-8") as f:
        return f.read()


def read_documents():
    """``{relative path: text}`` of README.md and every ``docs/*.md`` page."""
    texts = {}
    for path in DOCUMENTS:
        with open(path, encoding="utf-8") as f:
            texts[os.path.relpath(path, REPO)] = f.read()
    return texts


def all_documents_text():
    return "\n".join(read_documents().values())


def split_fences(text):
    """``([(language, code), ...], prose)``: the fenced code blocks of a Markdown text, and the lines outside them."""
    blocks, prose, current, language = [], [], None, None
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            if current is None:
                current, language = [], line[3:].strip()
            else:
                blocks.append((language, "".join(current)))
                current = None
        elif current is None:
            prose.append(line)
        else:
            current.append(line)
    assert current is None, "a document has an unclosed code fence"
    return blocks, "".join(prose)


def code_blocks(text, language):
    return [code for lang, code in split_fences(text)[0] if lang == language]


def all_python_snippets():
    """``(document, code)`` for every Python block of the documents, those marked ``# not run: ...`` included."""
    return [(name, code) for name, text in read_documents().items() for code in code_blocks(text, "python")]


def python_snippets():
    """The Python blocks that run: all but those whose first line is ``# not run: <why>``."""
    return [(name, code) for name, code in all_python_snippets() if not NOT_RUN.match(code)]


def snippet_id(document_and_snippet):
    document, snippet = document_and_snippet
    first = next(line for line in snippet.splitlines() if line.strip() and not line.startswith("import"))
    return os.path.basename(document)[:-3] + ":" + re.sub(r"\W+", "_", first)[:40]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, classifier_run):
    """A folder outside the repository with the README's paths: ``work`` (the snippets' cwd), ``shared/data``."""
    from tfnlp.hub.export import export_hub_bert

    root = tmp_path_factory.mktemp("readme")
    data = root / "shared" / "data"
    write_ag_news_folder(data, topic_rows(44, seed=0), topic_rows(8, seed=1))
    (data / "conll2003").mkdir()
    for split in ("train", "valid", "test"):
        (data / "conll2003" / f"{split}.txt").write_text(CONLL, encoding="utf-8")
    work = root / "work"
    bert = write_tiny_bert_folder(work / "path" / "to" / "hf_bert", VOCAB, max_position_embeddings=128)
    artifacts = export_hub_bert(str(bert), str(root / "hub"))
    # An HF classifier export's save_pretrained folder, as pipelines.agnews_hf_bert writes it.
    from tfnlp import pretrained

    classifier = pretrained.load_bert_for_sequence_classification(
        str(bert), labels=["World", "Sports", "Business", "Sci/Tech"])
    pretrained.save_pretrained(classifier, str(work / "saved_models" / "agnews_hf_bert" / "1" / "hf_model"), str(bert))
    (work / "saved_models" / "hub").mkdir(parents=True)
    os.rename(artifacts.preprocess, work / "saved_models" / "hub" / "all-MiniLM-L6-v2_preprocess")
    os.rename(artifacts.encoder, work / "saved_models" / "hub" / "all-MiniLM-L6-v2_encoder")
    # The session's tiny pipelines.agnews_transformer export, as `make train` leaves it in saved_models/.
    shutil.copytree(classifier_run["export"], work / "saved_models" / "agnews_transformer" / "1")
    assert not str(work).startswith(REPO)
    return {"work": work, "data": data}


def snippet_program(snippet):
    """The program run for ``snippet``: its `SNIPPETS` set-up, the snippet (with its replacements), its checks."""
    matches = [marker for marker in SNIPPETS if marker in snippet]
    assert len(matches) <= 1, f"several SNIPPETS entries match one snippet: {matches}"
    before, replacements, after = SNIPPETS[matches[0]] if matches else ("", {}, "")
    code = snippet
    for old, new in replacements.items():
        assert old in code, f"the snippet no longer contains {old!r}"
        code = code.replace(old, new)
    return "\n".join([textwrap.dedent(before), code, textwrap.dedent(after)])


# Runs each program in a namespace of its own, in one fresh Python outside the repository (one TensorFlow start-up
# for all of them, not one each), and prints one JSON line: {program file: the traceback, or "" if it ran}.
SNIPPET_RUNNER = """
import json, sys, traceback
results = {}
for path in sys.argv[1:]:
    source = open(path, encoding="utf-8").read()
    try:
        exec(compile(source, path, "exec"), {"__name__": "__main__"})
        results[path] = ""
    except BaseException:
        results[path] = traceback.format_exc()
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def snippet_results(sandbox, tmp_path_factory):
    """Every runnable snippet's outcome: ``{snippet id: traceback or ""}``, from one fresh Python in the sandbox."""
    folder = tmp_path_factory.mktemp("snippets")
    files = {}
    for number, (document, snippet) in enumerate(python_snippets()):
        path = folder / f"snippet_{number}.py"
        path.write_text(snippet_program(snippet), encoding="utf-8")
        files[str(path)] = snippet_id((document, snippet))
    env = {**os.environ, "PYTHONPATH": "", "TF_CPP_MIN_LOG_LEVEL": "2", "TFNLP_DATA_DIR": str(sandbox["data"])}
    result = subprocess.run([sys.executable, "-c", SNIPPET_RUNNER, *files], cwd=sandbox["work"], env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    outcomes = json.loads(result.stdout.strip().splitlines()[-1])
    return {files[path]: outcome for path, outcome in outcomes.items()}


@pytest.mark.slow
@pytest.mark.parametrize("document_and_snippet", python_snippets(), ids=snippet_id)
def test_python_snippet_runs(document_and_snippet, snippet_results):
    document, snippet = document_and_snippet
    outcome = snippet_results[snippet_id(document_and_snippet)]
    assert outcome == "", f"{document} snippet failed:\n{snippet_program(snippet)}\n--- traceback:\n{outcome[-4000:]}"


def test_the_documents_have_the_snippets_this_test_prepares_for():
    snippets = [code for _, code in python_snippets()]
    assert len(snippets) >= 5
    for marker in SNIPPETS:
        assert any(marker in snippet for snippet in snippets), f"no runnable snippet contains {marker!r} any more"
    for document, code in all_python_snippets():  # A block that does not run says why, on its first line.
        assert not code.startswith("# not run") or NOT_RUN.match(code), f"{document}: '# not run:' without a reason"


def shell_text(text):
    """A document's shell commands: its non-Python code blocks, then each inline code span on a line of its own."""
    fenced, prose = split_fences(text)
    blocks = [code for language, code in fenced if language not in ("python", "json")]
    spans = [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose)]
    return "\n".join(blocks + spans)


def test_every_pipeline_command_in_the_documents_passes_the_scripts_own_checks(command_parser):
    commands = [command for text in read_documents().values() for command in pipeline_commands_with_env(shell_text(text))]
    names = {name for name, _, _ in commands}
    assert {"agnews_transformer", "agnews_hub_bert", "serving.predict", "serving.config"} <= names, names
    assert any("TF_CONFIG" in env for _, _, env in commands)  # The multi-worker commands, each with its cluster.
    for name, argv, env in commands:
        if not argv:  # A script named in prose or a table (some need arguments): it must exist.
            import importlib

            assert hasattr(importlib.import_module(f"pipelines.{name}"), "main"), f"pipelines.{name} has no main"
            continue
        command_parser(name, argv, env)


def pipeline_scripts():
    """The names of the ``pipelines`` modules that are commands (have a ``main``), relative to ``pipelines``: the fit
    scripts (``agnews_transformer``) and the commands of its sub-packages (``serving.predict``)."""
    import importlib

    root = os.path.join(REPO, "pipelines")
    names = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if os.path.isfile(os.path.join(folder, d, "__init__.py")))
        prefix = os.path.relpath(folder, root).replace(os.sep, ".").lstrip(".")
        names += [f"{prefix}.{file[:-3]}" if prefix else file[:-3] for file in sorted(files)
                  if file.endswith(".py") and not file.startswith("_")]
    return [name for name in sorted(names) if hasattr(importlib.import_module(f"pipelines.{name}"), "main")]


def test_every_script_checks_its_command_line_in_one_function_the_command_check_runs(command_parser):
    import importlib

    for name in pipeline_scripts():
        validating_function(importlib.import_module(f"pipelines.{name}"))
    # The scripts' checks run, not only argparse's: each of these parses, and each is refused by a check.
    for name, argv, message in [
            ("conll_ner", ["--max-length", "2"], "--max-length must be at least 3"),
            ("agnews_hf_bert", ["--skip-frozen-stage", "--skip-fine-tuning"], "leave nothing to train"),
            ("serving.predict", ["--model", "m", "--batch-size", "0", "x"], "--batch-size must be at least 1"),
            ("bench.agnews_hf_bert", ["--epochs", "0"], "--epochs and --warmup-steps must be at least 1"),
            ("bench.agnews_transformer", ["--", "--epochs", "0"], "--epochs and --batch-size must be at least 1")]:
        with pytest.raises(AssertionError, match="the script rejects it") as info:
            command_parser(name, argv)
        assert message in str(info.value)


def test_every_command_runs_through_cli_run():
    """Each ``pipelines`` command ends with ``cli.run(main)``: one ``error:`` line and exit code 1 for user errors,
    2 for argument errors, ``--debug``, ``--verbose`` / ``--quiet``, as the fit scripts."""
    for name in pipeline_scripts():
        with open(os.path.join(REPO, "pipelines", *name.split(".")) + ".py", encoding="utf-8") as f:
            tree = ast.parse(f.read())
        last = tree.body[-1]
        assert isinstance(last, ast.If) and ast.unparse(last.test) == "__name__ == '__main__'" and \
            [ast.unparse(statement) for statement in last.body] == ["cli.run(main)"], (
            f"pipelines.{name} does not end with: if __name__ == '__main__': cli.run(main)")
        assert "sys.exit" not in ast.unparse(tree), f"pipelines.{name} calls sys.exit (raise a tfnlp error instead)"


def all_script_options(monkeypatch):
    """Every option of every ``pipelines`` script and ``tools/`` program with a ``main``."""
    import importlib
    import importlib.util

    options = set()
    for name in pipeline_scripts():
        options |= script_options(name, monkeypatch)
    for file in sorted(os.listdir(os.path.join(REPO, "tools"))):
        if file.endswith(".py"):
            spec = importlib.util.spec_from_file_location(f"tools_{file[:-3]}", os.path.join(REPO, "tools", file))
            tool = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(tool)
            if hasattr(tool, "main"):
                options |= script_options(file[:-3], monkeypatch, module=tool)
    return options


def test_every_option_the_documents_mention_exists(monkeypatch):
    known = all_script_options(monkeypatch) | OTHER_TOOLS_OPTIONS
    assert "--strategy" in known and "--output-dir" in known
    for name, text in read_documents().items():
        mentioned = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*", text))
        unknown = sorted(mentioned - known)
        assert not unknown, f"{name} mentions options no script accepts: {unknown}"


def test_every_make_target_in_the_documents_exists():
    targets = make_targets(os.path.join(REPO, "Makefile"))
    for name, text in read_documents().items():
        named = set(re.findall(r"`make\s+([a-z][\w-]*)", text))
        for block in [code for language, code in split_fences(text)[0] if language in ("bash", "sh", "")]:
            named |= set(re.findall(r"^\s*make\s+([a-z][\w-]*)", block, flags=re.M))
        if name == "README.md":
            assert {"train", "test"} <= named, named
        assert not named - targets, f"{name} names make targets the Makefile lacks: {sorted(named - targets)}"


def test_the_readme_is_a_guide_of_at_most_350_lines():
    lines = read_readme().count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move details to a docs/ page and link it"
    linked = set(re.findall(r"\]\((docs/[\w.-]+\.md)", read_readme()))
    pages = {os.path.relpath(path, REPO) for path in DOCUMENTS[1:]}
    assert pages and pages <= linked, f"docs pages the README does not link: {sorted(pages - linked)}"


def heading_anchors(text):
    """The anchors GitHub gives a Markdown text's headings (outside code blocks): lower case, punctuation
    other than ``-`` and ``_`` dropped, spaces as ``-``, a repeated anchor suffixed ``-1``, ``-2``, ..."""
    _, prose = split_fences(text)
    anchors, seen = set(), {}
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", prose, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def test_heading_anchors_follow_githubs_rules():
    text = "# A b\n\n## AG News with HuggingFace `TFBert` (`pipelines.agnews_hf_bert`)\n\n```\n# not a heading\n```\n# A b\n"
    assert heading_anchors(text) == {"a-b", "ag-news-with-huggingface-tfbert-pipelinesagnews_hf_bert", "a-b-1"}


def test_every_relative_link_in_the_documents_resolves():
    texts = read_documents()
    checked = 0
    for name, text in texts.items():
        _, prose = split_fences(text)
        for target in re.findall(r"\]\(([^)\s]+)\)", prose):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto: are not checked here.
                continue
            path, _, anchor = target.partition("#")
            linked = os.path.normpath(os.path.join(os.path.dirname(name), path)) if path else name
            assert os.path.exists(os.path.join(REPO, linked)), f"{name}: the link {target!r} names no file"
            if anchor:
                assert linked in texts, f"{name}: the link {target!r} has an anchor into a file that is not a document"
                assert anchor in heading_anchors(texts[linked]), f"{name}: the link {target!r}: no such heading"
            checked += 1
    assert checked >= 20, checked


# Where the messages a user can meet are written: the code's strings (Python) and the lines of the shell and make files.
MESSAGE_SOURCES = ("tfnlp", "pipelines", "tools")
MESSAGE_TEXT_FILES = ("Makefile", os.path.join(".ci", "run"), os.path.join("tools", "venv.sh"))


def source_trees():
    """``(path, parsed module)`` for every Python file of `MESSAGE_SOURCES`, each parsed once per session."""
    if not _SOURCE_TREES:
        for folder in MESSAGE_SOURCES:
            for path in sorted(glob.glob(os.path.join(REPO, folder, "**", "*.py"), recursive=True)):
                with open(path, encoding="utf-8") as f:
                    _SOURCE_TREES.append((path, ast.parse(f.read())))
    return _SOURCE_TREES


_SOURCE_TREES = []


def literal_text(node):
    """The text of a string literal node (an f-string's fields as ``{}``); None for any other node."""
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def source_strings():
    """Every string of the code: Python string literals (adjacent ones joined, an f-string's fields as ``{}``),
    and each line of the Makefile and the shell scripts."""
    strings = []
    for _, tree in source_trees():
        for node in ast.walk(tree):
            text = literal_text(node)
            if text is not None:
                strings.append(text)
    for name in MESSAGE_TEXT_FILES:
        with open(os.path.join(REPO, name), encoding="utf-8") as f:
            strings.extend(f.read().splitlines())
    return strings


def message_pattern(quoted):
    """A regular expression for a message as the table quotes it: ``...`` stands for any text."""
    parts = [re.escape(part.strip()) for part in quoted.split("...")]
    return re.compile(".*?".join(part for part in parts if part), re.S)


def troubleshooting_rows():
    """``[(quoted messages, row)]``: the code spans of the first column of the README's Troubleshooting table
    (the first table of the section; the second one lists messages of other libraries)."""
    section = read_readme().split("\n## Troubleshooting\n", 1)[1].split("\n## ", 1)[0]
    table = re.search(r"^\|.*?(?=\n\n|\n?\Z)", section, flags=re.M | re.S).group(0)
    rows = []
    for row in table.splitlines()[2:]:
        first = row.split(" | ")[0]
        rows.append((re.findall(r"`([^`]+)`", first), row))
    return rows


def test_every_message_in_the_troubleshooting_table_is_one_the_code_prints():
    strings = source_strings()
    rows = troubleshooting_rows()
    assert len(rows) >= 30, len(rows)
    for quoted, row in rows:
        assert quoted, f"a Troubleshooting row quotes no message: {row}"
        assert row.count(" | ") == 2 and row.rstrip().endswith("|"), f"a row needs message, cause and fix: {row}"
        for message in quoted:
            pattern = message_pattern(message)
            assert any(pattern.search(string) for string in strings), (
                f"the Troubleshooting table quotes {message!r}, which no string of the code holds any more: {row}")


def user_error_messages():
    """``[(file:line, message)]``: the one-line errors a user can meet, as the code raises them: every message of
    the project's error classes, of `parser.error` and of the argument checks (a ``ValueError`` naming an
    ``--option`` in the fit scripts' arguments and the commands), and the set-up tools' errors."""
    classes = {"DataFormatError", "DataSourceUnavailableError", "ConfigurationError", "ModelFolderError",
               "KerasVersionError", "SetupError", "RehearsalError"}
    messages = []
    for path, tree in source_trees():
        for node in ast.walk(tree):
            call = node.exc if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) else (
                node if isinstance(node, ast.Call) else None)
            if call is None or not call.args:
                continue
            name = ast.unparse(call.func).split(".")[-1]
            message = call.args[-1] if name in ("DataFormatError", "ModelFolderError") else call.args[0]
            text = literal_text(message)
            if text is None:
                continue  # A message built elsewhere (checked where it is written) or passed on.
            if (isinstance(node, ast.Raise) and name in classes) or (
                    isinstance(node, ast.Call) and name == "error" and "parser" in ast.unparse(call.func)) or (
                    isinstance(node, ast.Raise) and name == "ValueError" and "--" in text):
                messages.append((f"{os.path.relpath(path, REPO)}:{node.lineno}", text))
    return messages


def test_every_user_error_the_code_raises_has_a_troubleshooting_row():
    patterns = [message_pattern(message) for quoted, _ in troubleshooting_rows() for message in quoted]
    messages = user_error_messages()
    assert len(messages) >= 80, len(messages)
    missing = [f"{where}: {text}" for where, text in messages
               if text.strip("{}: ") and not any(pattern.search(text) for pattern in patterns)]
    assert not missing, "errors without a row in the README's Troubleshooting table:\n" + "\n".join(missing)
