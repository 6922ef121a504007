"""Comparison tables for the terminal and for summary.md (GitHub-flavoured markdown)."""
from __future__ import annotations

import math

import pandas as pd
from tabulate import tabulate

HEADERS = ["framework", "status", "samples/s [IQR]", "steps/s", "first block", "test acc",
           "to target", "peak RSS"]


def _num(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


def _seconds(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def _mib(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value / 2**20:,.0f} MiB"


def _accuracy(row: pd.Series) -> str:
    acc, target = row["test_accuracy"], row["target_accuracy"]
    if acc is None or math.isnan(acc):
        return "–"
    mark = "" if target is None or math.isnan(target) else (" ✓" if acc >= target else f" ✗ (<{target:g})")
    return f"{acc:.4f}{mark}"


def _to_target(row: pd.Series) -> str:
    steps = row["steps_to_target"]
    if steps is None or math.isnan(steps):
        return "not reached" if row["status"].startswith("ok") else "–"
    return f"{_seconds(row['time_to_target_s'])} ({steps:,.0f} steps)"


def _rows(frame: pd.DataFrame) -> list[list[str]]:
    rows = []
    for _, row in frame.iterrows():
        spread = (f" [{_num(row['throughput_q1'])}–{_num(row['throughput_q3'])}]"
                  if row["throughput"] is not None and not math.isnan(row["throughput"]) else "")
        rows.append([row["label"], row["status"], _num(row["throughput"]) + spread, _num(row["steps_per_s"], 1),
                     _seconds(row["first_block_s"]), _accuracy(row), _to_target(row), _mib(row["peak_rss_bytes"])])
    return rows


def workload_tables(frame: pd.DataFrame, markdown: bool) -> str:
    """One titled table per (workload, dataset), fastest first."""
    parts = []
    for (workload, dataset), group in frame.groupby(["workload", "dataset"], sort=True):
        title = f"### {workload} on {dataset}" if markdown else f"{workload} on {dataset}"
        table = tabulate(_rows(group), headers=HEADERS, tablefmt="github" if markdown else "simple",
                         disable_numparse=True, colalign=("left", "left") + ("right",) * 6)
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
