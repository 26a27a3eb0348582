"""Timing training fairly: untimed warm-up, epochs timed as Keras reports them, models taking turns."""

import numpy as np

from tfnlp.training.runtime import Throughput


def warm_up(model, dataset, steps):
    """Untimed training steps: graph tracing and the first allocations are not part of the figures."""
    model.fit(dataset.take(steps), epochs=1, verbose=0)


def epoch_rate(model, dataset, num_examples):
    """Training examples per second over one epoch, timed as the fit scripts time it (`Throughput`).

    The clock runs from the epoch's start to its end, as Keras reports them,
    not around the whole `fit` call: creating and dropping the epoch's input
    iterator is not training, and a ``prefetch(AUTOTUNE)`` pipeline would
    otherwise add a stall of up to its epoch's length when its iterator is
    dropped (see `tfnlp.data.batching.disable_autotuning`).
    """
    throughput = Throughput(num_examples)
    model.fit(dataset, epochs=1, verbose=0, callbacks=[throughput])
    return throughput.examples_per_second[-1]


def interleaved_rates(setups, num_examples, epochs, warmup_steps):
    """The median per-epoch examples/s of each ``(model, dataset)``, their epochs taking turns.

    Taking turns exposes every model to the same drift in machine load (other
    processes, CPU frequency), and the median drops the odd disturbed epoch.

    Args:
        setups: list of ``(compiled model, training dataset)``.
        num_examples: int. Examples in one epoch of every dataset.
        epochs: int. Timed epochs per model.
        warmup_steps: int. Untimed steps per model first.

    Returns:
        list of float: each model's median examples per second.
    """
    for model, dataset in setups:
        warm_up(model, dataset, warmup_steps)
    rates = [[] for _ in setups]
    for _ in range(epochs):
        for (model, dataset), model_rates in zip(setups, rates):
            model_rates.append(epoch_rate(model, dataset, num_examples))
    return [float(np.median(model_rates)) for model_rates in rates]
