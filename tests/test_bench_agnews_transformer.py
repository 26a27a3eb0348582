"""Smoke test of the AG News training-speed benchmark on a tiny CSV fixture (no timing is asserted).

The runs of the benchmark train models: they are in the large tier (`make test-all`).
"""

import os
import re

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import pytest

from pipelines.bench import agnews_transformer as bench
from tfnlp.models import SentenceEmbeddingDistiller
from tfnlp.training import runtime

OVERRIDES = ["--embedding-dim", "8", "--num-heads", "2", "--intermediate-dim", "8", "--batch-size", "8",
             "--no-pretrained-embeddings", "--tokenizer", "text_vectorization", "--distillation-weight", "0"]
LESSON_ROW = re.compile(r"^\| lesson \(TextVectorization 20k, pad 256, d32, 2 heads\) +\| +(\d+) \|$")
DEFAULTS_ROW = re.compile(r"^\| tfnlp defaults \(WordPiece, length buckets\) (.*?) +\| +(\d+) \|$")


@pytest.fixture
def data_root(tmp_path):
    """An ag_news folder: 40 training and 8 test rows of a few words each, and classes.txt."""
    folder = tmp_path / "data" / "ag_news"
    folder.mkdir(parents=True)
    words = ["minister election", "striker goal", "stocks profit", "software chip"]
    for name, count in (("train.csv", 40), ("test.csv", 8)):
        rows = [f'"{i % 4 + 1}","Report {i}","{words[i % 4]} today{", officials said" * (i % 6)}."'
                for i in range(count)]
        (folder / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
    (folder / "classes.txt").write_text("World\nSports\nBusiness\nSci/Tech\n", encoding="utf-8")
    return tmp_path / "data"


def run_bench(data_root, tmp_path, capsys, monkeypatch, *flags, overrides=tuple(OVERRIDES)):
    """Runs the benchmark on the first 24 examples; returns (the report's lines, the pipeline's model arguments)."""
    built = []
    build_model = bench.recipe.build_model
    monkeypatch.setattr(bench.recipe, "build_model",
                        lambda model_args, *args: built.append(model_args) or build_model(model_args, *args))
    bench.main(["--data-dir", str(data_root), "--max-train-examples", "24", "--epochs", "1", "--warmup-steps", "1",
                "--output-dir", str(tmp_path / "bench"), *flags, "--", *overrides])
    lines = capsys.readouterr().out.strip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Training speed on "))
    return lines[start:], built


@pytest.mark.large
def test_benchmark_prints_both_models_and_their_ratio_last(data_root, tmp_path, capsys, monkeypatch):
    lines, built = run_bench(data_root, tmp_path, capsys, monkeypatch)
    assert re.fullmatch(r"Training speed on 24 AG News examples, 1 epoch\(s\), (\d+|all) threads "
                        r"\(median epoch; the models' epochs take turns\)", lines[0])
    assert lines[1] == f"| {'model':<55} | examples/s |" and lines[2] == f"| {'-' * 55} | {'-' * 10} |"
    lesson = LESSON_ROW.match(lines[3])
    defaults = DEFAULTS_ROW.match(lines[4])
    assert lesson and defaults and len(lines) == 6
    assert defaults.group(1) == " ".join(OVERRIDES)
    last = re.fullmatch(r"defaults: (\d+) examples/s = (\d+\.\d) x the lesson's (\d+) examples/s", lines[5])
    assert last and last.group(1) == defaults.group(2) and last.group(3) == lesson.group(1)
    # The ratio is printed to 0.1 from the unrounded rates, which are printed to 1 example/s.
    ratio, rate, lesson_rate = float(last.group(2)), int(defaults.group(2)), int(lesson.group(1))
    assert (rate - 0.5) / (lesson_rate + 0.5) - 0.05 <= ratio <= (rate + 0.5) / (lesson_rate - 0.5) + 0.05
    # The overrides after "--" reached the pipeline's model.
    assert [(args.tokenizer, args.embedding_dim, args.pretrained_embeddings) for args in built] == [
        ("text_vectorization", 8, False)]


@pytest.mark.large
def test_the_timed_defaults_train_with_their_distillation_head(data_root, tmp_path, capsys, monkeypatch,
                                                              tiny_bert_dir):
    trainers = []
    build_trainer = bench.recipe.build_trainer
    monkeypatch.setattr(bench.recipe, "build_trainer", lambda *args: trainers.append(build_trainer(*args)) or
                        trainers[-1])
    overrides = OVERRIDES[:-2] + ["--distillation-teacher", tiny_bert_dir]  # The default weight, a tiny teacher.
    lines, _ = run_bench(data_root, tmp_path, capsys, monkeypatch, "--skip-lesson", overrides=overrides)
    assert re.fullmatch(r"defaults: \d+ examples/s", lines[4])
    [trainer] = trainers
    assert isinstance(trainer, SentenceEmbeddingDistiller) and trainer.distillation_weight == 3.0
    assert trainer.distillation_tracker.count.numpy() > 0  # The timed epochs ran the distillation step.
    assert os.path.isfile(tmp_path / "bench" / "teacher" / "train.npz")


@pytest.mark.large
def test_skip_lesson_times_only_the_pipeline_model(data_root, tmp_path, capsys, monkeypatch):
    lines, _ = run_bench(data_root, tmp_path, capsys, monkeypatch, "--skip-lesson")
    assert len(lines) == 5 and DEFAULTS_ROW.match(lines[3])
    assert not any("lesson" in line or "nan" in line for line in lines)
    assert re.fullmatch(r"defaults: \d+ examples/s", lines[4])


def test_models_take_turns_epoch_by_epoch_and_the_median_epoch_is_reported(monkeypatch):
    """Each epoch is timed from Keras's epoch start to its end (`Throughput`), not around `fit`."""
    calls = []

    class FakeModel:
        def __init__(self, name):
            self.name = name

        def fit(self, dataset, epochs, verbose, callbacks=()):
            calls.append((self.name, "warm-up" if dataset == "head" else "epoch"))
            for callback in callbacks:  # Keras reports the epoch's start and end; nothing else reads the clock.
                callback.on_epoch_begin(0)
                callback.on_epoch_end(0)

    class FakeDataset:
        def take(self, steps):
            return "head"

    clock = iter([0.0, 1.0, 10.0, 12.0, 20.0, 24.0, 30.0, 30.5, 40.0, 41.0, 50.0, 52.0])
    monkeypatch.setattr(runtime.time, "perf_counter", lambda: next(clock))
    rates = bench.interleaved_rates([(FakeModel("lesson"), FakeDataset()), (FakeModel("defaults"), FakeDataset())],
                                    num_examples=100, epochs=3, warmup_steps=2)
    assert calls == [("lesson", "warm-up"), ("defaults", "warm-up")] + [
        ("lesson", "epoch"), ("defaults", "epoch")] * 3
    # Lesson epochs took 1, 4 and 1 s; the defaults' 2, 0.5 and 2 s.
    assert rates == [100.0, 50.0]
