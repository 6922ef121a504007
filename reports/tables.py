"""Comparison tables for the terminal and for summary.md (GitHub-flavoured markdown)."""
from __future__ import annotations

import math
import re

import pandas as pd
from tabulate import tabulate

from harness.files import BadFile
from reports.aggregate import CI_95, WITHIN_RUN, format_seconds

INTERVAL = "interval"  # stands for the interval column's header, which says what the interval is
MEMORY_HEADER = "train mem (peak RSS)"
HEADERS = ["framework", "version", "status", "samples/s", INTERVAL, "sustained", "vs fastest", "steps/s",
           "first block", "test acc", "to target", MEMORY_HEADER, "GFLOP/s (of peak)"]
LATENCY_HEADER = "step p50 / p90 / p99"
# Where a trial ran on a GPU: its processes' GPU memory as the driver counts it (NVML, sampled), and
# in parentheses its framework's allocator peak (what PyTorch, TensorFlow and JAX report; MXNet none).
GPU_MEMORY_HEADER = "GPU mem (allocator)"
# Inference tables (scenario infer): calls of the inference path instead of training steps.
INFER_HEADERS = ["framework", "version", "status", "samples/s", INTERVAL, "sustained", "vs fastest", "calls/s",
                 "first call", "call p50 / p90 / p99", "peak RSS", "GFLOP/s (of peak)"]
# The frame column each header sorts by (HTML report).
SORT_COLUMNS = dict(zip(HEADERS + [LATENCY_HEADER], [
    "label", "version", "status", "throughput", "throughput_low", "throughput_sustained", "throughput", "steps_per_s",
    "first_block_s", "test_accuracy", "time_to_target_s", "training_memory_bytes", "gflops", "latency_p50_s"]))
SORT_COLUMNS.update({GPU_MEMORY_HEADER: "device_process_peak_bytes", "calls/s": "steps_per_s", "first call": "first_block_s",
                     "call p50 / p90 / p99": "latency_p50_s",
                     "peak RSS": "peak_rss_bytes"})


REASON_TAIL_LINES = 8  # of a multi-line reason (a crash's last output), shown under its first line
_MD_SPECIAL = re.compile(r"([\\`*\[\]|])")  # code, emphasis, links and images, table cells


def md_text(value: object) -> str:
    """Text from a record or a file, safe inside GitHub markdown (a table cell or a list item):
    markdown punctuation escaped, HTML made inert as report.html does, one line."""
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(_MD_SPECIAL.sub(r"\\\1", text).split())


def md_code_block(text: str, indent: str = "") -> str:
    """`text` verbatim in a fenced block whose fence no run of backticks inside it can close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return "\n".join(indent + line for line in [fence, *text.splitlines(), fence])


def reason_lines(reason: str) -> tuple[str, list[str]]:
    """A reason's first line, and its last lines when it has more (the child's last output)."""
    lines = [line for line in (reason or "no reason recorded").strip().splitlines() if line.strip()]
    return lines[0], lines[1:][-REASON_TAIL_LINES:]


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _num(value: float | None, digits: int = 0) -> str:
    if _missing(value):
        return "–"
    return f"{value:,.{digits}f}"


def _seconds(value: float | None) -> str:
    return "–" if _missing(value) else format_seconds(value)


def _mib(value: float | None) -> str:
    return "–" if _missing(value) else f"{value / 2**20:,.0f} MiB"


def accuracy_cell(row: pd.Series) -> str:
    """Final test accuracy, with ✓ where it reached the target and ✗ (<target) where not."""
    acc, target = row["test_accuracy"], row["target_accuracy"]
    if _missing(acc):
        return "–"
    mark = "" if _missing(target) else (" ✓" if acc >= target else f" ✗ (<{target:g})")
    return f"{acc:.4f}{mark}"


def _to_target(row: pd.Series) -> str:
    """The frame's `to_target` text (reports.aggregate.to_target_text), "–" where there is none."""
    return "–" if _missing(row["to_target"]) else str(row["to_target"])


def interval_header(frame: pd.DataFrame) -> str:
    """What the interval column of these rows is: a 95% CI only when every row has repeats."""
    kinds = set(frame["throughput_interval"].dropna()) - {""}
    if kinds == {CI_95}:
        return CI_95
    if kinds == {WITHIN_RUN} or not kinds:
        return WITHIN_RUN
    return f"{CI_95} or within-run (w)"


def _interval(row: pd.Series, mixed: bool) -> str:
    if _missing(row["throughput_low"]):
        return "–"
    cell = f"{_num(row['throughput_low'])}–{_num(row['throughput_high'])}"
    return cell + " (w)" if mixed and row["throughput_interval"] == WITHIN_RUN else cell


