"""Smoke test of the tokenization benchmark script on a tiny AG News CSV (no timing is asserted)."""

import tfnlp  # noqa: F401  (selects Keras 2 before TensorFlow is imported)

import pytest

from pipelines.bench import tokenization as bench_tokenization


@pytest.mark.integration
def test_benchmark_prints_a_table_and_the_two_figures_last(tmp_path, capsys):
    folder = tmp_path / "ag_news"
    folder.mkdir()
    rows = [f'"{1 + i % 4}","Title {i}","Some description, number {i}: caf\u00e9 and more."' for i in range(12)]
    (folder / "test.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    bench_tokenization.main(["--data-dir", str(tmp_path), "--batch-size", "4", "--py-function-examples", "3",
                             "--repeats", "1", "--sequence-length", "16"])
    lines = capsys.readouterr().out.strip().splitlines()
    table = [line for line in lines if line.startswith("| ") and not line.startswith(("| path", "| ---"))]
    assert len(table) == 4
    assert "(3 texts)" in table[0] and "| 12 |" in table[2]
    assert lines[-1].startswith("tfnlp in-graph tokenization: ") and "x the tf.py_function path" in lines[-1]


def test_arguments_are_validated(capsys):
    with pytest.raises(SystemExit) as info:
        bench_tokenization.main(["--data-dir", "x", "--batch-size", "0"])
    assert info.value.code == 2 and capsys.readouterr().err == "error: --batch-size must be >= 1 (see --help)\n"
