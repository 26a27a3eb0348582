"""Shared pytest fixtures and the test tiers.

Unit tests build their own tiny fixtures; the ones several files use (a tiny
vocabulary, tiny BERT folders, a tiny AG News folder) are defined here once.
Integration tests read the real data from ``TFNLP_DATA_DIR``, else from
``../shared/data`` beside the repository (as the Makefile finds it), and are
skipped (reported as skipped, never as passed) when there is neither.

The run folders that the library's consumers read (report pictures,
``pipelines.reports.compare``, ``pipelines.serving.predict``, the exports) are made once per
session by the real fit scripts on tiny data (`ner_run`, `classifier_run`), so
that every consumer is tested on what its producer really writes.

Tiers, as keras-hub's ``--run_large`` and HF's ``RUN_SLOW``: `make test`
keeps each pipeline end to end on tiny data, a short real-data run of each,
one SIGKILL and resume, the export contract (each export kind reloaded in a
fresh Python without tfnlp) and the documentation. Tests marked ``large`` (a
kill at every stage, multi-worker and mirrored clusters, the longer real-data
runs, option variants and second runs of whole pipelines, XLA compiles,
benchmarks, fresh processes that repeat what another test checks) are skipped
unless ``--run-large`` is given or ``TFNLP_RUN_LARGE=1`` is set; `make test`
leaves them out, `make test-all` runs everything (CI does). Tests marked ``slow`` run in
`make test` but not in `make test-fast` (everything that trains a pipeline).
"""

import json
import os
import shutil

import tfnlp  # noqa: F401  (selects Keras 2 before TensorFlow is imported)

import pytest

from helpers import TOPIC_VOCAB, ag_news_rows, write_ag_news_folder, write_tiny_bert_folder

LARGE_SKIP_REASON = "large tier: run with --run-large or TFNLP_RUN_LARGE=1 (make test-all)"
TINY_VOCAB = [
    "[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "the", "a", "cat", "sat", "on", "mat", "dog", "##s", "run", "##ning", "new", "york",
    "john", "lives", "in", ".", ",", "!", "'", "-", "un", "##aff", "##able", "hello", "world",
]


def pytest_addoption(parser):
    parser.addoption("--run-large", action="store_true", default=False,
                     help="also run the tests marked large (as TFNLP_RUN_LARGE=1; `make test-all`)")


def run_large(config):
    """Whether this session runs the large tier (``--run-large`` or ``TFNLP_RUN_LARGE=1``)."""
    return config.getoption("--run-large") or os.environ.get("TFNLP_RUN_LARGE", "") not in ("", "0")


# Fixtures that run whole fit scripts or exports. The tests that use one run on one pytest-xdist worker
# (`--dist loadgroup`, as the Makefile runs pytest), so it is built once while the other worker runs other
# tests: each session run is a group of its own (a test reading two runs joins the first one's group, and
# `build_once` makes the other run once for both workers); a module's own fixture groups that module's tests.
SESSION_RUN_FIXTURES = ("hf_bert_run", "ner_run", "classifier_run")
MODULE_RUN_FIXTURES = ("tv_run", "artifacts", "hub_run", "frozen_run", "sandbox", "deployment")


def xdist_group(item):
    """The pytest-xdist group of ``item``: by the heavy fixtures it uses (`SESSION_RUN_FIXTURES`,
    `MODULE_RUN_FIXTURES`); None for the others, which go to whichever worker is free."""
    names = set(item.fixturenames)
    for name in SESSION_RUN_FIXTURES:
        if name in names:
            return name
    if names & set(MODULE_RUN_FIXTURES):
        return item.module.__name__
    return None


def pytest_itemcollected(item):
    group = xdist_group(item)  # Marked as each test is collected: pytest-xdist reads the groups after that.
    if group:
        item.add_marker(pytest.mark.xdist_group(name=group))


def pytest_collection_modifyitems(config, items):
    if run_large(config):
        return
    skip_large = pytest.mark.skip(reason=LARGE_SKIP_REASON)
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip_large)


