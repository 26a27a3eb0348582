"""The order of tfnlp's packages: imports go one way, from a package down to the ones below it.

`PACKAGE_ORDER` lists tfnlp's packages (and its top-level modules) in tiers,
bottom to top. A module may import the other modules of its own package and
anything in a lower tier; never a package of its own tier or of a higher one.
So ``training`` and ``serving`` sit side by side and neither imports the
other; what both need (the IOB and entity helpers of ``tagging``, the
SavedModel folders of ``utils``) sits below them, and the task recipes of
``tasks`` that use both sit above them. ``pipelines/`` (the fit
scripts, benchmarks and tools) is above all of it and tfnlp never imports it.

``tests/test_layering.py`` reads every module's imports (at module level and
inside functions) and fails on an import against this order or on any import
cycle between modules.
"""

# Bottom to top; a name stands for a package and every module in it, or for one module.
PACKAGE_ORDER = (
    ("tfnlp._keras", "tfnlp._native_logs", "tfnlp._zipfile_seek", "tfnlp.errors", "tfnlp._layering"),  # start-up
    ("tfnlp",),  # The package itself: ``import tfnlp`` runs the start-up modules (Keras 2, quiet logs).
    ("tfnlp.utils",),  # Atomic files, progress lines, network probe, SavedModel folders.
    ("tfnlp.pretrained",),  # The packaged BERT and HF model folders.
    ("tfnlp.layers", "tfnlp.text", "tfnlp.tagging"),  # Keras layers; in-graph text; IOB tags and entities.
    ("tfnlp.data",),  # Data sets and their features.
    ("tfnlp.hub",),  # TF-Hub-format BERT SavedModels.
    ("tfnlp.models",),  # Model builders.
    ("tfnlp.plots",),  # Pictures of runs and attention.
    ("tfnlp.training", "tfnlp.serving"),  # Side by side: neither imports the other.
    ("tfnlp.tasks",),  # Task recipes (data, model, training, export) that fit scripts and benchmarks share.
)
