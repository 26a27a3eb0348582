"""Command-line pipelines: thin scripts over the tfnlp library.

- ``pipelines/<name>.py``: the fit scripts (``python -m pipelines.agnews_transformer``, ...);
- ``pipelines/bench/``: benchmarks (``python -m pipelines.bench.tokenization``, ...);
- ``pipelines/serving/``: serving tools (``python -m pipelines.serving.predict``, ...);
- ``pipelines/reports/``: reports on runs (``python -m pipelines.reports.compare``, ...).

No module here imports a fit script (tests/test_layering.py).
"""
