"""Junk load on an export: many requests of junk text through its signature, checking outputs and memory.

    python -m pipelines.bench.junk_load saved_models/agnews_transformer
    MALLOC_ARENA_MAX=2 python -m pipelines.bench.junk_load saved_models/conll_ner --requests 30000 --malloc-trim

Sends --requests single-text requests (default 10,000) to serving_default,
cycling through kinds of junk: empty strings, 100,000-character texts, random
bytes decoded leniently (U+FFFD for bad bytes), raw random bytes (not UTF-8,
as a gRPC client may send), emoji (ZWJ sequences, skin tones, flags), mixed
scripts with combining and direction marks, and control characters. Every
response is checked: classifiers' probabilities finite, in [0, 1] and summing
to 1; NER scores finite and entity offsets inside the text; any other model's
float outputs finite. A failed request is counted (the model server would
answer it with an error), a crash ends the process.

Resident memory (RSS) is read after every --report-every requests. The summary
gives the growth between the first and the last report, and the growth over
the last half of the run, which tells a leak (steady growth) from an allocator
that settles (growth that levels off). --malloc-trim calls glibc's
malloc_trim(0) before each reading: memory it returns was free but held by
the allocator (fragmentation), not leaked. MALLOC_ARENA_MAX and LD_PRELOAD
(tcmalloc, jemalloc) are printed with the figures.

A long run can be stopped early (Ctrl-C, or SIGTERM as from `timeout`): the
requests sent so far get a last RSS reading, the summary and the JSON, marked
``"complete": false``, and the exit status is 130.
"""

import ctypes
import dataclasses
import os
import random
import signal
import time

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import psutil
import tensorflow as tf

from tfnlp.errors import ConfigurationError
from tfnlp.serving.served_model import CLASSIFIER, NER, ServedModel, op_error_message
from tfnlp.training import cli, field, parse_arguments

KINDS = ("empty", "long_100k", "lenient_bytes", "raw_bytes", "emoji", "mixed_scripts", "control")

_EMOJI = ["😀", "🤖", "🔥", "🎉", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵", "🇺🇦", "❤️", "🧑🏿‍🚀", "🫠", "\u200d", "\ufe0f"]
# Code point ranges of scripts, combining marks and direction controls.
_SCRIPTS = [(0x41, 0x7A), (0xC0, 0x24F), (0x300, 0x36F), (0x391, 0x3C9), (0x410, 0x44F), (0x5D0, 0x5EA),
            (0x620, 0x64A), (0x900, 0x97F), (0xE01, 0xE5B), (0x10A0, 0x10FF), (0x3041, 0x3096), (0x30A1, 0x30FA),
            (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0x1D400, 0x1D7FF), (0x202A, 0x202E), (0x2066, 0x2069)]
_CONTROLS = [chr(c) for c in list(range(0x00, 0x20)) + [0x7F] + list(range(0x80, 0xA0))] + \
    ["\u200b", "\u200c", "\u200e", "\u200f", "\u2028", "\u2029", "\ufeff", "\ufffe", "\uffff", "\U0010FFFF"]
_WORDS = ["stocks", "fell", "the", "team", "won", "Paris", "Merkel", "Apple", "oil", "record", "1999", "U.S.", "-"]


def junk_text(kind, rng, _long_texts={}):  # noqa: B006  (a pool of long texts shared by every call)
    """One junk request text (bytes) of ``kind``."""
    if kind == "empty":
        return rng.choice([b"", b" ", b"\n", b"\t \r\n"])
    if kind == "long_100k":
        style = rng.randrange(3)
        pool = _long_texts.setdefault(style, [])
        if len(pool) < 8:  # Eight texts of each style, then reused: building one takes longer than predicting it.
            if style == 0:  # One word of 100,000 letters.
                text = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(100_000))
            elif style == 1:  # 100,000 characters of words.
                text = " ".join(rng.choice(_WORDS) for _ in range(20_000))[:100_000].ljust(100_000, ".")
            else:  # 100,000 Cyrillic letters (200,000 bytes).
                text = "".join(chr(rng.randint(0x410, 0x44F)) for _ in range(100_000))
            pool.append(text.encode())
            return pool[-1]
        return rng.choice(pool)
    if kind == "lenient_bytes":
        return rng.randbytes(rng.randint(1, 2000)).decode("utf-8", "replace").encode()
    if kind == "raw_bytes":
        raw = rng.randbytes(rng.randint(1, 2000))
        return raw + rng.choice([b"", b"\xed\xa0\x80", b"\xc3", b"\xf4\x90\x80\x80"])  # Surrogate, cut, > U+10FFFF.
    if kind == "emoji":
        return "".join(rng.choice(_EMOJI) for _ in range(rng.randint(1, 500))).encode()
    if kind == "mixed_scripts":
        chars = [chr(rng.randint(*rng.choice(_SCRIPTS))) if rng.random() < 0.9 else " "
                 for _ in range(rng.randint(1, 2000))]
        return "".join(chars).encode()
    if kind == "control":
        parts = [rng.choice(_CONTROLS) if rng.random() < 0.6 else rng.choice(_WORDS)
                 for _ in range(rng.randint(1, 500))]
        return "".join(parts).encode()
    raise ValueError(f"unknown junk kind {kind!r}")


