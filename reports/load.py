"""Read run directories: manifests and trial records, pooled or side by side."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd

from harness.record import TrialRecord, read_record
from reports.aggregate import summarize


def load_manifest(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def load_records(run_dir: str | Path) -> list[TrialRecord]:
    records_dir = Path(run_dir) / "records"
    return [read_record(p) for p in sorted(records_dir.glob("*.json"))]


def _peak(manifest: dict) -> float | None:
    return manifest.get("environment", {}).get("matmul_peak", {}).get("gflops")


def run_frame(run_dir: str | Path) -> pd.DataFrame:
    """The summary table of a run, with efficiency against the peak its manifest measured."""
    return summarize(load_records(run_dir), peak_gflops=_peak(load_manifest(run_dir)))


# What tells two runs apart, in order of preference, for side-by-side labels.
_DISTINGUISHING = (
    ("machine", lambda m: f"{m.get('environment', {}).get('cpu_model', '?')} x{m.get('environment', {}).get('cpu_cores', '?')}"),
    ("commit", lambda m: (m.get("environment", {}).get("git", {}).get("commit") or "?")[:8]),
    ("versions", lambda m: ", ".join(f"{k} {v}" for k, v in m.get("environment", {}).get("frameworks", {}).items() if v)),
    ("threads", lambda m: f"{m.get('options', {}).get('threads')} threads"),
    ("run", lambda m: m.get("run_id", "?")),
)


def run_labels(manifests: list[dict]) -> list[str]:
    """A short label per run from the first property that differs between them (the machine,
    the commit, the versions, the threads), else the run id."""
    for _, describe in _DISTINGUISHING:
        labels = [describe(m) for m in manifests]
        if len(set(labels)) == len(labels):
            return labels
    return [m.get("run_id", f"run {i + 1}") for i, m in enumerate(manifests)]


def load_runs(run_dirs: list[Path], side_by_side: bool = False) -> tuple[pd.DataFrame, list[TrialRecord], list[dict]]:
    """The summary frame, the records and the manifests of one or more runs. Pooled, the
    records of all runs are repeats of one another; side by side, each framework label gets its
    run's label (`pytorch @ Xeon x2`) and each run keeps its own peak."""
    manifests = [load_manifest(d) for d in run_dirs]
    per_run = [load_records(d) for d in run_dirs]
    if not side_by_side or len(run_dirs) == 1:
        records = [r for rs in per_run for r in rs]
        peaks = [p for p in map(_peak, manifests) if p]
        return summarize(records, peak_gflops=sum(peaks) / len(peaks) if peaks else None), records, manifests
    frames, records = [], []
    for manifest, run_records, run_label in zip(manifests, per_run, run_labels(manifests)):
        relabelled = [dataclasses.replace(r, label=f"{r.label} @ {run_label}") for r in run_records]
        records += relabelled
        frames.append(summarize(relabelled, peak_gflops=_peak(manifest)))
    frame = pd.concat(frames, ignore_index=True).sort_values(
        ["workload", "dataset", "throughput"], ascending=[True, True, False], na_position="last", ignore_index=True)
    return frame, records, manifests
