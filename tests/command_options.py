"""Checking the commands that documents show (README, the quickstart notebook) against the real scripts.

`parse_command` runs a ``python -m pipelines.<name> ...`` command's argument
parsing in this process and stops right after it: an option the script does
not know, a value outside its choices or of the wrong type fails as on the
command line, and nothing else of the script runs. `make_targets` reads the
Makefile's targets.
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
PIPELINE_COMMAND = re.compile(r"python3?\s+-m\s+pipelines\.(\w+)")


class _Parsed(Exception):
    """Raised in place of returning from `argparse.ArgumentParser.parse_args`: the script stops there."""

    def __init__(self, namespace):
        super().__init__("parsed")
        self.namespace = namespace


def pipeline_commands(text):
    """``(module name, argv)`` for each ``python -m pipelines.<name> ...`` in ``text`` (shell lines).

    Backslash-continued lines are joined; ``!`` (notebook shell escape) and
    environment assignments in front are ignored; the arguments end at a shell
    operator or the end of the line.
    """
    commands = []
    text = re.sub(r"\\\n\s*", " ", text)
    for line in text.splitlines():
        for match in PIPELINE_COMMAND.finditer(line):
            rest = line[match.end():]
            try:
                words = shlex.split(rest, comments=True)
            except ValueError as error:
                raise AssertionError(f"cannot split the shell command {line.strip()!r}: {error}") from None
            argv = []
            for word in words:
                if word in SHELL_OPERATORS or word.startswith(("2>", ">", "|")):
                    break
                argv.append(word)
            commands.append((match.group(1), argv))
    return commands


def parse_command(module_name, argv, monkeypatch):
    """Parses ``argv`` with ``pipelines.<module_name>``'s own parser; returns the namespace.

    Raises AssertionError with the parser's error (an unknown option, a bad value) or when the script does
    not parse arguments with argparse before doing anything else.
    """
    try:
        module = importlib.import_module(f"pipelines.{module_name}")
    except ImportError as error:
        raise AssertionError(f"python -m pipelines.{module_name}: no such script ({error})") from None
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        raise _Parsed(original(self, args, namespace))

    errors = io.StringIO()
    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
        try:
            with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
                module.main(list(argv))
        except _Parsed as parsed:
            return parsed.namespace
        except SystemExit as exit_:
            if exit_.code == 0:  # --help.
                return None
            raise AssertionError(f"python -m pipelines.{module_name} {shlex.join(argv)}: the parser rejects it "
                                 f"(exit {exit_.code}): {errors.getvalue().strip()}") from None
    raise AssertionError(f"pipelines.{module_name}.main returned without parsing arguments with argparse")


def script_options(module_name, monkeypatch):
    """The option strings (``--name``, ``--no-name``...) of ``pipelines.<module_name>``'s parser.

    The script's ``main`` runs until it parses its arguments and stops there.
    """
    module = importlib.import_module(f"pipelines.{module_name}")
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
        raise AssertionError(f"pipelines.{module_name}.main does not parse arguments with argparse")
    return {option for action in parsers[0]._actions for option in action.option_strings}


def make_targets(makefile):
    """The target names a Makefile defines (``name: ...`` lines, ``.PHONY`` and variables excluded)."""
    with open(makefile, encoding="utf-8") as f:
        text = f.read()
    return {name for name in re.findall(r"^([A-Za-z0-9][\w.-]*)\s*:(?!=)", text, flags=re.M)}


@pytest.fixture
def command_parser(monkeypatch):
    """`parse_command` bound to the test's monkeypatch."""
    return lambda module_name, argv: parse_command(module_name, argv, monkeypatch)
