"""Tools for serving the exports with TF Serving: predict, the model server's files, warm-up requests and the op
audit (``python -m pipelines.serving.<name>``). They import the library, never a fit script."""
