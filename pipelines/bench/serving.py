"""Serving latency of exports, through their loaded signatures as the model server runs them.

    python -m pipelines.bench.serving saved_models/agnews_transformer saved_models/agnews_hub_bert
    python -m pipelines.bench.serving saved_models/conll_ner --requests 500 --output bench.json

For each export (newest version of saved_models/<name>, or a version folder):
load it with tf.saved_model.load, replay its warm-up requests (as TF Serving
does before serving a version), then

- single-text requests: --requests calls of serving_default on one test text
  each, timed from the request tensor to the output arrays (p50, p99, mean),
  and the process's CPU time per request (all threads; less sensitive than
  wall time to other processes on a shared machine);
- batches of --batch-size texts: texts per second over --batch-texts texts.

Classifiers get the AG News test texts (title + description), NER models the
CoNLL-2003 test sentences (words joined by spaces), in file order; the kind is
read from the signature's outputs. Targets (p50 of one text) are those of the
deployment issue: custom Transformer 2 ms, MiniLM classifiers 15 ms, NER 20 ms.
The figures include TensorFlow's eager call of the signature (tens of
microseconds), not the server's RPC and JSON work.

--worst-case adds what the bound on a request costs: one 100,000-character
text ("stocks " repeated: one word piece each, far more than any export
reads), one text of 254 pieces (one NER window of 256 tokens), each timed 3
times (the median), and one batch of the worst text at the version's largest
allowed batch size (its batching_params.pbtxt, written by
pipelines.serving.config; else --batch-size).
"""

import dataclasses
import os
import platform
import time

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import tensorflow as tf

from tfnlp.errors import ConfigurationError
from tfnlp.serving import warmup
from tfnlp.serving.served_model import CLASSIFIER, NER, ServedModel, op_error_message
from tfnlp.serving.throughput import benchmark_texts
from tfnlp.training import cli, field, parse_arguments

# p50 targets of one text, in ms, by model folder name (the deployment issue's).
TARGETS_MS = {"agnews_transformer": 2.0, "agnews_hub_bert": 15.0, "agnews_hf_bert": 15.0, "conll_ner": 20.0}


def percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


def time_single_requests(function, input_name, texts, requests):
    """Wall seconds per single-text request for ``requests`` requests (cycling through ``texts``), and the
    process's CPU seconds per request (all its threads)."""
    seconds = []
    cpu_start = time.process_time()
    for i in range(requests):
        start = time.perf_counter()
        outputs = function(**{input_name: tf.constant([texts[i % len(texts)]])})
        _ = {key: value.numpy() for key, value in outputs.items()}
        seconds.append(time.perf_counter() - start)
    return seconds, (time.process_time() - cpu_start) / requests


def time_batches(function, input_name, texts, batch_size, total):
    """Texts per second over ``total`` texts (cycling through ``texts``) in batches of ``batch_size``."""
    batches = [[texts[(start + i) % len(texts)] for i in range(batch_size)] for start in range(0, total, batch_size)]
    start = time.perf_counter()
    for batch in batches:
        outputs = function(**{input_name: tf.constant(batch)})
        _ = {key: value.numpy() for key, value in outputs.items()}
    seconds = time.perf_counter() - start
    return len(batches) * batch_size / seconds


WORST_TEXT = ("stocks " * 15_000)[:100_000]  # 14,286 pieces (each "stocks" is one): past every export's cap.
ONE_WINDOW_TEXT = "stocks " * 254  # 254 pieces: one window of 256 tokens with [CLS] and [SEP].


def time_worst_case(function, input_name, version_dir, default_batch_size):
    """Milliseconds of the worst text alone, of a one-window text, and of the largest allowed batch of worst texts."""

    from tfnlp.serving import server_config

    def seconds(texts):  # Wall and CPU seconds (this process, all threads: less sensitive to other processes).
        start, cpu = time.perf_counter(), time.process_time()
        outputs = {key: value.numpy() for key, value in function(**{input_name: tf.constant(texts)}).items()}
        return time.perf_counter() - start, outputs, time.process_time() - cpu

    params = os.path.join(version_dir, "batching_params.pbtxt")
    if os.path.exists(params):
        with open(params, encoding="utf-8") as f:
            batch_size = server_config.parse_text(f.read(), "BatchingParameters").max_batch_size.value
    else:
        batch_size = default_batch_size
    seconds([WORST_TEXT])  # The first call of a long text grows the buffers; not timed.
    worst = [seconds([WORST_TEXT]) for _ in range(3)]
    window = [seconds([ONE_WINDOW_TEXT]) for _ in range(3)]
    batch, outputs, batch_cpu = seconds([WORST_TEXT] * batch_size)
    truncated = outputs.get("truncated")

    def median_ms(runs, index):
        return 1000 * float(np.median([run[index] for run in runs]))

    return {"worst_text_ms": median_ms(worst, 0), "worst_text_cpu_ms": median_ms(worst, 2),
            "one_window_text_ms": median_ms(window, 0), "one_window_text_cpu_ms": median_ms(window, 2),
            "worst_batch_size": batch_size, "worst_batch_ms": 1000 * batch, "worst_batch_cpu_ms": 1000 * batch_cpu,
            "worst_text_truncated": None if truncated is None else bool(truncated.all())}


