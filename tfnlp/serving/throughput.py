"""Throughput of a serving signature by batch size, and the batch sizes worth allowing a model server.

TF Serving's batching merges concurrent requests into one call of the
signature, up to ``max_batch_size`` texts. It matters when requests queue up,
that is when the server's cores are all busy; then the server answers
``cores / (CPU seconds per text)`` texts per second, and a bigger batch pays
only while it lowers the CPU time per text: past that point it adds latency
and, for mixed-length texts, padding. `measure_throughput` times
``serving_default`` on real texts at batch sizes 1, 2, 4, ..., 64, in wall time
and in this process's CPU time (all its threads), which other processes on a
shared machine hardly change; `choose_batch_sizes` keeps the sizes up to the
point where a larger batch no longer gains ``min_gain`` (10%) of that
saturated throughput.

Example:
>>> curve = [{"batch_size": 1, SATURATED: 20.0}, {"batch_size": 2, SATURATED: 30.0},
...          {"batch_size": 4, SATURATED: 34.0}, {"batch_size": 8, SATURATED: 35.0}]
>>> choose_batch_sizes(curve)
(1, 2, 4)
"""

import datetime
import os
import platform
import time

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf

CANDIDATE_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
SATURATED = "saturated_texts_per_second"  # cores / CPU seconds per text: the server's rate with every core busy.
MIN_GAIN = 0.10  # A larger batch must raise throughput by this fraction to be worth its latency.


def benchmark_texts(kind, data_dir=None):
    """Real texts for a kind of model: AG News test texts (title + description) for classifiers, CoNLL-2003 test
    sentences (words joined by spaces) for NER, in file order; returns (texts, source name).

    Args:
        kind: str. `tfnlp.serving.served_model.NER`, or anything else for the AG News texts.
        data_dir: str or None. As in `tfnlp.data` (None: ``$TFNLP_DATA_DIR``, else the download).

    Raises:
        tfnlp.data.DataSourceUnavailableError: the data set is not there and cannot be downloaded.
    """
    from tfnlp import data
    from tfnlp.serving.served_model import NER

    if kind == NER:
        examples = data.load_conll2003_examples("test", data_dir=data_dir)
        return [" ".join(tokens) for tokens in examples.tokens], "CoNLL-2003 test"
    dataset, _ = data.load_ag_news("test", data_dir=data_dir)
    return [text.decode("utf-8") for text, _ in dataset.as_numpy_iterator()], "AG News test"


def measure_throughput(function, input_name, texts, batch_sizes=CANDIDATE_BATCH_SIZES, texts_per_size=128,
                       rounds=3):
    """Texts per second through a signature at each batch size.

    Every batch size reads the same texts (the first ``max(texts_per_size, 2 * batch_size)`` of
    ``texts``, cycled if there are fewer), in consecutive batches, from the request tensor to the
    output arrays. The sizes are timed in ``rounds`` passes over all sizes, and each keeps its best
    pass: other processes on the machine slow some passes down, none speeds one up.

    Args:
        function: callable. A signature taking ``input_name`` (`tf.string` ``[batch]``) as a keyword.
        input_name: str. Its text input.
        texts: sequence of str or bytes. At least one.
        batch_sizes: sequence of int. Ascending.
        texts_per_size: int. Texts timed per batch size and pass.
        rounds: int. Passes.

    Returns:
        list of dict, one per batch size: ``batch_size``; ``texts_per_second`` (wall time, the best
        pass) and ``seconds_per_batch`` at that rate; `SATURATED` (``cores`` divided by the CPU
        seconds per text of the pass that used the least, all threads of this process); ``passes``
        (wall texts per second of every pass) and ``cpu_seconds`` (of every pass).
    """
    if not texts:
        raise ValueError("no texts to measure with")
    if list(batch_sizes) != sorted(set(batch_sizes)) or min(batch_sizes) < 1:
        raise ValueError(f"batch_sizes must be ascending positive ints, got {batch_sizes}")
    run = _runner(function, input_name)
    run(texts[:1])  # The first call builds the graph's kernels; not timed.
    passes = {size: [] for size in batch_sizes}
    cpu = {size: [] for size in batch_sizes}
    counts = {}
    for _ in range(rounds):
        for size in batch_sizes:
            count = max(texts_per_size, 2 * size)
            counts[size] = count = count - count % size
            batches = [[texts[(start + i) % len(texts)] for i in range(size)] for start in range(0, count, size)]
            run(batches[0])  # A new batch shape: its first call is not timed either.
            start, cpu_start = time.perf_counter(), time.process_time()
            for batch in batches:
                run(batch)
            passes[size].append(count / (time.perf_counter() - start))
            cpu[size].append(time.process_time() - cpu_start)
    cores = os.cpu_count() or 1
    return [{"batch_size": size, "texts_per_second": max(rates), "seconds_per_batch": size / max(rates),
             SATURATED: cores * counts[size] / max(min(cpu[size]), 1e-9), "passes": rates, "cpu_seconds": cpu[size]}
            for size, rates in passes.items()]


def _runner(function, input_name):
    def run(batch):
        outputs = function(**{input_name: tf.constant(batch, tf.string)})
        return {key: value.numpy() for key, value in outputs.items()}
    return run


def choose_batch_sizes(curve, min_gain=MIN_GAIN, key=SATURATED):
    """The batch sizes to allow: those up to the first size that no larger one beats by ``min_gain``.

    Args:
        curve: list of dicts with ``batch_size`` and ``key`` (as `measure_throughput` returns them),
            ascending batch sizes.
        min_gain: float. The fraction of throughput a larger batch must add.
        key: str. The throughput compared: `SATURATED` (what a server with every core busy answers), or
            ``"texts_per_second"`` (wall time of one caller).

    Returns:
        tuple of int: the allowed batch sizes, ascending; the last is the ``max_batch_size``.
    """
    if not curve:
        raise ValueError("an empty throughput curve")
    sizes = [int(point["batch_size"]) for point in curve]
    if sizes != sorted(set(sizes)):
        raise ValueError(f"the curve's batch sizes must be ascending, got {sizes}")
    rates = [float(point[key]) for point in curve]
    for index, rate in enumerate(rates):
        if all(later < (1 + min_gain) * rate for later in rates[index + 1:]):
            return tuple(sizes[:index + 1])
    raise AssertionError("unreachable: the last size always qualifies")


def machine_description():
    """What a curve was measured on: ``{"cores", "cpu", "date", "load_average"}`` (the load of the machine at the
    end of the measurement: other processes slow a measurement down)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "date": datetime.date.today().isoformat(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}
