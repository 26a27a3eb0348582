"""The shared fit-script runtime: typed arguments, strategy/precision/XLA/seed set-up, callbacks, metrics."""

from tfnlp.training.arguments import field, parse_arguments
from tfnlp.training.metrics import classification_report
from tfnlp.training.runtime import Runtime, RuntimeArguments, Throughput, create_strategy

__all__ = ["Runtime", "RuntimeArguments", "Throughput", "classification_report", "create_strategy", "field",
           "parse_arguments"]