@pytest.fixture(scope="session", autouse=True)
def _hermetic_cache(tmp_path_factory):
    """Converted pretrained weights go to a per-session cache, never the user's ~/.cache/tfnlp."""
    previous = os.environ.get("TFNLP_CACHE_DIR")
    os.environ["TFNLP_CACHE_DIR"] = str(tmp_path_factory.mktemp("tfnlp_cache"))
    yield
    if previous is None:
        os.environ.pop("TFNLP_CACHE_DIR", None)
    else:
        os.environ["TFNLP_CACHE_DIR"] = previous


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_once(tmp_path_factory, name, build):
    """``build(folder)`` run once per test session, shared by every pytest-xdist worker; returns its result.

    The fixtures that run a whole fit script are session- or module-scoped, but each xdist worker has
    its own session: without this, both workers build the same run. Here the first worker to ask builds
    it (the other waits on a lock, leaving it both cores) in a folder under the session's common temporary
    folder, and the result (JSON: paths and figures) is read back by the others, as pytest-xdist's
    documentation advises. A build that fails leaves nothing: the next worker tries again and fails the same.
    """
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # The folder the workers' own temporary folders are in: one per session.
    folder, result_file = root / f"built-{name}", root / f"built-{name}.json"
    with FileLock(str(root / f"built-{name}.lock")):
        if result_file.exists():
            return _read_json(result_file)
        shutil.rmtree(folder, ignore_errors=True)  # A failed build's leftovers.
        folder.mkdir()
        result = json.loads(json.dumps(build(folder), default=_json_default))
        partial = root / f"built-{name}.json.tmp"
        partial.write_text(json.dumps(result), encoding="utf-8")
        os.replace(partial, result_file)
        return result


def _json_default(value):
    if hasattr(value, "item"):  # NumPy scalars.
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"build_once: {type(value).__name__} is not JSON")


def real_data_dir():
    """The real data folder, found as the Makefile finds it; None when there is none.

    ``TFNLP_DATA_DIR`` when it is set (even to '': then none), else ``../shared/data`` relative to the
    repository root if that folder exists (the Makefile's ``TFNLP_DATA_DIR ?= $(if $(wildcard
    ../shared/data),$(abspath ../shared/data),)``).
    """
    if "TFNLP_DATA_DIR" in os.environ:
        return os.environ["TFNLP_DATA_DIR"] or None
    shared = os.path.abspath(os.path.join(REPO, "..", "shared", "data"))
    return shared if os.path.isdir(shared) else None


@pytest.fixture(scope="session")
def data_dir():
    """The real data folder (`real_data_dir`); skips the test when there is none."""
    path = real_data_dir()
    if not path:
        pytest.skip("no real data: TFNLP_DATA_DIR is not set and ../shared/data does not exist (integration test)")
    if not os.path.isdir(path):
        pytest.fail(f"TFNLP_DATA_DIR={path} is not a folder")
    return path


@pytest.fixture(scope="session")
def tiny_vocab_file(tmp_path_factory):
    """A tiny WordPiece vocabulary file (one token per line, BERT special tokens first)."""
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture
def tiny_bert_dir(tmp_path):
    """A tiny random BERT (hidden 32, 2 layers, 4 heads, `TINY_VOCAB`) as a PyTorch-format HF folder of its own.

    Holds config.json, vocab.txt, tokenizer_config.json (uncased) and
    model.safetensors; see `helpers.write_tiny_bert_folder` for variants. For
    tests that change the folder; `tiny_bert` is the same model shared read-only.
    """
    return write_tiny_bert_folder(tmp_path / "tiny_bert", TINY_VOCAB)


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# Sizes of the tiny runs: every option passed explicitly (the scripts' defaults are the real configurations).
TINY_NER = ["--max-length", "16", "--stride", "6", "--batch-size", "4", "--steps-per-execution", "1", "--epochs", "12",
            "--learning-rate", "3e-3", "--warmup-ratio", "0", "--context", "document", "--average-snapshots", "2"]
TINY_TRANSFORMER = ["--tokenizer", "text_vectorization", "--no-pretrained-embeddings", "--embedding-dim", "8",
                    "--num-heads", "2", "--intermediate-dim", "8", "--sequence-length", "32", "--epochs", "3",
                    "--batch-size", "8", "--distillation-weight", "0", "--validation-size", "8"]


@pytest.fixture(scope="session")
def ner_run(tmp_path_factory):
    """A finished tiny `pipelines.conll_ner` run (`TINY_NER`: 12 epochs, 2 averaged snapshots, export).

    A tiny random BERT (`TINY_VOCAB`) on `helpers.write_conll_folder`'s sentences. Returns a dict:
    ``metrics`` (what ``main`` returned), ``written`` (its metrics.json), ``run`` (the output folder),
    ``export`` (the exported version folder), ``data`` (the data root) and ``bert`` (the BERT folder).
    """
    def build(root):
        from helpers import write_conll_folder, write_tiny_bert_folder
        from pipelines import conll_ner

        data = write_conll_folder(root / "data")
        bert = write_tiny_bert_folder(root / "bert", TINY_VOCAB)
        run = root / "conll_ner"
        metrics = conll_ner.main(["--data-dir", data, "--pretrained", bert, "--output-dir", str(run),
                                  "--export-dir", str(root / "saved_models" / "conll_ner"), *TINY_NER])
        return {"metrics": metrics, "written": _read_json(run / "metrics.json"), "run": str(run),
                "export": metrics["export"]["path"], "data": data, "bert": bert}

    return build_once(tmp_path_factory, "ner_run", build)


