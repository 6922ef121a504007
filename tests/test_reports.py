"""Reports from golden records (tests/data/golden_run): two ok trials, one skipped, one failed."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from reports.aggregate import summarize
from reports.load import load_manifest, load_records, load_runs, run_frame
from reports.summary import machine_line, render_markdown, write_reports
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
    # three blocks are too few for an interval (two once gave one of zero width)
    assert row["throughput_interval"] == "" and pd.isna(row["throughput_low"]) and pd.isna(row["throughput_high"])
    # 3,209,216 training FLOPs per sample x 12,800 samples/s, against a 100 GFLOP/s peak
    assert row["gflops"] == pytest.approx(41.078, rel=1e-4) and row["peak_fraction"] == pytest.approx(0.41078, rel=1e-4)
    assert frame.loc["tensorflow"]["throughput"] == pytest.approx(6400)


def test_status_and_reasons_are_kept(frame):
    assert frame.loc["keras:jax"]["status"] == "skipped"
    assert frame.loc["keras:torch"]["status"] == "error"
    assert "deliberate failure" in frame.loc["keras:torch"]["reason"]
    throughput = frame.loc["keras:torch"]["throughput"]
    assert throughput is None or throughput != throughput  # None or NaN


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
    assert header.count("|") == 14
    assert "keras:jax / mnist_mlp (mnist): skipped: jax not installed" in problems(frame, markdown=True)


def test_summary_has_tables_problems_and_settings(tmp_path):
    run = _copy_run(tmp_path)
    path = write_reports([run], run, ("md",))["md"]
    text = path.read_text()
    assert text == render_markdown(run_frame(GOLDEN), load_records(GOLDEN), [load_manifest(GOLDEN)])
    assert "## Skipped or failed" in text and "keras:torch / mnist_mlp (mnist): error: RuntimeError" in text
    assert "Test CPU, 2 cores" in text and "threads 2" in text and "git abc123" in text


def test_machine_speed_line_states_the_drift_over_the_run():
    records = load_records(GOLDEN)
    assert machine_line(records) == []  # records from before the probe
    for record, speed in zip(records, (100.0, 90.0, 95.0, 104.0)):
        record.machine_gflops = speed
    (line,) = machine_line(records)
    assert "median 98 GFLOP/s, from 90 to 104 (-8% to +7%)" in line
    records[1].machine_gflops = 40.0
    line, busy = machine_line(records)
    assert busy.startswith("the machine was busy (under 50% of its median speed) before keras:torch mnist_mlp "
                           "repeat 0 (40 GFLOP/s)")


# ---- report files: formats, pooling, side by side, escaping -----------------------------------

def _copy_run(tmp_path: Path, name: str = "run") -> Path:
    run = tmp_path / name
    shutil.copytree(GOLDEN, run)
    return run


def test_report_writes_every_format_with_the_failures(tmp_path):
    import pandas as pd

    written = write_reports([GOLDEN], tmp_path)
    assert sorted(written) == ["csv", "html", "json", "md"]
    markdown = written["md"].read_text()
    assert "| framework | version" in markdown.replace("  ", " ").replace("  ", " ")
    assert "keras:torch / mnist_mlp (mnist): error: RuntimeError: deliberate failure" in markdown
    table = pd.read_csv(written["csv"])
    assert list(table["label"]) == ["pytorch", "tensorflow", "keras:jax", "keras:torch"]
    assert table.loc[0, "throughput"] == pytest.approx(12800) and table.loc[3, "status"] == "error"
    rows = json.loads(written["json"].read_text())
    assert rows[0]["label"] == "pytorch" and rows[0]["gflops"] == pytest.approx(41.078, rel=1e-4)
    page = written["html"].read_text()
    assert page.count("<svg") >= 4  # throughput, accuracy, loss, memory, efficiency
    assert "deliberate failure &lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold</b>" not in page
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page
    assert "Fastest: <b>pytorch</b> at 12,800 samples/s, 2.00× the next, <b>tensorflow</b>" in page
    assert "Target accuracy reached by 1 of 2 (tensorflow: not reached in 1 s (best 0.9600))" in page


def test_runs_are_pooled_or_side_by_side(tmp_path):
    first, second = _copy_run(tmp_path, "a"), _copy_run(tmp_path, "b")
    manifest = json.loads((second / "manifest.json").read_text())
    manifest["run_id"], manifest["environment"]["git"]["commit"] = "other", "def4567890"
    (second / "manifest.json").write_text(json.dumps(manifest))
    pooled, _, _ = load_runs([first, second])
    assert pooled.set_index("label").loc["pytorch", "repeats"] == 2
    side, _, _ = load_runs([first, second], side_by_side=True)
    assert {"pytorch @ abc123", "pytorch @ def45678"} <= set(side["label"])
    markdown = write_reports([first, second], tmp_path / "out", ("md",), side_by_side=True)["md"].read_text()
    assert "| pytorch @ def45678" in markdown and "\\[def45678\\] run other" in markdown


def test_report_cli_formats_and_bad_format(tmp_path):
    from tests.test_cli import run_cli

    result = run_cli("report", str(GOLDEN), "--format", "md,csv", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.csv", "summary.md"]
    bad = run_cli("report", str(GOLDEN), "--format", "md,pdf", "--out", str(tmp_path))
    assert bad.returncode == 2 and "unknown format 'pdf'; choose one or more of: md, html, csv, json" in bad.stderr


# ---- figures that mean what they say ---------------------------------------------------------

def _records(label: str, rates: list[list[float]], reached: list[float | None] | None = None) -> list:
    """One ok record per process of `label`, with blocks of 10 steps at the given samples/s."""
    from harness.record import SCHEMA_VERSION, Block, TrialRecord

    out = []
    for repeat, process in enumerate(rates):
        seconds = reached[repeat] if reached else None
        out.append(TrialRecord(
            schema_version=SCHEMA_VERSION, trial_id=f"w.d.{label}.default.r{repeat}", run_id="r", framework=label,
            variant="default", label=label, workload="mnist_mlp", dataset="mnist", profile="quick", device="cpu",
            threads=2, seed=0, repeat=repeat, status="ok", batch_size=128, target_accuracy=0.97,
            final_test_accuracy=0.98, first_block=Block(0, 0, 1, 0.5),
            blocks=[Block(0, 1 + 10 * k, 10, 1280 / r) for k, r in enumerate(process)],
            time_to_target_s=seconds, steps_to_target=None if seconds is None else int(seconds * 100),
            rss_after_import_bytes=100 * 2**20, rss_after_build_bytes=300 * 2**20, peak_rss_bytes=420 * 2**20))
    return out


def test_one_process_is_a_within_run_spread_in_every_format_and_no_verdict(tmp_path):
    """With one process per trial the interval is the spread inside the run, named so everywhere,
    and the verdict never calls a difference resolved (--repeats would)."""
    from harness.rundir import RunDir
    from tests.conftest import write_manifest

    run = tmp_path / "one"
    for record in _records("fast", [[20_000.0] * 8]) + _records("slow", [[10_000.0 + 10 * k for k in range(8)]]):
        RunDir(run).write_record(record)
    write_manifest(run)
    written = write_reports([run], run)
    markdown, page = written["md"].read_text(), written["html"].read_text()
    header = next(line for line in markdown.splitlines() if line.startswith("| framework"))
    assert "within-run spread" in header and "95% CI" not in header
    assert "within-run spread" in page and "95% CI" not in page.split("<h2 id=settings>")[0]
    assert "95% confidence intervals apart" not in page and "--repeats 3 would resolve it" in page
    assert set(pd.read_csv(written["csv"])["throughput_interval"]) == {"within-run spread"}
    assert {row["throughput_interval"] for row in json.loads(written["json"].read_text())} == {"within-run spread"}


def test_repeats_give_a_95_percent_ci():
    frame = summarize(_records("a", [[10_000.0 + k for k in range(8)]] * 3)).set_index("label")
    assert frame.loc["a", "throughput_interval"] == "95% CI" and frame.loc["a", "processes"] == 3
    assert re.search(r"\|\s*95% CI\s*\|", workload_tables(frame.reset_index(), markdown=True))


def test_time_to_target_counts_every_repeat_and_takes_one_repeats_figures():
    rates = [[10_000.0] * 6] * 3
    frame = summarize(_records("a", rates, reached=[4.0, None, 2.0]) + _records("b", rates, reached=[None, 3.0, None])
                      ).set_index("label")
    # a: reached by 2 of 3; the median of (2, 4, never) is the repeat that took 4 s, with its own steps
    assert frame.loc["a", "target_reached"] == 2 and frame.loc["a", "time_to_target_s"] == 4.0
    assert frame.loc["a", "steps_to_target"] == 400
    # b: reached by 1 of 3: the median repeat never reached it
    assert frame.loc["b", "target_reached"] == 1 and pd.isna(frame.loc["b", "time_to_target_s"])
    text = workload_tables(frame.reset_index(), markdown=False)
    assert "4.00 s (400 steps, 2 of 3)" in text and "not reached in 1 s (1 of 3)" in text


def test_sustained_rate_shows_stalls_the_median_hides():
    frame = summarize(_records("stalls", [[10_000.0] * 9 + [500.0]])).set_index("label")
    assert frame.loc["stalls", "throughput"] == pytest.approx(10_000)
    # 100 blocks' samples over their seconds: 9 x 0.128 s + 2.56 s
    assert frame.loc["stalls", "throughput_sustained"] == pytest.approx(12_800 / (9 * 0.128 + 2.56))
    assert "3,448" in workload_tables(frame.reset_index(), markdown=False)


def test_memory_column_is_what_training_added():
    frame = summarize(_records("a", [[10_000.0] * 6])).set_index("label")
    assert frame.loc["a", "training_memory_bytes"] == 120 * 2**20
    assert "120 MiB (420 MiB)" in workload_tables(frame.reset_index(), markdown=False)


def _on(records: list, node_id: str, fingerprint: str, host: str, start: str, end: str) -> list:
    from harness.record import NodeIdentity

    for r in records:
        r.executor, r.started_at, r.finished_at = "ray", start, end
        r.node = NodeIdentity(node_id=node_id, alias=f"host-{node_id}", host_id=host, fingerprint=fingerprint,
                              cpu_model="Test CPU", cpu_cores=2)
    return records


def test_machines_of_another_kind_get_rows_of_their_own_and_overlaps_on_one_host_a_warning():
    from reports.summary import overlap_line

    a = _on(_records("pytorch", [[1000.0] * 12]), "n1", "aaaaaaaa", "h1", "2026-11-28T10:00:00", "2026-11-28T10:00:10")
    b = _on(_records("pytorch", [[2000.0] * 12]), "n2", "bbbbbbbb", "h2", "2026-11-28T10:00:00", "2026-11-28T10:00:10")
    frame = summarize(a + b).set_index("label")
    assert frame.loc["pytorch [aaaaaa]", "throughput"] == 1000 and frame.loc["pytorch [bbbbbb]", "throughput"] == 2000
    same_kind = _on(_records("pytorch", [[1000.0] * 12]), "n2", "aaaaaaaa", "h2", "2026-11-28T10:00:00",
                    "2026-11-28T10:00:10")
    assert list(summarize(a + same_kind)["label"]) == ["pytorch"]  # one kind of machine: pooled as repeats
    assert overlap_line(a + b) == []  # two hosts at once: no sharing
    shared = _on(_records("jax", [[1000.0] * 12]), "n2", "aaaaaaaa", "h1", "2026-11-28T10:00:05",
                 "2026-11-28T10:00:20")
    (line,) = overlap_line(a + shared)
    assert "2 trials ran at the same time as another on the same physical host" in line
    after = _on(_records("jax", [[1000.0] * 12]), "n2", "aaaaaaaa", "h1", "2026-11-28T10:00:10",
                "2026-11-28T10:00:20")
    assert overlap_line(a + after) == []  # one after the other


def test_efficiency_is_against_the_peak_of_the_node_a_trial_ran_on(tmp_path):
    import dataclasses

    from harness.record import NodeIdentity
    from harness.rundir import MatmulPeak, NodeEnvironment, RunDir
    from reports.load import peak_for
    from tests.conftest import write_manifest

    manifest = write_manifest(tmp_path / "run", peak_gflops=100.0)
    fast = NodeIdentity(node_id="n1", alias="host-1", host_id="h1", fingerprint="f", cpu_model="X", cpu_cores=8)
    env = dataclasses.replace(manifest.environment, nodes={"n1": NodeEnvironment(identity=fast,
                                                                                 matmul_peak=MatmulPeak(400.0, threads=2))})
    RunDir(tmp_path / "run").write_manifest(dataclasses.replace(manifest, environment=env))
    manifest = load_manifest(tmp_path / "run")  # read back: the typed manifest holds its nodes
    (on_node,), (local,) = _records("pytorch", [[1000.0] * 12]), _records("jax", [[1000.0] * 12])
    on_node.node = fast
    assert peak_for(manifest, on_node) == 400.0
    assert peak_for(manifest, local) == 100.0
