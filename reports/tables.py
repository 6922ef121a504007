"""Comparison tables for the terminal and for summary.md (GitHub-flavoured markdown)."""
from __future__ import annotations

import math

import pandas as pd
from tabulate import tabulate

HEADERS = ["framework", "version", "status", "samples/s", "95% CI", "vs fastest", "steps/s", "first block",
           "test acc", "to target", "peak RSS", "GFLOP/s (of peak)"]
LATENCY_HEADER = "step p50 / p90 / p99"
# The frame column each header sorts by (HTML report).
SORT_COLUMNS = dict(zip(HEADERS + [LATENCY_HEADER], [
    "label", "version", "status", "throughput", "throughput_ci_low", "throughput", "steps_per_s", "first_block_s",
    "test_accuracy", "time_to_target_s", "peak_rss_bytes", "gflops", "latency_p50_s"]))


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _num(value: float | None, digits: int = 0) -> str:
    if _missing(value):
        return "–"
    return f"{value:,.{digits}f}"


def _seconds(value: float | None) -> str:
    if _missing(value):
        return "–"
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def _mib(value: float | None) -> str:
    return "–" if _missing(value) else f"{value / 2**20:,.0f} MiB"


def _accuracy(row: pd.Series) -> str:
    acc, target = row["test_accuracy"], row["target_accuracy"]
    if _missing(acc):
        return "–"
    mark = "" if _missing(target) else (" ✓" if acc >= target else f" ✗ (<{target:g})")
    return f"{acc:.4f}{mark}"


def _to_target(row: pd.Series) -> str:
    steps = row["steps_to_target"]
    if _missing(steps):
        return "not reached" if row["status"].startswith("ok") else "–"
    return f"{_seconds(row['time_to_target_s'])} ({steps:,.0f} steps)"


def _efficiency(row: pd.Series) -> str:
    if _missing(row["gflops"]):
        return "–"
    fraction = row["peak_fraction"]
    share = "" if _missing(fraction) else f" ({fraction:.0%})" if fraction >= 0.01 else f" ({fraction:.2g})"
    rate = f"{row['gflops']:,.1f}" if row["gflops"] >= 1 else f"{row['gflops']:.2g}"
    return f"{rate}{share}"


def table_rows(frame: pd.DataFrame, with_latency: bool) -> list[list[str]]:
    """The display cells of one workload's table, in HEADERS order, one row per frame row."""
    fastest = frame["throughput"].max()
    rows = []
    for _, row in frame.iterrows():
        ci = "–" if _missing(row["throughput_ci_low"]) else \
            f"{_num(row['throughput_ci_low'])}–{_num(row['throughput_ci_high'])}"
        relative = "–" if _missing(row["throughput"]) else f"{row['throughput'] / fastest:.2f}×"
        cells = [row["label"], "–" if _missing(row["version"]) else row["version"], row["status"], _num(row["throughput"]), ci, relative, _num(row["steps_per_s"], 1),
                 _seconds(row["first_block_s"]),
                 _accuracy(row), _to_target(row), _mib(row["peak_rss_bytes"]), _efficiency(row)]
        if with_latency:
            cells.append(" / ".join(_seconds(row[f"latency_p{p}_s"]) for p in (50, 90, 99)))
        rows.append(cells)
    return rows


def workload_tables(frame: pd.DataFrame, markdown: bool) -> str:
    """One titled table per (workload, dataset), fastest first."""
    parts = []
    for (workload, dataset), group in frame.groupby(["workload", "dataset"], sort=True):
        with_latency = group["latency_p50_s"].notna().any()
        headers = HEADERS + ([LATENCY_HEADER] if with_latency else [])
        title = f"### {workload} on {dataset}" if markdown else f"{workload} on {dataset}"
        table = tabulate(table_rows(group, with_latency), headers=headers, tablefmt="github" if markdown else "simple",
                         disable_numparse=True, colalign=("left", "left", "left") + ("right",) * (len(headers) - 3))
        parts.append(f"{title}\n\n{table}" if markdown else f"{title}\n{table}")
    return "\n\n".join(parts)


def problems(frame: pd.DataFrame, markdown: bool) -> str:
    """Trials that did not finish ok, with their reasons (first line each)."""
    bad = frame[frame["status"] != "ok"]
    lines = []
    for _, row in bad.iterrows():
        first_line = (row["reason"] or "no reason recorded").strip().splitlines()[0]
        item = f"{row['label']} / {row['workload']} ({row['dataset']}): {row['status']}: {first_line}"
        lines.append(("- " if markdown else "  ") + item)
    return "\n".join(lines)