def benchmark(path, args):
    """Loads one export and measures it; returns a JSON-ready dict."""
    model = ServedModel.load(path)
    function = model.signature("serving_default")
    specs = model.input_specs("serving_default")
    if len(specs) != 1 or next(iter(specs.values())).dtype != tf.string:
        raise ConfigurationError(f"{model.path}: serving_default does not take texts (inputs {sorted(specs)})")
    input_name = next(iter(specs))
    kind = model.kind()
    texts, source = benchmark_texts(NER if kind == NER else CLASSIFIER, args.data_dir or None)
    if warmup.read_warmup_requests(model.path):  # Optional for TF Serving too (exports made here have them).
        warmup.replay_warmup_requests(model.path, model.signatures)
    time_single_requests(function, input_name, texts, 20)  # First calls: kernels' lazy initialization.
    single, cpu_seconds = time_single_requests(function, input_name, texts, args.requests)
    throughput = time_batches(function, input_name, texts, args.batch_size, args.batch_texts)
    result = {
        "model": model.name, "version": model.version, "path": model.path, "kind": kind, "texts": source,
        "requests": args.requests, "p50_ms": 1000 * percentile(single, 50), "p99_ms": 1000 * percentile(single, 99),
        "mean_ms": 1000 * float(np.mean(single)), "cpu_ms_per_request": 1000 * cpu_seconds,
        "batch_size": args.batch_size,
        "texts_per_second": throughput, "target_p50_ms": TARGETS_MS.get(model.name),
    }
    result["meets_target"] = None if result["target_p50_ms"] is None else result["p50_ms"] <= result["target_p50_ms"]
    if args.worst_case:
        result.update(time_worst_case(function, input_name, model.path, args.batch_size))
    return result


def format_table(results):
    """The results as a Markdown table."""
    batch_size = results[0]["batch_size"] if results else 64
    lines = ["| model | version | kind | texts | p50 ms | p99 ms | mean ms | CPU ms/request | "
             f"texts/s @{batch_size} | target p50 |", "|" + "---|" * 10]
    for r in results:
        target = "-" if r["target_p50_ms"] is None else \
            f"<= {r['target_p50_ms']:g} ms: {'met' if r['meets_target'] else 'MISSED'}"
        lines.append(f"| {r['model']} | {r['version']} | {r['kind']} | {r['texts']} | {r['p50_ms']:.2f} | "
                     f"{r['p99_ms']:.2f} | {r['mean_ms']:.2f} | {r['cpu_ms_per_request']:.2f} | "
                     f"{r['texts_per_second']:.0f} | {target} |")
    return "\n".join(lines)


@dataclasses.dataclass
class BenchmarkArguments:
    """The exports, their test texts, and how many requests to time."""

    models: tuple[str, ...] = field((), "saved_models/<name> (newest version) or version folders.", nargs="+",
                                    positional=True)
    data_dir: str = field("", "Folder holding ag_news/ and conll2003/ ('' = $TFNLP_DATA_DIR).")
    requests: int = field(1000, "Timed single-text requests per model.")
    batch_size: int = field(64, "Texts per request for the throughput figure.")
    batch_texts: int = field(64 * 32, "Texts timed in batches per model.")
    worst_case: bool = field(False, "Also time the worst text (100,000 characters) alone and in the largest "
                                    "allowed batch.")
    output: str | None = field(None, "Also write the results as JSON to this file.")

    def __post_init__(self):
        if min(self.requests, self.batch_size, self.batch_texts) < 1:
            raise ValueError("--requests, --batch-size and --batch-texts must be at least 1")


def main(argv=None):
    (args,) = parse_arguments(__doc__, BenchmarkArguments, argv=argv)
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
          f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    results = []
    for path in args.models:
        try:
            with cli.user_errors(ValueError):  # The export lacks serving_default, or its warm-up file is wrong.
                results.append(benchmark(path, args))
        except tf.errors.OpError as e:
            raise ConfigurationError(f"{path}: the signature failed on a test text: {op_error_message(e)}") from e
        r = results[-1]
        print(f"{r['model']}/{r['version']}: p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
              f"{r['texts_per_second']:.0f} texts/s at batch {r['batch_size']}", flush=True)
        if args.worst_case:
            print(f"  worst text (100,000 characters, truncated: {r['worst_text_truncated']}) "
                  f"{r['worst_text_ms']:.0f} ms ({r['worst_text_cpu_ms']:.0f} CPU ms); a 254-piece text "
                  f"{r['one_window_text_ms']:.0f} ms ({r['one_window_text_cpu_ms']:.0f} CPU ms); "
                  f"{r['worst_batch_size']} worst texts in one batch {r['worst_batch_ms']:.0f} ms "
                  f"({r['worst_batch_cpu_ms']:.0f} CPU ms)", flush=True)
    print(format_table(results))
    if args.output:
        from tfnlp.utils import atomic_write_json

        atomic_write_json(args.output, {"results": results, "load_average_end": os.getloadavg()})
    return results


if __name__ == "__main__":
    cli.run(main)
