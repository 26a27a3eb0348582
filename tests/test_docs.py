"""README.md works as written: its Python snippets run, its commands name real options and Makefile targets.

- Every ```` ```python ```` block of README.md runs in a fresh interpreter, from a
  temporary folder outside the repository (the package as installed by
  ``make setup``), with tiny fixtures where the README points at real things:
  ``../shared/data`` and ``$TFNLP_DATA_DIR`` hold tiny AG News and CoNLL-2003
  files, ``path/to/hf_bert`` a tiny BERT, ``saved_models/hub/...`` TF-Hub
  artifacts exported from it, and ``saved_models/agnews_transformer`` a tiny
  export that an in-process gRPC PredictionService serves for the gRPC snippet
  (its ``localhost:8500`` is replaced by that server's port). `SNIPPETS` says,
  per snippet, what runs before it and what is then asserted. A block that no
  entry of `SNIPPETS` names still runs, bare.
- Every ``python -m pipelines.<name> ...`` command (code blocks and inline
  code) goes through that script's own argument parsing and validation
  (`command_options.parse_command`: its checks of values and combinations too);
  every ``--option`` mentioned anywhere is one of a script's options or a listed
  option of another tool; every ``make <target>`` is a Makefile target.
"""

import os
import re
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
TAG_NAMES = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
CONLL = ("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\ncall NN I-NP O\n"
         ". . O O\n\nPeter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n\nBRUSSELS NNP B-NP B-LOC\n")
VOCAB = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "i", "love", "transformers", "stocks",
         "rallied", "on", "wall", "street", ".", "the", "a", "##s"]
TINY_TRANSFORMER = ["--tokenizer", "text_vectorization", "--no-pretrained-embeddings", "--embedding-dim", "8",
                    "--num-heads", "2", "--intermediate-dim", "8", "--sequence-length", "32", "--epochs", "1",
                    "--batch-size", "8", "--distillation-weight", "0", "--ngram-buckets", "0"]

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
    assert current is None, "README.md has an unclosed code fence"
    return blocks, "".join(prose)


def code_blocks(text, language):
    return [code for lang, code in split_fences(text)[0] if lang == language]


def python_snippets():
    return code_blocks(read_readme(), "python")


def snippet_id(snippet):
    first = next(line for line in snippet.splitlines() if line.strip() and not line.startswith("import"))
    return re.sub(r"\W+", "_", first)[:40]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A folder outside the repository with the README's paths: ``work`` (the snippets' cwd), ``shared/data``."""
    from pipelines import agnews_transformer
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
    agnews_transformer.main(["--data-dir", str(data), "--output-dir", str(root / "run"),
                             "--export-dir", str(work / "saved_models" / "agnews_transformer"), *TINY_TRANSFORMER])
    assert not str(work).startswith(REPO)
    return {"work": work, "data": data}


@pytest.mark.slow
@pytest.mark.parametrize("snippet", python_snippets(), ids=snippet_id)
def test_readme_python_snippet_runs(snippet, sandbox):
    matches = [marker for marker in SNIPPETS if marker in snippet]
    assert len(matches) <= 1, f"several SNIPPETS entries match one snippet: {matches}"
    before, replacements, after = SNIPPETS[matches[0]] if matches else ("", {}, "")
    code = snippet
    for old, new in replacements.items():
        assert old in code, f"the snippet no longer contains {old!r}"
        code = code.replace(old, new)
    program = "\n".join([textwrap.dedent(before), code, textwrap.dedent(after)])
    env = {**os.environ, "PYTHONPATH": "", "TF_CPP_MIN_LOG_LEVEL": "2", "TFNLP_DATA_DIR": str(sandbox["data"])}
    result = subprocess.run([sys.executable, "-c", program], cwd=sandbox["work"], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, f"README snippet failed:\n{program}\n--- stderr:\n{result.stderr[-4000:]}"


def test_readme_has_the_snippets_this_test_prepares_for():
    snippets = python_snippets()
    assert len(snippets) >= 5
    for marker in SNIPPETS:
        assert any(marker in snippet for snippet in snippets), f"no README snippet contains {marker!r} any more"


def shell_text(text):
    """The README's shell commands: its non-Python code blocks, then each inline code span on a line of its own."""
    fenced, prose = split_fences(text)
    blocks = [code for language, code in fenced if language not in ("python", "json")]
    spans = [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose)]
    return "\n".join(blocks + spans)


