"""The serving benchmarks run end to end on tiny exports (their figures are reported by the scripts, not tested)."""

import json
import os
import signal

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import pytest

from pipelines.bench import junk_load as bench_junk_load, serving as bench_serving
from serving_modules import copy_export
from tfnlp.serving import server_config


@pytest.fixture(scope="module")
def saved_models(tiny_exports, tmp_path_factory):
    """A saved_models folder of the tiny exports made by the real serving modules (`conftest.tiny_exports`)."""
    root = tmp_path_factory.mktemp("saved_models")
    copy_export(tiny_exports["classifier"], str(root / "agnews_transformer"))
    copy_export(tiny_exports["ner"], str(root / "conll_ner"))
    return root


@pytest.mark.large  # A benchmark over the real test texts.
@pytest.mark.integration
def test_latency_benchmark_reports_each_model_on_its_test_texts(saved_models, data_dir, tmp_path, capsys):
    output = tmp_path / "bench.json"
    (saved_models / "agnews_transformer" / "1" / "batching_params.pbtxt").write_text(
        server_config.to_text(server_config.batching_parameters([1, 2])))  # As serving_config writes it.
    results = bench_serving.main([str(saved_models / "agnews_transformer"), str(saved_models / "conll_ner"),
                                  "--data-dir", data_dir, "--requests", "5", "--batch-size", "4",
                                  "--batch-texts", "8", "--worst-case", "--output", str(output)])
    assert [(r["model"], r["kind"], r["texts"]) for r in results] == [
        ("agnews_transformer", "classifier", "AG News test"), ("conll_ner", "ner", "CoNLL-2003 test")]
    for r in results:
        assert 0 < r["p50_ms"] <= r["p99_ms"] and r["texts_per_second"] > 0 and r["cpu_ms_per_request"] > 0
        assert r["target_p50_ms"] == bench_serving.TARGETS_MS[r["model"]]
        assert min(r[f"{name}_ms"] for name in ("worst_text", "one_window_text", "worst_batch")) > 0
        assert min(r[f"{name}_cpu_ms"] for name in ("worst_text", "one_window_text", "worst_batch")) >= 0
        assert r["worst_text_truncated"] is True  # 100,000 characters: more than either export reads.
    # The largest allowed batch: the version's batching parameters, else --batch-size.
    assert [r["worst_batch_size"] for r in results] == [2, 4]
    assert "| agnews_transformer | 1 | classifier | AG News test |" in capsys.readouterr().out
    assert len(json.loads(output.read_text())["results"]) == 2


@pytest.mark.large  # A junk load (short here).
def test_junk_load_reports_memory_per_interval_and_no_failures(saved_models, tmp_path, capsys):
    output = tmp_path / "junk.json"
    code = bench_junk_load.main([str(saved_models / "conll_ner"), "--requests", "21", "--report-every", "7",
                                 "--malloc-trim", "--output", str(output)])
    report = json.loads(output.read_text())
    assert code == 0 and report["complete"] is True and report["failed"] == 0 and report["problems"] == []
    assert [row["requests"] for row in report["rows"]] == [7, 14, 21]
    assert report["by_kind"] == {kind: 3 for kind in bench_junk_load.KINDS}
    assert report["summary"]["rss_first_mb"] > 0
    assert "21 requests, 0 failed, 0 problems" in capsys.readouterr().out


@pytest.mark.large  # A junk load (short here).
def test_junk_load_stopped_by_sigterm_reports_the_texts_answered_so_far(saved_models, tmp_path, capsys,
                                                                        monkeypatch):
    junk = bench_junk_load.junk_texts

    def junk_then_sigterm(count, seed=0):  # As `timeout` or `kill` would, while the eleventh text is prepared.
        for index, item in enumerate(junk(count, seed)):
            if index == 10:
                os.kill(os.getpid(), signal.SIGTERM)
            yield item

    monkeypatch.setattr(bench_junk_load, "junk_texts", junk_then_sigterm)
    handler = signal.getsignal(signal.SIGTERM)
    output = tmp_path / "junk.json"
    code = bench_junk_load.main([str(saved_models / "conll_ner"), "--requests", "21", "--report-every", "4",
                                 "--output", str(output)])
    report = json.loads(output.read_text())
    assert code == 130 and report["complete"] is False and report["failed"] == 0
    assert [row["requests"] for row in report["rows"]] == [4, 8, 10]
    assert sum(report["by_kind"].values()) == 10
    out = capsys.readouterr().out
    assert "interrupted after 10 texts" in out and "(interrupted: 10 of 21 texts)" in out
    assert signal.getsignal(signal.SIGTERM) is handler
