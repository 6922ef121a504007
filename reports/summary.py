"""The reports of one or more runs: summary.md (GitHub markdown), report.html, summary.csv and
summary.json, from the same frame. Reads records and manifests, never the adapters."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.record import TrialRecord
from reports import export, html
from reports.aggregate import BUSY_FRACTION, busy_machine
from reports.load import load_runs, run_labels
from reports.tables import problems, workload_tables

FORMATS = ("md", "html", "csv", "json")
FILENAMES = {"md": "summary.md", "html": "report.html", "csv": "summary.csv", "json": "summary.json"}


def settings_lines(manifest: dict) -> list[str]:
    """The environment and fairness settings of a run, as plain sentences."""
    env = manifest.get("environment", {})
    options = manifest.get("options", {})
    git = env.get("git", {})
    peak = env.get("matmul_peak", {})
    frameworks = ", ".join(f"{k} {v}" for k, v in env.get("frameworks", {}).items() if v) or "none"
    return [
        f"run {manifest.get('run_id', '?')}: {manifest.get('command', '')}",
        f"machine: {env.get('cpu_model', '?')}, {env.get('cpu_cores', '?')} cores, "
        f"GPUs: {', '.join(env.get('gpus') or []) or 'none'}; {env.get('os', '?')}",
        f"profile {options.get('profile')}, device {options.get('device')}, threads {options.get('threads')} "
        f"(intra-op; inter-op 1), seed {options.get('seed')}, repeats {options.get('repeats')}, float32",
        "same initial weights (NumPy, from the seed) and the same batch order in every framework; "
        "batches staged on the device per epoch, untimed; throughput is the median over timed blocks "
        "of steps after the first step (which is reported apart as 'first block')",
        "95% CI: block bootstrap of the median (neighbouring blocks drawn together" + (
            "; processes drawn first), widened to the Student-t interval of the per-process medians, their "
            "spread pooled over the run's trials, so it includes the spread between repeats"
            if (options.get("repeats") or 1) > 1
            else "); one process per trial, so it shows within-run noise only: whole processes on a shared "
                 "machine differ by more, use --repeats to include that"),
        f"efficiency: analytic training FLOPs per sample x median throughput, against the machine's "
        f"measured matmul rate of {peak.get('gflops', float('nan')):,.0f} GFLOP/s ({peak.get('method', 'not measured')})",
        f"Python {env.get('python', '?')}, NumPy {env.get('numpy', '?')}; {frameworks}",
        *[f"isolated environment {name}: " + ", ".join(f"{k} {v}" for k, v in state.get("versions", {}).items())
          for name, state in env.get("isolated_environments", {}).items()],
        f"git {git.get('commit') or 'unknown'}{' (uncommitted changes)' if git.get('dirty') else ''}",
    ]


def machine_line(records: list[TrialRecord]) -> list[str]:
    """How the machine's own speed varied from trial to trial (harness.peak.machine_speed), and
    which trials started while something else held the machine."""
    probed = [r for r in records if r.machine_gflops]
    if not probed:
        return []
    speeds = np.array([r.machine_gflops for r in probed])
    median, low, high = np.median(speeds), speeds.min(), speeds.max()
    lines = [f"machine speed before each trial (NumPy 512x512 float32 matmul on the trial's threads, median "
             f"of 0.3 s): median {median:,.0f} GFLOP/s, from {low:,.0f} to {high:,.0f} "
             f"({low / median - 1:+.0%} to {high / median - 1:+.0%})"]
    busy = busy_machine(probed)
    if busy:
        lines.append(f"the machine was busy (under {BUSY_FRACTION:.0%} of its median speed) before " + ", ".join(
            f"{r.label} {r.workload} repeat {r.repeat} ({r.machine_gflops:,.0f} GFLOP/s)" for r in busy)
            + ": their figures may be disturbed (kept out of the pooled noise of the 95% CI); to measure them "
              "again, delete their records and `bench.py run --resume` the run")
    return lines


def _all_settings(manifests: list[dict], records: list[TrialRecord]) -> list[str]:
    if len(manifests) == 1:
        return settings_lines(manifests[0]) + machine_line(records)
    return [f"[{label}] {line}" for label, m in zip(run_labels(manifests), manifests) for line in settings_lines(m)]


def render_markdown(frame: pd.DataFrame, records: list[TrialRecord], manifests: list[dict]) -> str:
    parts = ["# Benchmark summary", workload_tables(frame, markdown=True)]
    trouble = problems(frame, markdown=True)
    if trouble:
        parts += ["## Skipped or failed", trouble + "\n\nFull output of each trial: `logs/<trial>.log`."]
    parts += ["## Environment and fairness settings", "\n".join(f"- {line}" for line in _all_settings(manifests, records))]
    return "\n\n".join(parts) + "\n"


def render_html(frame: pd.DataFrame, records: list[TrialRecord], manifests: list[dict]) -> str:
    ids = ", ".join(m.get("run_id", "?") for m in manifests)
    return html.render(frame, records, _all_settings(manifests, records), "Framework benchmark report",
                       f"run{'s' if len(manifests) > 1 else ''} {ids}")


def write_reports(run_dirs: list[Path], out_dir: Path, formats: tuple[str, ...] = FORMATS,
                  side_by_side: bool = False, loaded: tuple | None = None) -> dict[str, Path]:
    """Write the chosen formats into out_dir; `loaded`: load_runs' result when the caller has it."""
    frame, records, manifests = loaded or load_runs(run_dirs, side_by_side)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for fmt in formats:
        path = out_dir / FILENAMES[fmt]
        if fmt == "md":
            path.write_text(render_markdown(frame, records, manifests))
        elif fmt == "html":
            path.write_text(render_html(frame, records, manifests))
        elif fmt == "csv":
            export.write_csv(frame, path)
        else:
            export.write_json(frame, path)
        written[fmt] = path
    return written
