"""Command-line pipelines: thin scripts over the tfnlp library (run as ``python -m pipelines.<name>``)."""
