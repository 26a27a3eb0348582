r"""Tokenization benchmark on the AG News test texts: the lesson's ``tf.py_function`` path vs in-graph.

Three ways to turn texts into 128-token BERT inputs are timed:

1. the lesson notebook's path: ``tf.data`` + ``tf.py_function`` calling the
   slow Python ``transformers.BertTokenizer.encode`` on one example at a time,
   padded to 128 (on ``--py-function-examples`` texts, as it is slow);
2. HF ``BertTokenizerFast`` (Rust) on whole Python batches;
3. `tfnlp.text.BertTokenizer`: tokenize, pack and pad to 128 inside
   ``tf.data`` (``batch`` then ``map``), no Python per example;
4. the same, also returning word ids and offsets (as for NER), which takes
   its exact normalization-table path on every text.

Each path runs once untimed (warm-up: tracing, caches), then ``--repeats``
timed passes; the table shows the best pass. The last line states the
in-graph throughput and its speed-up over the ``tf.py_function`` path.

Usage:
    python -m pipelines.bench.tokenization --data-dir ../shared/data
"""

import dataclasses
import os
import time

import tfnlp  # noqa: F401  (selects Keras 2 before TensorFlow is imported)

import tensorflow as tf
import transformers

from tfnlp import data, pretrained
from tfnlp.text import BertTokenizer
from tfnlp.training import cli, field, parse_arguments


@dataclasses.dataclass
class Result:
    """One timed path: ``examples`` texts tokenized in ``seconds`` (best pass)."""

    name: str
    examples: int
    seconds: float

    @property
    def texts_per_second(self):
        return self.examples / self.seconds


@dataclasses.dataclass
class BenchmarkArguments:
    """The texts, the tokenizer and how long to time each path."""

    data_dir: str = field("", "Folder holding ag_news/test.csv ('' = $TFNLP_DATA_DIR).")
    pretrained: str | None = field(None, "HF BERT folder or hub name whose vocab.txt is used (None: the packaged "
                                         "MiniLM).")
    sequence_length: int = field(128, "Tokens per example, padded and truncated.")
    batch_size: int = field(256, "Texts per batch for the batched paths.")
    max_examples: int | None = field(None, "Use only the first N test texts for the batched paths (None: all "
                                           "7,600).")
    py_function_examples: int = field(1000, "Texts timed on the slow tf.py_function path.")
    repeats: int = field(3, "Timed passes per path; the best one is reported.")

    def __post_init__(self):
        if not (self.data_dir or os.environ.get(data.DATA_DIR_ENV)):
            raise ValueError("--data-dir is required when $TFNLP_DATA_DIR is not set")
        for name in ("sequence_length", "batch_size", "py_function_examples", "repeats"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")


def best_time(run, repeats):
    """Runs ``run`` once untimed (warm-up), then ``repeats`` times; returns the fastest wall time in seconds."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def py_function_dataset(texts, vocab_file, do_lower_case, sequence_length, batch_size):
    """The lesson's input pipeline: slow ``BertTokenizer.encode`` per example inside ``tf.py_function``."""
    tokenizer = transformers.BertTokenizer(vocab_file, do_lower_case=do_lower_case)

    def process(x):
        return tokenizer.encode(x.numpy().decode("utf-8"), return_tensors="tf", padding="max_length",
                                max_length=sequence_length, truncation=True)[0]

    def process_fn(x):
        e = tf.py_function(process, inp=[x], Tout=tf.int32)
        e.set_shape(sequence_length)
        return e

    return tf.data.Dataset.from_tensor_slices(texts).map(process_fn).batch(batch_size)


def hf_fast_batches(texts, folder, sequence_length, batch_size):
    """Returns a function tokenizing ``texts`` with HF ``BertTokenizerFast``, one call per batch."""
    tokenizer = transformers.BertTokenizerFast.from_pretrained(folder, local_files_only=True)

    def run():
        for start in range(0, len(texts), batch_size):
            tokenizer(texts[start:start + batch_size], padding="max_length", truncation=True,
                      max_length=sequence_length, return_tensors="np")

    return run


def in_graph_dataset(texts, vocab_file, do_lower_case, sequence_length, batch_size, **kwargs):
    """`tfnlp.text.BertTokenizer` (``kwargs`` are more of its arguments) mapped over batches of ``tf.data``."""
    tokenizer = BertTokenizer(vocab_file, lower_case=do_lower_case, sequence_length=sequence_length,
                              padding="max_length", **kwargs)
    return (tf.data.Dataset.from_tensor_slices(texts).batch(batch_size)
            .map(tokenizer, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))


def iterate(dataset):
    """Returns a function that runs through ``dataset`` once."""
    def run():
        for _ in dataset:
            pass
    return run


def format_table(results, baseline):
    """Returns the results as a Markdown table, with speed-ups over ``baseline``."""
    lines = ["| path | texts | seconds | texts/s | vs py_function |", "| --- | ---: | ---: | ---: | ---: |"]
    for result in results:
        speedup = result.texts_per_second / baseline.texts_per_second
        lines.append(f"| {result.name} | {result.examples:,} | {result.seconds:.3f} | "
                     f"{result.texts_per_second:,.0f} | {speedup:,.1f}x |")
    return "\n".join(lines)


def main(argv=None):
    (args,) = parse_arguments(__doc__, BenchmarkArguments, argv=argv)
    print("Configuration:", dataclasses.asdict(args))
    data_dir = args.data_dir or os.environ[data.DATA_DIR_ENV]
    texts = data.read_ag_news_csv(os.path.join(data_dir, "ag_news", "test.csv")).texts
    texts = texts[:args.max_examples]
    slow_texts = texts[:args.py_function_examples]
    vocab_file, do_lower_case = pretrained.tokenizer_files(args.pretrained)
    print(f"{len(texts):,} AG News test texts; vocabulary {vocab_file}; {os.cpu_count()} CPU cores")

    slow = py_function_dataset(slow_texts, vocab_file, do_lower_case, args.sequence_length, args.batch_size)
    results = [Result(f"lesson: tf.data + tf.py_function + BertTokenizer.encode ({len(slow_texts):,} texts)",
                      len(slow_texts), best_time(iterate(slow), args.repeats))]
    hf_run = hf_fast_batches(texts, os.path.dirname(vocab_file), args.sequence_length, args.batch_size)
    results.append(Result("HF BertTokenizerFast on Python batches", len(texts), best_time(hf_run, args.repeats)))
    for name, kwargs in [("tfnlp BertTokenizer in tf.data (in-graph)", {}),
                         ("tfnlp BertTokenizer + word ids + offsets", {"return_word_ids": True,
                                                                       "return_offsets": True})]:
        dataset = in_graph_dataset(texts, vocab_file, do_lower_case, args.sequence_length, args.batch_size,
                                   **kwargs)
        results.append(Result(name, len(texts), best_time(iterate(dataset), args.repeats)))

    print(format_table(results, baseline=results[0]))
    ours, baseline = results[2], results[0]
    print(f"tfnlp in-graph tokenization: {ours.texts_per_second:,.0f} texts/s, "
          f"{ours.texts_per_second / baseline.texts_per_second:,.1f}x the tf.py_function path "
          f"(target: >= 30,000 texts/s and >= 50x)")


if __name__ == "__main__":
    cli.run(main)