def _efficiency(row: pd.Series) -> str:
    if _missing(row["gflops"]):
        return "–"
    fraction = row["peak_fraction"]
    share = "" if _missing(fraction) else f" ({fraction:.0%})" if fraction >= 0.01 else f" ({fraction:.2g})"
    rate = f"{row['gflops']:,.1f}" if row["gflops"] >= 1 else f"{row['gflops']:.2g}"
    return f"{rate}{share}"


def _inference(frame: pd.DataFrame) -> bool:
    return bool(frame["scenario"].eq("infer").all()) if len(frame) else False


def _on_gpu(frame: pd.DataFrame) -> bool:
    return bool(frame[["device_process_peak_bytes", "device_peak_bytes"]].notna().any(axis=None))


def _gpu_memory(row: pd.Series) -> str:
    return f"{_mib(row['device_process_peak_bytes'])} ({_mib(row['device_peak_bytes'])})"


def table_rows(frame: pd.DataFrame, with_latency: bool, markdown: bool = False) -> list[list[str]]:
    """The display cells of one case's table, in `table_keys` order, one row per frame row (text
    from records escaped for markdown when `markdown`)."""
    text = md_text if markdown else str
    fastest = frame["throughput"].max()
    mixed = interval_header(frame) not in (CI_95, WITHIN_RUN)
    infer, gpu = _inference(frame), _on_gpu(frame)
    rows = []
    for _, row in frame.iterrows():
        relative = "–" if _missing(row["throughput"]) else f"{row['throughput'] / fastest:.2f}×"
        memory = "–" if _missing(row["training_memory_bytes"]) else \
            f"{_mib(row['training_memory_bytes'])} ({_mib(row['peak_rss_bytes'])})"
        latency = " / ".join(_seconds(row[f"latency_p{p}_s"]) for p in (50, 90, 99))
        head = [text(row["label"]), "–" if _missing(row["version"]) else text(row["version"]), text(row["status"]),
                _num(row["throughput"]), _interval(row, mixed), _num(row["throughput_sustained"]), relative,
                _num(row["steps_per_s"], 1), _seconds(row["first_block_s"])]
        device = [_gpu_memory(row)] if gpu else []
        if infer:
            rows.append(head + [latency, _mib(row["peak_rss_bytes"])] + device + [_efficiency(row)])
            continue
        cells = head + [accuracy_cell(row), _to_target(row), memory] + device + [_efficiency(row)]
        if with_latency:
            cells.append(latency)
        rows.append(cells)
    return rows


def table_keys(group: pd.DataFrame, with_latency: bool) -> list[str]:
    """The columns of one case's table, as in HEADERS (the interval unnamed), with the GPU memory
    column after the memory one where a trial ran on a GPU."""
    keys = list(INFER_HEADERS) if _inference(group) else HEADERS + ([LATENCY_HEADER] if with_latency else [])
    if _on_gpu(group):
        keys.insert(keys.index("GFLOP/s (of peak)"), GPU_MEMORY_HEADER)
    return keys


def table_headers(group: pd.DataFrame, with_latency: bool) -> list[str]:
    return [interval_header(group) if h == INTERVAL else h for h in table_keys(group, with_latency)]


def workload_tables(frame: pd.DataFrame, markdown: bool) -> str:
    """One titled table per case (workload, scenario, shape) and dataset, fastest first."""
    parts = []
    for (case, dataset), group in frame.groupby(["case", "dataset"], sort=False):
        with_latency = group["latency_p50_s"].notna().any()
        headers = table_headers(group, with_latency)
        title = f"### {md_text(case)} on {md_text(dataset)}" if markdown else f"{case} on {dataset}"
        table = tabulate(table_rows(group, with_latency, markdown), headers=headers, tablefmt="github" if markdown else "simple",
                         disable_numparse=True, colalign=("left", "left", "left") + ("right",) * (len(headers) - 3))
        parts.append(f"{title}\n\n{table}" if markdown else f"{title}\n{table}")
    return "\n\n".join(parts)


def problems(frame: pd.DataFrame, markdown: bool, unreadable: list[BadFile] = ()) -> str:
    """Trials that did not finish ok, with their reasons (the first line, and the last lines of a
    long one), then the files that could not be read."""
    bad = frame[frame["status"] != "ok"]
    text = md_text if markdown else str
    lines = []
    for _, row in bad.iterrows():
        first, tail = reason_lines(row["reason"])
        item = f"{text(row['label'])} / {text(row['case'])} ({text(row['dataset'])}): {text(row['status'])}: {text(first)}"
        lines.append(("- " if markdown else "  ") + item)
        if tail:
            lines.append(md_code_block("\n".join(tail), "  ") if markdown else "\n".join("      " + t for t in tail))
    for exc in unreadable:
        lines.append(("- " if markdown else "  ") + f"unreadable, left out: {text(exc)}")
    return "\n".join(lines)
