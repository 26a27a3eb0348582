"""Checking the commands that documents show (README, the quickstart notebook) against the real scripts.

`parse_command` runs a ``python -m pipelines.<name> ...`` command's argument
parsing and validation in this process and stops right after them: an option
the script does not know, a value outside its choices or of the wrong type, and
a value or combination the script's own checks reject (the ``__post_init__``
of its argument dataclasses and their ``validate``, or the checks of its
``parse_args``) fail as on the command line; nothing else of the script runs.
Every script parses and checks its command line in one function: the fit
scripts in `tfnlp.training.parse_arguments`, the others in their own
``parse_args``. `make_targets` reads the Makefile's targets.
"""

import argparse
import contextlib
import importlib
import io
import re
import shlex

import pytest

# Shell words that end a command's arguments.
SHELL_OPERATORS = {"|", "||", "&&", ";", ">", ">>", "<", "2>", "2>&1", "&"}
PIPELINE_COMMAND = re.compile(r"python3?\s+-m\s+pipelines\.(\w+(?:\.\w+)*)")


class _Parsed(Exception):
    """Raised in place of returning from a script's parsing function (or argparse's): the script stops there."""

    def __init__(self, namespace):
        super().__init__("parsed")
        self.namespace = namespace


def pipeline_commands(text):
    """``(module name, argv)`` for each ``python -m pipelines.<name> ...`` in ``text`` (shell lines); a
    command in a sub-package (``pipelines.serving.predict``) is named ``serving.predict``.

    Backslash-continued lines are joined; ``!`` (notebook shell escape) and
    environment assignments in front are ignored (`pipeline_commands_with_env`
    gives them); the arguments end at a shell operator or the end of the line.
    """
    return [(name, argv) for name, argv, _ in pipeline_commands_with_env(text)]


ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.S)


def pipeline_commands_with_env(text):
    """As `pipeline_commands`, with the environment assignments in front of each command:
    ``(module name, argv, {name: value})``."""
    commands = []
    text = re.sub(r"\\\n\s*", " ", text)
    for line in text.splitlines():
        for match in PIPELINE_COMMAND.finditer(line):
            try:
                words = shlex.split(line[match.end():], comments=True)
                before = shlex.split(line[:match.start()].lstrip("!"))
            except ValueError as error:
                raise AssertionError(f"cannot split the shell command {line.strip()!r}: {error}") from None
            argv = []
            for word in words:
                if word in SHELL_OPERATORS or word.startswith(("2>", ">", "|")):
                    break
                argv.append(word)
            env = {}
            for word in reversed(before):  # NAME=value words right before the command, after any operator.
                assignment = ASSIGNMENT.match(word)
                if not assignment:
                    break
                env.setdefault(assignment.group(1), assignment.group(2))
            commands.append((match.group(1), argv, env))
    return commands


def validating_function(module):
    """The name of the function that parses and checks ``module``'s command line: ``parse_args`` (its own) or
    ``parse_arguments`` (`tfnlp.training.parse_arguments`, imported by the fit scripts)."""
    from tfnlp.training import parse_arguments

    own = getattr(module, "parse_args", None)
    if callable(own) and getattr(own, "__module__", None) == module.__name__:
        return "parse_args"
    if getattr(module, "parse_arguments", None) is parse_arguments:
        return "parse_arguments"
    raise AssertionError(f"{module.__name__} parses its command line neither in its own parse_args nor with "
                         f"tfnlp.training.parse_arguments")


def parse_command(module_name, argv, monkeypatch, env=None):
    """Parses and validates ``argv`` as ``pipelines.<module_name>`` does; returns the argparse namespace.

    ``main`` runs until its parsing function (`validating_function`) returns, and stops there; ``env`` (the
    command's environment assignments) is set meanwhile. The namespace is the first one argparse parsed in it
    (the script's own options).

    Raises AssertionError with the script's one-line error (an unknown option, a bad value, a check that
    fails) or when the script parses its arguments in no known function before doing anything else.
    """
    try:
        module = importlib.import_module(f"pipelines.{module_name}")
    except ImportError as error:
        raise AssertionError(f"python -m pipelines.{module_name}: no such script ({error})") from None
    name = validating_function(module)
    original = getattr(module, name)
    original_parse = argparse.ArgumentParser.parse_args
    namespaces = []

    def parse_and_record(self, args=None, namespace=None):
        namespaces.append(original_parse(self, args, namespace))
        return namespaces[-1]

    def validate_then_stop(*args, **kwargs):
        original(*args, **kwargs)
        raise _Parsed(namespaces[0])

    errors = io.StringIO()
    with monkeypatch.context() as patch:
        patch.setattr(module, name, validate_then_stop)
        patch.setattr(argparse.ArgumentParser, "parse_args", parse_and_record)
        for key, value in (env or {}).items():
            patch.setenv(key, value)
        try:
            with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
                module.main(list(argv))
        except _Parsed as parsed:
            return parsed.namespace
        except SystemExit as exit_:
            if exit_.code == 0:  # --help.
                return None
            message = errors.getvalue().strip() or str(exit_.code)
            raise AssertionError(f"python -m pipelines.{module_name} {shlex.join(argv)}: the script rejects it "
                                 f"(exit {exit_.code}): {message}") from None
    raise AssertionError(f"pipelines.{module_name}.main returned without calling its {name}")


def script_options(module_name, monkeypatch, module=None):
    """The option strings (``--name``, ``--no-name``...) of ``pipelines.<module_name>``'s parser.

    The script's ``main`` runs until it parses its arguments and stops there. ``module``: another module with
    such a ``main`` (a tool under ``tools/``) in place of ``pipelines.<module_name>``.
    """
    module = module or importlib.import_module(f"pipelines.{module_name}")
    parsers = []

    def capture(self, args=None, namespace=None):
        parsers.append(self)
        raise _Parsed(None)

    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", capture)
        try:
            with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
                module.main([])
        except _Parsed:
            pass
    if not parsers:
        raise AssertionError(f"{module.__name__}.main does not parse arguments with argparse")
    return {option for action in parsers[0]._actions for option in action.option_strings}


def make_targets(makefile):
    """The target names a Makefile defines (``name: ...`` lines, ``.PHONY`` and variables excluded)."""
    with open(makefile, encoding="utf-8") as f:
        text = f.read()
    return {name for name in re.findall(r"^([A-Za-z0-9][\w.-]*)\s*:(?!=)", text, flags=re.M)}


@pytest.fixture
def command_parser(monkeypatch):
    """`parse_command` bound to the test's monkeypatch."""
    return lambda module_name, argv, env=None: parse_command(module_name, argv, monkeypatch, env)
