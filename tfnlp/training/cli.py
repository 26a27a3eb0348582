"""What every command shares (fit scripts, benchmarks, serving tools): its entry point, its terminal output
and their options.

A ``pipelines`` command ends with::

    if __name__ == "__main__":
        cli.run(main)

and its ``main(argv=None)`` starts with `tfnlp.training.parse_arguments`
(directly, or in the script's ``parse_args``), which adds the options
``--debug``, ``--verbose`` and ``--quiet`` to the script's own and applies
them (`configure_output`). Then:

- `run` turns the errors a user can fix (bad data files, unreachable data
  sources, wrong paths, settings that cannot work: `USER_ERRORS`) into one line
  ``error: <message>`` on standard error and exit code 1; argument errors are
  one line too, with exit code 2. ``--debug`` shows their traceback instead.
  Any other exception is a bug and keeps its traceback. Ctrl-C ends with one
  line saying how to resume.
- The terminal shows the configuration in a few lines, progress lines for long
  preparation steps (`tfnlp.utils.progress.Progress`), one line per epoch, the
  results (`log_result`) and where files went; not the frameworks' notices
  (TensorFlow, absl, Keras, transformers, datasets). ``--verbose`` brings those
  back (with the model summary); ``--quiet`` leaves warnings, errors and the
  results.
"""

import contextlib
import logging
import os
import re
import sys
import warnings

from tfnlp import _keras
from tfnlp.data.errors import DataFormatError
from tfnlp.data.sources import DataSourceUnavailableError
from tfnlp.errors import ConfigurationError

logger = logging.getLogger("tfnlp")

VERBOSITIES = ("quiet", "default", "verbose")
# Between INFO and WARNING: the results of a run, shown even with --quiet.
RESULT = 25
logging.addLevelName(RESULT, "RESULT")

# Errors a user can fix from their message alone: one line, no traceback (unless --debug).
USER_ERRORS = (DataFormatError, DataSourceUnavailableError, ConfigurationError, _keras.KerasVersionError, OSError)

# Loggers of the frameworks under tfnlp: errors only, unless --verbose.
FRAMEWORK_LOGGERS = ("absl", "tensorflow", "tf_keras", "keras", "h5py", "urllib3", "filelock", "fsspec",
                     "transformers", "datasets", "huggingface_hub", "tensorflow_hub", "tensorflow_datasets",
                     "tensorflow_text", "official", "orbit", "matplotlib", "PIL", "numexpr", "jax")
# Python warnings raised inside these packages (deprecations, "will be removed" notices): hidden unless --verbose.
_FRAMEWORK_MODULES = r"(tensorflow|tf_keras|keras|transformers|tensorflow_hub|tensorflow_datasets|tensorflow_text|" \
                     r"absl|h5py|google|official|orbit|huggingface_hub|datasets|tf_slim)(\..*)?$"
