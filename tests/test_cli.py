"""What every fit script shares as a command (tfnlp.training.cli and tfnlp._native_logs): one-line errors
and exit codes, --debug, quiet framework logs, --quiet / --verbose, progress lines."""

import dataclasses
import logging
import os
import subprocess
import sys
import warnings

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import pytest
import tf_keras
from absl import logging as absl_logging

from tfnlp._keras import KerasVersionError
from tfnlp.data import DataFormatError, DataSourceUnavailableError
from tfnlp.errors import ConfigurationError
from tfnlp.training import cli, field, parse_arguments
from tfnlp.utils.progress import Progress

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _default_output():
    """Each test starts and ends with the default output settings."""
    cli.configure_output("default")
    yield
    cli.configure_output("default")


def failing(error):
    def main(argv):
        raise error
    return main


# The entry point.

@pytest.mark.parametrize("error", [
    DataFormatError("data/ag_news/train.csv", 3, "class must be an integer in 1..4, found 'x'"),
    DataSourceUnavailableError("AG News: no local folder is set\nand the host cannot be reached."),
    ConfigurationError("bert/config.json: model_type is 'roberta', expected 'bert'"),
    FileNotFoundError(2, "No such file or directory", "bert/vocab.txt"),
    KerasVersionError("TensorFlow was imported before tfnlp"),
], ids=lambda error: type(error).__name__)
def test_user_errors_end_the_script_with_one_line_and_exit_code_1(capsys, error):
    with pytest.raises(SystemExit) as exit_info:
        cli.run(failing(error), argv=["--epochs", "2"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err == f"error: {' '.join(str(error).split())}\n"


def test_debug_shows_the_traceback_of_user_errors():
    with pytest.raises(DataFormatError):
        cli.run(failing(DataFormatError("x.csv", 1, "bad")), argv=["--debug"])


def test_unexpected_errors_keep_their_traceback(capsys):
    with pytest.raises(ZeroDivisionError):
        cli.run(failing(ZeroDivisionError("division by zero")), argv=[])
    assert "error:" not in capsys.readouterr().err


def test_ctrl_c_is_one_line_saying_how_to_resume(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.run(failing(KeyboardInterrupt()), argv=[])
    assert exit_info.value.code == 130
    assert capsys.readouterr().err == ("error: interrupted; start the same command again to resume from the last "
                                       "finished epoch\n")


def test_run_passes_the_arguments_and_returns_what_main_returns():
    assert cli.run(lambda argv: {"argv": argv}, argv=["--output-dir", "x"]) == {"argv": ["--output-dir", "x"]}


def test_a_command_that_returns_an_int_exits_with_it_unless_it_is_0():
    assert cli.run(lambda argv: 0, argv=[]) == 0
    assert cli.run(lambda argv: True, argv=[]) is True  # A bool is a result, not a status.
    with pytest.raises(SystemExit) as exit_info:
        cli.run(lambda argv: 130, argv=[])
    assert exit_info.value.code == 130


def test_user_errors_turns_a_library_check_into_one_line(capsys):
    def main(argv):
        with cli.user_errors(ValueError):
            raise ValueError("saved_models/m/1: no request\nfor serving_x")

    with pytest.raises(SystemExit) as exit_info:
        cli.run(main, argv=[])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == "error: saved_models/m/1: no request for serving_x\n"
    with pytest.raises(ConfigurationError) as info:  # --debug: the traceback, with the library's error as its cause.
        cli.run(main, argv=["--debug"])
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(DataFormatError):  # Errors already the user's pass unchanged; other types are not touched.
        with cli.user_errors(ValueError):
            raise DataFormatError("x.csv", 1, "bad")
    with pytest.raises(KeyError):
        with cli.user_errors(ValueError):
            raise KeyError("a bug")


# Arguments of the commands that are not fit scripts: positional and repeated values, from dataclass fields.

@dataclasses.dataclass
class ToolArguments:
    """A tool's arguments."""

    models: tuple[str, ...] = field((), "Model folders.", nargs="+", positional=True)
    keep: tuple[str, ...] = field((), "Signatures to keep.", nargs="+")
    json: bool = field(False, "JSON output.")


def test_positional_and_repeated_arguments_come_from_dataclass_fields(tmp_path, capsys):
    assert parse_arguments("demo", ToolArguments, argv=["a", "b", "--keep", "x", "y", "--json"]) == (
        ToolArguments(models=("a", "b"), keep=("x", "y"), json=True),)
    assert parse_arguments("demo", ToolArguments, argv=["a"]) == (ToolArguments(models=("a",)),)
    args_file = tmp_path / "args.json"
    args_file.write_text('{"keep": ["serving_ids"]}')
    assert parse_arguments("demo", ToolArguments, argv=["a", "--args-file", str(args_file)])[0].keep == ("serving_ids",)
    for argv, message in [([], "error: the following arguments are required: models (see --help)\n"),
                          (["a", "--keep"], "error: argument --keep: expected at least one argument (see --help)\n")]:
        with pytest.raises(SystemExit) as exit_info:
            parse_arguments("demo", ToolArguments, argv=argv)
        assert exit_info.value.code == 2 and capsys.readouterr().err == message
    args_file.write_text('{"keep": "serving_ids"}')
    with pytest.raises(SystemExit):
        parse_arguments("demo", ToolArguments, argv=["a", "--args-file", str(args_file)])
    assert "--keep must be a list of str, found 'serving_ids'" in capsys.readouterr().err


def test_a_field_with_nargs_must_be_a_tuple():
    @dataclasses.dataclass
    class Wrong:
        models: str = field("", "Model folders.", nargs="+")

    with pytest.raises(TypeError, match="a field with nargs is a tuple"):
        parse_arguments("demo", Wrong, argv=["a"])


# Output levels.

def emit_everything():
    logging.getLogger("tfnlp.demo").info("an info line of tfnlp")
    logging.getLogger("tfnlp.demo").warning("a warning of tfnlp")
    cli.log_result("a result: %.2f", 0.5)
    absl_logging.info("Sharding callback duration: 42 microseconds")
    absl_logging.warning("an absl warning")
    logging.getLogger("tensorflow").warning("a tensorflow warning")
    logging.getLogger("transformers.modeling_tf_utils").warning("Some layers were not used")


def lines(capsys):
    return [line.split(" ", 1)[1] for line in capsys.readouterr().err.splitlines()]  # Without the time.


def test_default_output_shows_tfnlp_and_results_not_framework_logs(capsys):
    emit_everything()
    assert lines(capsys) == ["an info line of tfnlp", "warning: a warning of tfnlp", "a result: 0.50"]


def test_quiet_output_shows_warnings_and_results(capsys):
    cli.configure_output("quiet")
    emit_everything()
    assert lines(capsys) == ["warning: a warning of tfnlp", "a result: 0.50"]


def test_verbose_output_shows_framework_logs_with_their_names(capsys):
    cli.configure_output("verbose")
    emit_everything()
    shown = capsys.readouterr().err
    assert [line.split(" ", 1)[1] for line in shown.splitlines()][:6] == [
        "tfnlp.demo: an info line of tfnlp", "tfnlp.demo: warning: a warning of tfnlp", "tfnlp: a result: 0.50",
        "absl: Sharding callback duration: 42 microseconds", "absl: warning: an absl warning",
        "tensorflow: warning: a tensorflow warning"]


@pytest.mark.parametrize("ci", [pytest.param(None, marks=pytest.mark.large), "true"], ids=["plain", "CI=true"])
def test_transformers_logs_show_only_with_verbose_before_and_after_transformers_is_imported(ci):
    """In a fresh process, so that whether transformers is imported is known (other tests import it).

    Before the import its loggers propagate to tfnlp's handler; after it, transformers' own handler prints
    its lines in its own format: either way, only with --verbose, and once, also where CI=true makes
    transformers propagate to the root logger.
    """
    code = """
import logging, sys
from tfnlp.training import cli

def emit(when):
    logging.getLogger("transformers.modeling_tf_utils").warning("Some layers were not used (%s)", when)

assert "transformers" not in sys.modules
for level in ("verbose", "default", "quiet"):
    cli.configure_output(level)
    emit(f"{level}, before the import")
import transformers
for level in ("verbose", "default", "quiet"):
    cli.configure_output(level)
    emit(f"{level}, after the import")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**{k: v for k, v in os.environ.items() if k != "CI"}, "PYTHONPATH": REPO,
                                 **({"CI": ci} if ci else {})})
    assert result.returncode == 0, result.stderr[-3000:]
    shown = [line for line in result.stderr.splitlines() if "Some layers were not used" in line]
    assert len(shown) == 2, result.stderr[-3000:]
    assert shown[0].split(" ", 1)[1] == ("transformers.modeling_tf_utils: warning: Some layers were not used "
                                         "(verbose, before the import)")
    assert shown[1] == "Some layers were not used (verbose, after the import)"


def test_configure_output_adds_one_handler_however_often_it_is_called():
    for level in ("quiet", "verbose", "default", "default"):
        cli.configure_output(level)
    assert sum(type(handler).__name__ == "_StderrHandler" for handler in logging.getLogger().handlers) == 1
    with pytest.raises(ValueError, match="level must be one of"):
        cli.configure_output("loud")


@pytest.mark.skipif(bool(sys.warnoptions), reason="-W options given: the user's warning filters are kept")
def test_framework_python_warnings_are_hidden_unless_verbose():
    def warn_from(module):
        warnings.warn_explicit("X is deprecated and will be removed", FutureWarning, "x.py", 1, module=module)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli.configure_output("default")
        warn_from("transformers.modeling_tf_utils")
        warn_from("tensorflow.python.util.deprecation")
        warn_from("tfnlp.pretrained")  # tfnlp's own warnings stay.
        cli.configure_output("verbose")
        warn_from("transformers.modeling_tf_utils")
    assert [(w.filename, str(w.message)) for w in caught] == [("x.py", "X is deprecated and will be removed")] * 2


def test_describe_model_is_one_line_and_the_summary_with_verbose(capsys):
    model = tf_keras.Sequential([tf_keras.Input((3,)), tf_keras.layers.Dense(2, name="dense")], name="demo")
    cli.describe_model(model)
    assert lines(capsys) == ["model demo: 8 weights, 8 trainable (--verbose shows the layers)"]
    cli.configure_output("verbose")
    cli.describe_model(model)
    assert "Total params: 8" in capsys.readouterr().err


def test_progress_lines_give_counts_rates_and_time(caplog):
    with caplog.at_level(logging.INFO, logger="tfnlp.progress"):
        with Progress("encoding train", total=4, unit="texts", interval=0) as progress:
            for _ in range(2):
                progress.update(2)
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == "encoding train: 4 texts ..."
    assert messages[1].startswith("encoding train: 2/4 texts, ") and " texts/s, " in messages[1]
    assert messages[-1].startswith("encoding train: 4 texts in ") and messages[-1].endswith(" texts/s)")
    assert progress.count == 4


def test_progress_logs_no_closing_line_when_the_step_fails(caplog):
    with caplog.at_level(logging.INFO, logger="tfnlp.progress"):
        with pytest.raises(RuntimeError):
            with Progress("converting", announce=False) as progress:
                progress.update(1)
                raise RuntimeError("boom")
    assert caplog.records == []


# TensorFlow's C++ logs, chosen at `import tfnlp`.

def cpp_log_level(*argv, env=None):
    code = "import os, tfnlp, tensorflow; print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'))"
    full_env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300,
                            env={**full_env, "PYTHONPATH": REPO, **(env or {})})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip(), result.stderr


@pytest.mark.large  # Four fresh processes, each importing TensorFlow.
def test_import_tfnlp_quiets_tensorflows_cpp_logs_unless_verbose_or_set_by_the_user():
    level, stderr = cpp_log_level()
    assert level == "3" and "cpu_feature_guard" not in stderr and "cuda" not in stderr.lower()
    assert cpp_log_level("--verbose")[0] == "None"
    assert cpp_log_level(env={"TF_CPP_MIN_LOG_LEVEL": "1"})[0] == "1"


def test_a_basic_config_console_handler_is_replaced_so_no_line_is_printed_twice(capsys):
    root = logging.getLogger()
    basic = logging.StreamHandler(sys.stderr)  # What logging.basicConfig adds.
    root.addHandler(basic)
    try:
        cli.configure_output("default")
        assert basic not in root.handlers
        logging.getLogger("tfnlp.demo").info("once")
        assert lines(capsys) == ["once"]
    finally:
        root.removeHandler(basic)
