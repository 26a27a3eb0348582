"""Progress lines for long preparation steps: counts, rates and elapsed time, a few lines per step.

Long steps before training (adapting a vocabulary, tokenizing a data set,
encoding texts with a frozen BERT, converting weights) log a start line, a
progress line now and then while they run (at most one per ``interval``
seconds and, when the total is known, per tenth of it: ten at most, however
slow the machine), and a closing line with the count, the time and the rate.
The lines go to the ``logging`` module at INFO level: fit scripts show them by
default and hide them with ``--quiet`` (`tfnlp.training.cli.configure_output`).
"""

import logging
import time

logger = logging.getLogger("tfnlp.progress")


def _count(value):
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


class Progress:
    """Reports the progress of a step that processes ``total`` items (or an unknown number).

    Use it as a context manager and call `update` as items are done; the
    closing line is logged when the block ends without an error.

    Args:
        what: str. What the step does, e.g. ``"encoding train"``.
        total: int or None. Items expected; None when unknown.
        unit: str. What an item is, e.g. ``"texts"``.
        interval: float. Least seconds between two progress lines.
        log: logging.Logger or None. Where the lines go; None for the ``tfnlp.progress`` logger.
        announce: bool. Log a line when the step starts (the closing line is always logged).

    Example:
    >>> with Progress("counting", total=3, unit="items") as progress:
    ...     for _ in range(3):
    ...         progress.update()
    >>> progress.count, progress.seconds >= 0
    (3, True)
    """

    def __init__(self, what, total=None, unit="examples", interval=30.0, log=None, announce=True):
        self.what = what
        self.announce = announce
        self.total = total
        self.unit = unit
        self.interval = float(interval)
        self.log = log or logger
        self.count = 0
        self.seconds = 0.0
        self._start = None
        self._last_report = None
        self._last_count = 0

    def __enter__(self):
        self._start = self._last_report = time.perf_counter()
        if self.announce:
            total = f" {_count(self.total)} {self.unit}" if self.total is not None else ""
            self.log.info("%s:%s ...", self.what, total)
        return self

    def update(self, count=1):
        """Adds ``count`` done items; logs a progress line when ``interval`` seconds (and a tenth) passed since one."""
        self.count += count
        now = time.perf_counter()
        tenth = self.total is None or self.count - self._last_count >= self.total / 10
        if now - self._last_report >= self.interval and tenth:
            self._last_report, self._last_count = now, self.count
            elapsed = now - self._start
            done = _count(self.count) if self.total is None else f"{_count(self.count)}/{_count(self.total)}"
            self.log.info("%s: %s %s, %s %s/s, %.0f s", self.what, done, self.unit,
                          _count(self.count / elapsed), self.unit, elapsed)

    def __exit__(self, kind, value, traceback):
        self.seconds = time.perf_counter() - self._start
        if kind is None:
            rate = self.count / self.seconds if self.seconds > 0 else float("inf")
            self.log.info("%s: %s %s in %.1f s (%s %s/s)", self.what, _count(self.count), self.unit, self.seconds,
                          _count(rate), self.unit)
        return False