# Environment variables read by the HF libraries when they are first imported.
_HF_QUIET_ENV = {"TRANSFORMERS_VERBOSITY": "error", "DATASETS_VERBOSITY": "error",
                 "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}

verbosity = "default"
_warning_filters = []


def verbosity_from_argv(argv):
    """``"verbose"``, ``"quiet"`` or ``"default"``, from ``--verbose`` / ``--quiet`` in ``argv`` (the last one wins)."""
    chosen = "default"
    for arg in argv:
        if arg in ("--verbose", "--quiet"):
            chosen = arg[2:]
    return chosen


class _StderrHandler(logging.StreamHandler):
    """Writes to the current ``sys.stderr`` (so a replaced stream, as in tests, receives the lines)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


class _Formatter(logging.Formatter):
    """``HH:MM:SS message``; warnings and errors say so; with --verbose, the logger's name too."""

    def format(self, record):
        message = super().format(record)
        prefix = {logging.WARNING: "warning: "}.get(record.levelno, "error: " if record.levelno > logging.WARNING
                                                     else "")
        name = f"{record.name}: " if verbosity == "verbose" else ""
        return f"{self.formatTime(record, '%H:%M:%S')} {name}{prefix}{message}"


def configure_output(level="default"):
    """Sets what a fit script prints: ``"default"``, ``"quiet"`` or ``"verbose"``.

    - default: tfnlp's and the script's INFO lines (configuration, progress,
      epochs, results); the frameworks' loggers (`FRAMEWORK_LOGGERS`) at ERROR;
      their Python warnings hidden; TensorFlow's C++ logs quiet (set at
      ``import tfnlp``, `tfnlp._native_logs`).
    - quiet: warnings, errors and results (`log_result`) only.
    - verbose: everything at INFO, the frameworks' included, with logger names.

    Lines go to standard error through one handler on the root logger (added
    once). A plain console handler such as ``logging.basicConfig`` adds is
    replaced by it (no line printed twice); other handlers (files, pytest's)
    are left alone. Safe to call again with another level.

    Args:
        level: str. One of `VERBOSITIES`.
    """
    global verbosity
    if level not in VERBOSITIES:
        raise ValueError(f"level must be one of {VERBOSITIES}, got {level!r}")
    verbosity = level
    root = logging.getLogger()
    consoles = (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
    for handler in list(root.handlers):
        if type(handler) is logging.StreamHandler and handler.stream in consoles:
            root.removeHandler(handler)
    if not any(isinstance(handler, _StderrHandler) for handler in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_Formatter())
        root.addHandler(handler)
    root.setLevel(RESULT if level == "quiet" else logging.INFO)
    for name in FRAMEWORK_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if level == "verbose" else logging.ERROR)
    _configure_hf_libraries(level)
    _configure_warnings(level)


def _configure_hf_libraries(level):
    for name, value in _HF_QUIET_ENV.items():
        if level == "verbose":
            if os.environ.get(name) == value:
                os.environ.pop(name)
        else:
            os.environ.setdefault(name, value)
    hf_level = logging.INFO if level == "verbose" else logging.ERROR
    if "transformers" in sys.modules:  # Its own handler, not propagating: set through its API.
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity(hf_level)
        # Its handler prints the line; with CI=true in the environment transformers also lets it propagate to
        # ours, which would print it twice (GitHub Actions and most CI services set CI).
        transformers_logging.disable_propagation()
    if "datasets" in sys.modules:
        from datasets.utils import logging as datasets_logging

        datasets_logging.set_verbosity(hf_level)


def _configure_warnings(level):
    for spec in _warning_filters:
        if spec in warnings.filters:
            warnings.filters.remove(spec)
    _warning_filters.clear()
    if level == "verbose" or sys.warnoptions:  # -W / PYTHONWARNINGS: the user decides.
        return
    warnings.filterwarnings("ignore", module=_FRAMEWORK_MODULES)
    _warning_filters.append(warnings.filters[0])


def log_result(message, *args, log=None):
    """Logs a result of the run (shown even with ``--quiet``), e.g. the test accuracy or the export path."""
    (log or logger).log(RESULT, message, *args)


def describe_model(model, log=None):
    """Logs one line about a Keras model (name, weights, trainable weights); the full summary with ``--verbose``."""
    log = log or logger
    if verbosity == "verbose":
        model.summary(print_fn=log.info)
        return
    trainable = sum(int(w.shape.num_elements() or 0) for w in model.trainable_weights)
    total = sum(int(w.shape.num_elements() or 0) for w in model.weights)
    log.info("model %s: %s weights, %s trainable (--verbose shows the layers)", model.name, f"{total:,}",
             f"{trainable:,}")


def one_line(error):
    """The message of ``error`` on one line (its type name when it has no message)."""
    return " ".join(str(error).split()) or type(error).__name__


@contextlib.contextmanager
def user_errors(*error_types):
    """Treats ``error_types`` raised inside as the user's: a `ConfigurationError` with the same message.

    For a command whose library calls check what the user named (a model
    folder's signatures, its warm-up file) with plain `ValueError`: `run`
    prints them as one line with exit code 1; ``--debug`` shows the original
    traceback too. `USER_ERRORS` pass through unchanged.

    Example:
    >>> with user_errors(ValueError):
    ...     raise ValueError("saved_models/m/1: no request for serving_x")
    Traceback (most recent call last):
    ...
    tfnlp.errors.ConfigurationError: saved_models/m/1: no request for serving_x
    """
    try:
        yield
    except USER_ERRORS:
        raise
    except error_types as error:
        raise ConfigurationError(one_line(error)) from error


def run(main, argv=None):
    """Runs a command's ``main(argv)``: user errors as one line, exit codes, ``--debug``.

    Every ``pipelines`` command (fit scripts, benchmarks, serving tools) ends
    with ``if __name__ == "__main__": cli.run(main)``.

    - `USER_ERRORS` print ``error: <message>`` (one line) on standard error and exit with code 1;
    - argument errors (from `tfnlp.training.parse_arguments`) print ``error: <message>`` and exit with code 2;
    - Ctrl-C prints one line and exits with code 130 (the run resumes when started again);
    - a multi-worker run that loses a worker prints one line naming it and exits with code 1
      (`cluster_failure_message`);
    - with ``--debug`` on the command line, user errors, Ctrl-C and a lost worker keep their traceback;
    - any other exception keeps its traceback (it is a bug);
    - a command whose outcome is pass or fail (``predict --request``, the junk load) returns its exit status as an
      int: ``run`` exits with it when it is not 0.

    Args:
        main: callable taking ``argv`` (a list of str).
        argv: list of str or None. Defaults to ``sys.argv[1:]``.

    Returns:
        What ``main`` returns (a fit script's metrics, a tool's results, or 0), when it returns.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    configure_output(verbosity_from_argv(argv))  # Before parsing: imports and parsing may log too.
    try:
        result = main(argv)
    except USER_ERRORS as error:
        if debug:
            raise
        print(f"error: {one_line(error)}", file=sys.stderr, flush=True)
        sys.exit(1)
    except KeyboardInterrupt:
        if debug:
            raise
        print("error: interrupted; start the same command again to resume from the last finished epoch",
              file=sys.stderr, flush=True)
        sys.exit(130)
    except Exception as error:  # noqa: BLE001  (only a lost worker is turned into one line; the rest re-raised)
        message = None if debug or "tensorflow" not in sys.modules else cluster_failure_message(error)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr, flush=True)
        sys.exit(1)
    if isinstance(result, int) and not isinstance(result, bool) and result != 0:
        sys.exit(result)
    return result


_TASK = re.compile(r"/job:\w+/replica:\d+/task:\d+")
_TIMED_OUT = re.compile(r"Task (/job:\w+/replica:\d+/task:\d+) heartbeat timeout")


def cluster_failure_message(error):
    """One line for an error by which a multi-worker run lost a worker; None for any other error.

    A worker that dies (killed, crashed, its machine gone) stops sending
    heartbeats to TensorFlow's coordination service, which aborts the
    collective operations of the others within ``--worker-timeout`` seconds
    (``UnavailableError``, or ``AbortedError`` naming the task whose heartbeat
    timed out); losing the chief, which runs that service, breaks
    the others' connections at once. Fit scripts print the line instead of
    the traceback (`tfnlp.training.cli.run`).

    Args:
        error: BaseException.

    Example:
    >>> import tensorflow as tf
    >>> error = tf.errors.UnavailableError(None, None, "Collective ops is aborted by: Error reported from "
    ...     "/job:worker/task:1: The following tasks are unhealthy (stopped sending heartbeats):\\n"
    ...     "/job:worker/replica:0/task:1\\nThe tasks have crashed.")
    >>> cluster_failure_message(error).split(";")[0]
    'the multi-worker cluster lost /job:worker/replica:0/task:1 (it stopped sending heartbeats: killed, crashed or unreachable)'
    """
    tf = sys.modules.get("tensorflow")  # A TensorFlow error exists only once TensorFlow is imported (cli needs none).
    lost = () if tf is None else (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError)
    if not isinstance(error, lost):
        return None
    text = str(error)
    if "heartbeat timeout" in text:
        tasks = sorted(set(_TIMED_OUT.findall(text)))
        what = (f"{', '.join(tasks) or 'a worker'} (no heartbeat within --worker-timeout seconds: killed, crashed, "
                f"unreachable or stalled)")
    elif "unhealthy" in text:
        tasks = sorted(set(_TASK.findall(text.split("unhealthy", 1)[1])))
        what = f"{', '.join(tasks) or 'a worker'} (it stopped sending heartbeats: killed, crashed or unreachable)"
    elif "Collective ops is aborted by:" in text or "remote target" in text:
        cause = text.split("Collective ops is aborted by:", 1)[-1].strip().splitlines()[0]
        peer = re.search(r"remote target (/job:\w+/replica:\d+/task:\d+)", text)
        what = f"the connection to {peer.group(1) if peer else 'another worker'} ({cause})"
    else:
        return None
    return (f"the multi-worker cluster lost {what}; this worker stopped too. Start every worker again with the same "
            f"command: the run resumes from its last finished epoch")
