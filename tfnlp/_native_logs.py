"""TensorFlow's C++ log level, chosen before TensorFlow is imported.

TensorFlow's C++ runtime (and XLA's) reads ``TF_CPP_MIN_LOG_LEVEL`` from the
environment when it loads, so the level must be set before the first
``import tensorflow``; ``import tfnlp`` runs this first. Unless the variable is
already set, or ``--verbose`` is on the command line, it is set to 3: no CUDA
and oneDNN notices, no ``cuInit`` error on machines without a GPU, no
``OUT_OF_RANGE: End of sequence`` at the end of each dataset. Errors still
reach Python as exceptions. ``--verbose`` (or ``TF_CPP_MIN_LOG_LEVEL=0`` set
by hand) keeps every line.
"""

import os
import sys

ENV = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LEVEL = "3"

# True when tfnlp set the level (rather than the user, or nobody because --verbose was given).
quieted = False


def quiet_native_logs(argv=None):
    """Sets ``TF_CPP_MIN_LOG_LEVEL`` to 3 unless it is set, ``--verbose`` is in ``argv``, or TensorFlow is loaded.

    Args:
        argv: list of str or None. The command line; defaults to ``sys.argv``.

    Returns:
        bool. Whether the level was set.
    """
    global quieted
    argv = sys.argv if argv is None else argv
    if ENV in os.environ or "tensorflow" in sys.modules or "--verbose" in argv:
        return False
    os.environ[ENV] = QUIET_LEVEL
    quieted = True
    return True