def test_every_pipeline_command_in_the_readme_passes_the_scripts_own_checks(command_parser):
    commands = pipeline_commands_with_env(shell_text(read_readme()))
    names = {name for name, _, _ in commands}
    assert {"agnews_transformer", "agnews_hub_bert", "predict", "serving_config"} <= names, names
    assert any("TF_CONFIG" in env for _, _, env in commands)  # The multi-worker commands, each with its cluster.
    for name, argv, env in commands:
        if not argv:  # A script named in prose or a table (some need arguments): it must exist.
            import importlib

            assert hasattr(importlib.import_module(f"pipelines.{name}"), "main"), f"pipelines.{name} has no main"
            continue
        command_parser(name, argv, env)


def pipeline_scripts():
    """The names of the ``pipelines`` modules that are commands (have a ``main``)."""
    import importlib

    return [file[:-3] for file in sorted(os.listdir(os.path.join(REPO, "pipelines")))
            if file.endswith(".py") and not file.startswith("_")
            and hasattr(importlib.import_module(f"pipelines.{file[:-3]}"), "main")]


def test_every_script_checks_its_command_line_in_one_function_the_command_check_runs(command_parser):
    import importlib

    for name in pipeline_scripts():
        validating_function(importlib.import_module(f"pipelines.{name}"))
    # The scripts' checks run, not only argparse's: each of these parses, and each is refused by a check.
    for name, argv, message in [
            ("conll_ner", ["--max-length", "2"], "--max-length must be at least 3"),
            ("agnews_hf_bert", ["--skip-frozen-stage", "--skip-fine-tuning"], "leave nothing to train"),
            ("predict", ["--model", "m", "--batch-size", "0", "x"], "--batch-size must be at least 1"),
            ("bench_agnews_hf_bert", ["--epochs", "0"], "--epochs and --warmup-steps must be at least 1"),
            ("bench_agnews_transformer", ["--", "--epochs", "0"], "--epochs and --batch-size must be at least 1")]:
        with pytest.raises(AssertionError, match="the script rejects it") as info:
            command_parser(name, argv)
        assert message in str(info.value)


def all_script_options(monkeypatch):
    """Every option of every ``pipelines`` script and ``tools/`` program with a ``main``."""
    import importlib
    import importlib.util

    options = set()
    for file in sorted(os.listdir(os.path.join(REPO, "pipelines"))):
        if file.endswith(".py") and not file.startswith("_") and hasattr(
                importlib.import_module(f"pipelines.{file[:-3]}"), "main"):
            options |= script_options(file[:-3], monkeypatch)
    for file in sorted(os.listdir(os.path.join(REPO, "tools"))):
        if file.endswith(".py"):
            spec = importlib.util.spec_from_file_location(f"tools_{file[:-3]}", os.path.join(REPO, "tools", file))
            tool = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(tool)
            if hasattr(tool, "main"):
                options |= script_options(file[:-3], monkeypatch, module=tool)
    return options


def test_every_option_the_readme_mentions_exists(monkeypatch):
    known = all_script_options(monkeypatch) | OTHER_TOOLS_OPTIONS
    assert "--strategy" in known and "--output-dir" in known
    mentioned = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*", read_readme()))
    unknown = sorted(mentioned - known)
    assert not unknown, f"README mentions options no script accepts: {unknown}"


def test_every_make_target_in_the_readme_exists():
    text = read_readme()
    targets = make_targets(os.path.join(REPO, "Makefile"))
    named = set(re.findall(r"`make\s+([a-z][\w-]*)", text))
    for block in [code for language, code in split_fences(text)[0] if language in ("bash", "sh", "")]:
        named |= set(re.findall(r"^\s*make\s+([a-z][\w-]*)", block, flags=re.M))
    assert {"train", "test"} <= named, named
    assert not named - targets, f"README names make targets the Makefile lacks: {sorted(named - targets)}"
