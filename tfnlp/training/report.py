"""Run reports: the pictures every fit run writes beside its ``metrics.json``, and a summary of a run for comparing.

- ``curves.png``: each loss and metric per epoch on training and validation data, from ``history.csv``
  (`write_curves`; `tfnlp.training.evaluation.fit_model` writes it, so every fit script does);
- ``confusion_matrix.png``: a classifier's test confusion matrix, the counts of ``metrics.json``'s
  ``test.confusion_matrix`` (`write_confusion_matrix`; `tfnlp.training.evaluation.fit_and_evaluate`);
- ``entity_scores.png``: NER precision, recall and F1 per entity type on validation and test
  (`write_run_report` with NER metrics).

Each PNG also stores the numbers it draws (`tfnlp.plots.png.read_plot_data`). In a multi-worker run only the
chief calls these. `summarize_run` reads a finished run folder back (``python -m pipelines.reports.compare``).
"""

import csv
import json
import logging
import os

from tfnlp.errors import ConfigurationError
from tfnlp.plots.confusion import plot_confusion_matrix
from tfnlp.plots.curves import plot_training_curves
from tfnlp.plots.entity_scores import plot_entity_scores
from tfnlp.training.run_folder import RunFolder

logger = logging.getLogger(__name__)


def read_history(folder):
    """The per-epoch figures of the run in ``folder`` (its ``history.csv``), or None if it has none.

    ``history.csv`` is appended to by every session of a resumed run, and by a
    new training in the same folder: only the rows from its last epoch 0 on
    (the latest training, all its sessions) are returned.

    Args:
        folder: `tfnlp.training.RunFolder` or str. The run folder.

    Returns:
        dict: column -> list of float per epoch (``epoch`` as int, 0-based); empty cells are NaN.
    """
    path = RunFolder.of(folder).history_file
    if not os.path.exists(path):
        return None
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    start = max((i for i, row in enumerate(rows) if row.get("epoch") == "0"), default=0)
    rows = rows[start:]
    if not rows:
        return None
    history = {}
    for name in rows[0]:
        values = [row.get(name) for row in rows]
        history[name] = [int(value) for value in values] if name == "epoch" else [_float(value) for value in values]
    return history


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def write_curves(folder, title=None):
    """Draws the run folder's ``curves.png`` from its ``history.csv``; returns its file name (None: no history).

    Args:
        folder: `tfnlp.training.RunFolder` or str. The run folder.
        title: str or None. Figure title; None = the folder's name.
    """
    folder = RunFolder.of(folder)
    history = read_history(folder)
    if not history:
        return None
    plot_training_curves(history, folder.curves_file, title=title or folder.name)
    return RunFolder.CURVES


def write_confusion_matrix(folder, report, title=None):
    """Draws the run folder's ``confusion_matrix.png`` from a `classification_report`; returns its file name.

    Args:
        folder: `tfnlp.training.RunFolder` or str. The run folder.
        report: dict. `tfnlp.training.metrics.classification_report`'s result (``confusion_matrix``,
            ``class_names``).
        title: str or None. Figure title.
    """
    plot_confusion_matrix(report["confusion_matrix"], report["class_names"],
                          RunFolder.of(folder).confusion_matrix_file, title=title)
    return RunFolder.CONFUSION_MATRIX


