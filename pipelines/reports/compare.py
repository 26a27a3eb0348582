"""Compare finished runs: a Markdown table of their metrics, and one picture of their curves.

    python -m pipelines.reports.compare runs/agnews_transformer runs/agnews_hf_bert --out comparison.png

Each run folder is a fit script's --output-dir (its metrics.json and history.csv);
for a two-stage run (frozen, then fine-tuning) the last stage that ran is
shown. The table has each run's headline metric (test accuracy for the AG
News classifiers, entity F1 for NER), its validation figure, epochs, training
time and speed; the picture draws every run's validation (solid) and training
(dashed) curves per epoch on shared panels.
"""

import dataclasses
import logging
import os

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

from tfnlp.plots.curves import plot_curve_comparison
from tfnlp.training import cli, field, parse_arguments
from tfnlp.training.report import summarize_run

logger = logging.getLogger("compare")


@dataclasses.dataclass
class CompareArguments:
    """The runs to compare, and where the comparison picture goes."""

    run_dirs: tuple[str, ...] = field((), "A finished run's --output-dir.", nargs="+", positional=True)
    out: str = field("comparison.png", "The PNG comparing the runs' curves ('' = no picture).")


def markdown_table(summaries):
    """The runs' headline figures as a Markdown table (one row per `tfnlp.training.report.summarize_run`)."""

    def number(value, digits):
        return "" if value is None else f"{value:,.{digits}f}"

    lines = ["| run | metric | test | validation | test macro F1 | epochs | training (s) | examples/s |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for s in summaries:
        run = s["run"] + (f" ({s['stage']})" if s["stage"] else "")
        lines.append(f"| {run} | {s['metric']} | {number(s['test'], 4)} | {number(s['validation'], 4)} | "
                     f"{number(s['macro_f1'], 4)} | {s['epochs'] or ''} | {number(s['train_seconds'], 0)} | "
                     f"{number(s['examples_per_second'], 1)} |")
    return "\n".join(lines)


def main(argv=None):
    (args,) = parse_arguments(__doc__, CompareArguments, argv=argv)
    summaries = [summarize_run(run_dir) for run_dir in args.run_dirs]
    print(markdown_table(summaries), flush=True)
    histories = {_label(s): s["history"] for s in summaries if s["history"]}
    path = None
    if args.out and histories:
        path = plot_curve_comparison(histories, args.out)
        cli.log_result("wrote %s (curves of %d run(s))", path, len(histories), log=logger)
    elif args.out:
        logger.warning("no run has a history.csv: no comparison picture")
    return {"runs": summaries, "plot": path}


def _label(summary):
    name = os.path.basename(os.path.normpath(summary["run"]))
    return f"{name}/{summary['stage']}" if summary["stage"] else name


if __name__ == "__main__":
    cli.run(main)
