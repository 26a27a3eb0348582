"""Reports on finished runs and exports: the comparison of runs and the attention picture
(``python -m pipelines.reports.<name>``). They import the library, never a fit script."""