def write_run_report(folder, metrics):
    """Writes every picture ``metrics`` supports beside the run folder's ``metrics.json``; returns {kind: file name}.

    The training curves (if the folder has a ``history.csv``); a classifier's
    test confusion matrix (``metrics["test"]["confusion_matrix"]``); NER scores
    per entity type (``metrics["validation"|"test"]["per_type"]``). Call it on
    the chief only, with the metrics written to ``metrics.json``.

    Args:
        folder: `tfnlp.training.RunFolder` or str. The run folder.
        metrics: dict. The run's metrics (as written to ``metrics.json``).

    Returns:
        dict: ``{"curves": "curves.png", ...}``, the pictures written (file names in ``folder``).

    Example (a NER run's figures; `pipelines.conll_ner` calls it before writing metrics.json):
    >>> import tempfile
    >>> from tfnlp.training.ner_metrics import entity_report
    >>> scores = entity_report([["B-LOC", "I-LOC", "O"], ["B-LOC"]], [["B-LOC", "I-LOC", "O"], ["O"]])
    >>> scores["per_type"]["LOC"]
    {'precision': 1.0, 'recall': 0.5, 'f1': 0.6666666666666666, 'support': 2}
    >>> write_run_report(RunFolder(tempfile.mkdtemp()), {"validation": scores, "test": scores})
    {'entity_scores': 'entity_scores.png'}
    """
    folder = RunFolder.of(folder)
    written = {}
    curves = write_curves(folder)
    if curves:
        written["curves"] = curves
    test = metrics.get("test")
    if isinstance(test, dict) and "confusion_matrix" in test:
        written["confusion_matrix"] = write_confusion_matrix(folder, test)
    splits = {name: metrics[name] for name in ("validation", "test")
              if isinstance(metrics.get(name), dict) and metrics[name].get("per_type")}
    if splits:
        plot_entity_scores(splits, folder.entity_scores_file, title=folder.name)
        written["entity_scores"] = RunFolder.ENTITY_SCORES
    if written:
        logger.info("report: %s in %s", ", ".join(written.values()), folder.root)
    return written


STAGE_ORDER = tuple(reversed(RunFolder.STAGES))  # A two-stage run's final stage first.


def summarize_run(run_dir):
    """The headline figures and curves of a finished run folder (or of the last stage of a two-stage run).

    Args:
        run_dir: `tfnlp.training.RunFolder` or str. A fit script's ``--output-dir`` (``metrics.json``,
            ``history.csv``), or one of its stage folders.

    Returns:
        dict: ``run`` (the folder), ``metric`` (``accuracy`` for classifiers, ``entity F1`` for NER runs, whose
        figures also hold the word tags' accuracy), ``test`` and ``validation``
        (that metric), ``macro_f1`` (classifiers), ``epochs``, ``train_seconds``, ``examples_per_second``,
        ``history`` (`read_history` of the folder with the curves, or None) and ``stage`` (None for one-stage
        runs).

    Raises:
        FileNotFoundError: ``run_dir`` has no ``metrics.json`` (the run has not finished).
        ConfigurationError: its ``metrics.json`` is not a fit script's.
    """
    folder = RunFolder.of(run_dir)
    run_dir, path = folder.root, folder.metrics_file
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file (is {run_dir} a finished run's --output-dir?)")
    with open(path, encoding="utf-8") as f:
        try:
            metrics = json.load(f)
        except ValueError as error:
            raise ConfigurationError(f"{path}: not valid JSON ({error})") from None
    stage, curves_dir, figures = None, folder, metrics
    if "test" not in metrics:
        stage = next((name for name in STAGE_ORDER if isinstance(metrics.get(name), dict)), None)
        if stage is None:
            raise ConfigurationError(f"{path}: no test figures (neither 'test' nor a stage's)")
        figures, curves_dir = metrics[stage], folder.stage(stage)
    test = figures["test"]
    # A NER run's figures (`tfnlp.training.ner_metrics.entity_report`) hold per_type, and also the word tags'
    # accuracy, which is not its headline figure; a classifier's (`tfnlp.training.metrics.classification_report`)
    # hold per_class.
    if isinstance(test, dict) and "per_type" in test and "f1" in test:
        metric, test_value, macro_f1 = "entity F1", test["f1"], None
        validation = (figures.get("validation") or {}).get("f1")
    elif isinstance(test, dict) and "accuracy" in test:
        metric, test_value, macro_f1 = "accuracy", test["accuracy"], test.get("macro_f1")
        validation = figures.get("validation_accuracy")
    else:
        raise ConfigurationError(f"{path}: its test figures are neither a classifier's (accuracy) nor a NER "
                                 f"run's (per_type, f1)")
    history = read_history(curves_dir)
    return {
        "run": run_dir, "stage": stage, "metric": metric, "test": test_value, "validation": validation,
        "macro_f1": macro_f1, "epochs": len(history["epoch"]) if history else None,
        "train_seconds": figures.get("train_wall_seconds"),
        "examples_per_second": figures.get("train_examples_per_second"), "history": history,
    }
