"""Task recipes: what a fit script and its benchmark share (argument groups, data, batches, models, training steps).

A layer above `tfnlp.models`, `tfnlp.training` and `tfnlp.serving`, below the commands in ``pipelines/``: each fit
script is its command line and a ``main`` calling a recipe here; benchmarks and tools import the recipes, never a
fit script.
"""