def junk_texts(count, seed=0):
    """``count`` junk texts, the kinds taken in turn; yields (kind, bytes)."""
    rng = random.Random(seed)
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        yield kind, junk_text(kind, rng)


def check_outputs(outputs, kind, texts):
    """Problems with a response (empty list when it is valid)."""
    problems = []
    for name, value in outputs.items():
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            problems.append(f"{name} not finite")
    if kind == CLASSIFIER:
        probabilities = outputs["probabilities"]
        if (probabilities < 0).any() or (probabilities > 1).any() or \
                not np.allclose(probabilities.sum(axis=-1), 1.0, atol=1e-4):
            problems.append("probabilities not a distribution")
    elif kind == NER:
        for i, text in enumerate(texts):
            try:
                length = len(text.decode("utf-8"))
            except UnicodeDecodeError:
                length = None  # Offsets of a text that is not UTF-8 have no reference length.
            for j in range(int(outputs["num_entities"][i])):
                start, end = int(outputs["start"][i, j]), int(outputs["end"][i, j])
                if start < 0 or end < start or (length is not None and end > length):
                    problems.append(f"entity offsets {start}..{end} outside a text of {length} characters")
    return problems


def rss_mb():
    return psutil.Process().memory_info().rss / 2**20


def malloc_trim():
    """glibc's malloc_trim(0): hands free heap memory back to the system (False where there is no glibc)."""
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


def run(model, args):
    """Sends the junk; returns the per-report rows and the counts (``complete``: False if interrupted)."""
    function = model.signature("serving_default")
    specs = model.input_specs("serving_default")
    if len(specs) != 1 or next(iter(specs.values())).dtype != tf.string:
        raise ConfigurationError(f"{model.path}: serving_default does not take texts (inputs {sorted(specs)})")
    input_name, kind = next(iter(specs)), model.kind()
    rows, failures, problems, by_kind = [], 0, [], {name: 0 for name in KINDS}
    truncated = {name: 0 for name in KINDS}  # Texts the model said it read only the beginning of, by kind.
    batch, kinds, start, sent, done = [], [], time.perf_counter(), 0, 0  # done: texts answered.

    def report():
        trimmed = malloc_trim() if args.malloc_trim else None
        elapsed = time.perf_counter() - start
        rows.append({"requests": done, "rss_mb": rss_mb(), "seconds": elapsed, "malloc_trim": trimmed})
        print(f"{done:>7} requests  RSS {rows[-1]['rss_mb']:8.1f} MB  {elapsed:7.1f} s  "
              f"failed {failures}  problems {len(problems)}", flush=True)

    try:
        for index, (junk_kind, text) in enumerate(junk_texts(args.requests, args.seed), start=1):
            batch.append(text)
            kinds.append(junk_kind)
            if len(batch) == args.batch_size or index == args.requests:
                try:
                    outputs = {key: value.numpy()
                               for key, value in function(**{input_name: tf.constant(batch)}).items()}
                    problems.extend(f"request {index} ({junk_kind}): {problem}"
                                    for problem in check_outputs(outputs, kind, batch))
                    for name, cut in zip(kinds, outputs.get("truncated", ())):
                        truncated[name] += bool(cut)
                except tf.errors.OpError as e:
                    failures += 1
                    problems.append(f"request {index} ({junk_kind}) failed: {op_error_message(e)[:200]}")
                for name in kinds:
                    by_kind[name] += 1
                sent, done, batch, kinds = sent + 1, index, [], []
            if index % args.report_every == 0 or index == args.requests:
                report()
        complete = True
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (see main): the figures of the texts answered so far.
        complete = False
        print(f"interrupted after {done} texts", flush=True)
        if done and (not rows or rows[-1]["requests"] != done):
            report()
    return rows, {"failed": failures, "problems": problems, "by_kind": by_kind, "calls": sent, "complete": complete,
                  "truncated_by_kind": truncated if "truncated" in model.signature().structured_outputs else None}


