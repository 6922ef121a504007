"""Reports from golden records (tests/data/golden_run): two ok trials, one skipped, one failed."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reports.aggregate import summarize
from reports.load import load_records, run_frame
from reports.summary import render, write_summary
from reports.tables import problems, workload_tables

GOLDEN = Path(__file__).parent / "data" / "golden_run"


@pytest.fixture(scope="module")
def frame():
    return run_frame(GOLDEN).set_index("label")


def test_throughput_is_the_median_of_block_rates(frame):
    # pytorch blocks: 10 steps x 128 samples in 0.1, 0.2, 0.1 s -> 12800, 6400, 12800 samples/s
    row = frame.loc["pytorch"]
    assert row["throughput"] == pytest.approx(12800)
    assert row["throughput_q1"] == pytest.approx(9600) and row["throughput_q3"] == pytest.approx(12800)
    assert row["steps_per_s"] == pytest.approx(100)
    assert row["first_block_s"] == pytest.approx(0.5) and row["blocks"] == 3
    low, high = row["throughput_ci_low"], row["throughput_ci_high"]
    assert 6400 <= low <= 12800 <= high <= 12800
    # 3,209,216 training FLOPs per sample x 12,800 samples/s, against a 100 GFLOP/s peak
    assert row["gflops"] == pytest.approx(41.078, rel=1e-4) and row["peak_fraction"] == pytest.approx(0.41078, rel=1e-4)
    assert frame.loc["tensorflow"]["throughput"] == pytest.approx(6400)


def test_status_and_reasons_are_kept(frame):
    assert frame.loc["keras:jax"]["status"] == "skipped"
    assert frame.loc["keras:torch"]["status"] == "error"
    assert "deliberate failure" in frame.loc["keras:torch"]["reason"]
    assert frame.loc["keras:torch"]["throughput"] is None or frame.loc["keras:torch"]["throughput"] != frame.loc["keras:torch"]["throughput"]


def test_rows_are_sorted_fastest_first():
    labels = summarize(load_records(GOLDEN))["label"].tolist()
    assert labels[:2] == ["pytorch", "tensorflow"]


def test_terminal_and_markdown_tables():
    frame = run_frame(GOLDEN)
    text = workload_tables(frame, markdown=False)
    assert text.startswith("mnist_mlp on mnist")
    assert "1.00×" in text and "0.50×" in text and "41.1 (41%)" in text and "100.0" in text  # steps/s
    assert "step p50" not in text  # no latencies recorded for this workload
    assert "0.9750 ✓" in text and "0.9600 ✗ (<0.97)" in text
    assert "6.00 s (936 steps)" in text and "not reached" in text and "300 MiB" in text
    markdown = workload_tables(frame, markdown=True)
    assert markdown.startswith("### mnist_mlp on mnist")
    header = next(line for line in markdown.splitlines() if line.startswith("| framework"))
    assert header.count("|") == 12
    assert "keras:jax / mnist_mlp (mnist): skipped: jax not installed" in problems(frame, markdown=True)


def test_summary_has_tables_problems_and_settings(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(GOLDEN, run)
    path = write_summary(run)
    text = path.read_text()
    assert text == render(GOLDEN)
    assert "## Skipped or failed" in text and "keras:torch / mnist_mlp (mnist): error: RuntimeError" in text
    assert "Test CPU, 2 cores" in text and "threads 2" in text and "git abc123" in text