@pytest.fixture(scope="session")
def classifier_run(tmp_path_factory):
    """A finished tiny `pipelines.agnews_transformer` run (`TINY_TRANSFORMER`: 3 epochs, export).

    Tiny AG News files (`helpers.topic_rows`: 40 training rows, 8 of them for validation, 12 test rows).
    Returns a dict: ``metrics`` (what ``main`` returned), ``written`` (its metrics.json), ``run`` (the
    output folder), ``export`` (the exported version folder) and ``data`` (the data root).
    """
    def build(root):
        from helpers import topic_rows, write_ag_news_folder
        from pipelines import agnews_transformer

        data = write_ag_news_folder(root / "data", topic_rows(40, seed=0), topic_rows(12, seed=1))
        run = root / "agnews_transformer"
        metrics = agnews_transformer.main(["--data-dir", data, "--output-dir", str(run), "--export-dir",
                                           str(root / "saved_models" / "agnews_transformer"), *TINY_TRANSFORMER])
        return {"metrics": metrics, "written": _read_json(run / "metrics.json"), "run": str(run),
                "export": metrics["export"]["path"], "data": data}

    return build_once(tmp_path_factory, "classifier_run", build)


TINY_HF_BERT = ["--sequence-length", "32", "--frozen-epochs", "3", "--frozen-batch-size", "8", "--epochs", "2",
                "--batch-size", "8", "--learning-rate", "1e-3", "--validation-size", "8", "--steps-per-execution", "2"]


def run_hf_bert(data_root, bert, output_dir, *extra, export_dir=""):
    """`pipelines.agnews_hf_bert` at the tiny sizes (`TINY_HF_BERT`), then ``extra``; returns what ``main`` returns."""
    from pipelines import agnews_hf_bert

    return agnews_hf_bert.main(["--data-dir", data_root, "--pretrained", bert, "--output-dir", str(output_dir),
                                "--export-dir", str(export_dir), *TINY_HF_BERT, *extra])


@pytest.fixture(scope="session")
def hf_bert_run(ag_news_root, topic_bert, tmp_path_factory):
    """A tiny `pipelines.agnews_hf_bert` run on `topic_bert` with both stages (`TINY_HF_BERT`), exported.

    Returns a dict: ``metrics`` (what ``main`` returned), ``run`` (the output folder) and ``export`` (the
    version folder). (A frozen stage alone, then both stages in its folder: the large tier's
    `test_agnews_hf_bert.test_fine_tuning_starts_from_the_frozen_head_and_changes_the_encoder`.)
    """
    def build(root):
        metrics = run_hf_bert(ag_news_root, topic_bert, root / "run", export_dir=root / "export")
        return {"metrics": metrics, "run": str(root / "run"), "export": metrics["export"]["path"]}

    return build_once(tmp_path_factory, "hf_bert_run", build)


@pytest.fixture(scope="session")
def tiny_exports(tmp_path_factory):
    """The tiny classifier and NER exports of `serving_modules` (the real serving modules and export functions
    around toy models), made once: ``{"classifier": version folder, "ner": version folder}``.

    Read them, or copy them (`serving_modules.copy_export`) to build a saved_models folder; never change them.
    """
    def build(root):
        from serving_modules import export_tiny_classifier, export_tiny_ner

        return {"classifier": export_tiny_classifier(str(root / "classifier"), TINY_VOCAB),
                "ner": export_tiny_ner(str(root / "ner"), TINY_VOCAB)}

    return build_once(tmp_path_factory, "tiny_exports", build)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """The `tiny_bert_dir` model (`TINY_VOCAB`, 32 positions), one folder for the session: never write into it."""
    return build_once(tmp_path_factory, "tiny_bert", lambda root: write_tiny_bert_folder(root / "tiny_bert", TINY_VOCAB))


@pytest.fixture(scope="session")
def topic_bert(tmp_path_factory):
    """A tiny random BERT whose vocabulary (`helpers.TOPIC_VOCAB`) covers the AG News topic words; 128 positions.

    The tiny BERT of the AG News BERT pipelines (TF-Hub and HF), one folder for the session: never write into it.
    """
    return build_once(tmp_path_factory, "topic_bert", lambda root: write_tiny_bert_folder(
        root / "topic_bert", TOPIC_VOCAB, max_position_embeddings=128))


@pytest.fixture(scope="session")
def ag_news_root(tmp_path_factory):
    """A tiny ``ag_news`` folder (`helpers.ag_news_rows`): 48 training rows (43 train + 5 validation with the
    default 0.1, or 40 + 8 with ``--validation-size 8``), 16 test rows (4 per class) and classes.txt.

    One folder for the session: never write into it.
    """
    train, test = ag_news_rows()
    return build_once(tmp_path_factory, "ag_news_root", lambda root: write_ag_news_folder(root, train, test))

