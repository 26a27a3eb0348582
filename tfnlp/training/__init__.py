"""The shared fit-script runtime: typed arguments, strategy/precision/XLA/seed set-up, callbacks, metrics,
and the command-line behaviour every fit script shares (`tfnlp.training.cli`: entry point, errors, output)."""

from tfnlp.training import cli
from tfnlp.training.arguments import field, parse_arguments
from tfnlp.training.metrics import classification_report
from tfnlp.training.run_folder import RunFolder
from tfnlp.training.runtime import Runtime, RuntimeArguments, Throughput, create_strategy

__all__ = ["RunFolder", "Runtime", "RuntimeArguments", "Throughput", "classification_report", "cli", "create_strategy", "field",
           "parse_arguments"]