def summarize(rows):
    """Growth between the first and the last report, and over the last half of the run."""
    first, last = rows[0], rows[-1]
    middle = rows[len(rows) // 2]
    span = max(last["requests"] - middle["requests"], 1)
    return {
        "rss_first_mb": first["rss_mb"], "rss_last_mb": last["rss_mb"],
        "growth_percent": 100 * (last["rss_mb"] - first["rss_mb"]) / first["rss_mb"],
        "late_growth_mb_per_1000": 1000 * (last["rss_mb"] - middle["rss_mb"]) / span,
    }


@dataclasses.dataclass
class JunkLoadArguments:
    """The export, how much junk to send, and how memory is read."""

    model: str = field("", "saved_models/<name> (newest version) or a version folder.", positional=True)
    requests: int = field(10_000, "Junk texts to send.")
    batch_size: int = field(1, "Texts per request.")
    report_every: int = field(1000, "Read RSS every this many texts.")
    seed: int = field(0, "Seed of the junk generator.")
    malloc_trim: bool = field(False, "Call malloc_trim(0) before each RSS reading.")
    output: str | None = field(None, "Also write the figures as JSON to this file.")

    def __post_init__(self):
        if min(self.requests, self.batch_size, self.report_every) < 1:
            raise ValueError("--requests, --batch-size and --report-every must be at least 1")


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    """Sends the junk and prints the figures; returns the exit status (1: a failed request or a bad output; 130:
    interrupted)."""
    (args,) = parse_arguments(__doc__, JunkLoadArguments, argv=argv)
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # `timeout`, `kill`: as Ctrl-C.
    try:
        model = ServedModel.load(args.model)
        print(f"{model.name}/{model.version} ({model.kind()}): {args.requests} junk texts, {args.batch_size} per "
              f"request; MALLOC_ARENA_MAX={os.environ.get('MALLOC_ARENA_MAX', '(unset)')} "
              f"LD_PRELOAD={os.environ.get('LD_PRELOAD', '(unset)')} malloc_trim={args.malloc_trim}; "
              f"RSS after load {rss_mb():.1f} MB", flush=True)
        with cli.user_errors(ValueError):  # The export lacks serving_default.
            rows, counts = run(model, args)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not rows:
        print("no request was answered before the interruption: no figures")
        return 130
    summary = summarize(rows)
    for problem in counts["problems"][:20]:
        print("  " + problem)
    print(f"{counts['calls']} requests, {counts['failed']} failed, {len(counts['problems'])} problems; "
          f"RSS {summary['rss_first_mb']:.1f} MB after the first {rows[0]['requests']} texts, "
          f"{summary['rss_last_mb']:.1f} MB after {rows[-1]['requests']}: {summary['growth_percent']:+.1f}%; "
          f"last half {summary['late_growth_mb_per_1000']:+.2f} MB per 1,000 texts"
          + ("" if counts["complete"] else f" (interrupted: {rows[-1]['requests']} of {args.requests} texts)"))
    if counts["truncated_by_kind"] is not None:
        cut = {name: n for name, n in counts["truncated_by_kind"].items() if n}
        print(f"texts marked truncated: {sum(cut.values())} "
              f"({', '.join(f'{name} {n}' for name, n in cut.items()) or 'none'})")
    if args.output:
        from tfnlp.utils import atomic_write_json

        atomic_write_json(args.output, {"model": model.path, "arguments": dataclasses.asdict(args), "rows": rows,
                                        "summary": summary, "complete": counts["complete"],
                                        "failed": counts["failed"], "problems": counts["problems"],
                                        "by_kind": counts["by_kind"],
                                        "truncated_by_kind": counts["truncated_by_kind"]})
    if counts["failed"] or counts["problems"]:
        return 1
    return 0 if counts["complete"] else 130


if __name__ == "__main__":
    cli.run(main)
