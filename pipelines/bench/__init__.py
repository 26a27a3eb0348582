"""Benchmarks that print figures: tokenization and training speed against the lesson's code, serving latency and
junk load (``python -m pipelines.bench.<name>``). They import the library, never a fit script."""
