"""Read run directories: manifests and trial records, pooled or side by side.

Every file is validated (`harness.schema`). Strict readers (baselines, compare, export) stop at the
first bad file with a `BadFile` that names it; lenient ones (`report`, `history`) pass a list in
`unreadable`, which collects the bad files while the rest is read.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from harness.files import BadFile
from harness.record import TrialRecord
from harness.rundir import Manifest, RunDir
from harness.schema import load_record
from reports.aggregate import sort_cases, summarize


def load_manifest(run_dir: str | Path, unreadable: list[BadFile] | None = None) -> Manifest | None:
    """The run's manifest; None if it has none (or, when collecting, an unreadable one)."""
    run = RunDir(run_dir)
    if not run.manifest_path.exists():
        return None
    try:
        return run.read_manifest()
    except BadFile as exc:
        if unreadable is None:
            raise
        unreadable.append(exc)
        return None


def load_records(run_dir: str | Path, unreadable: list[BadFile] | None = None) -> list[TrialRecord]:
    records = []
    for path in RunDir(run_dir).record_files():
        try:
            records.append(load_record(path))
        except BadFile as exc:
            if unreadable is None:
                raise
            unreadable.append(exc)
    return records


def peak_for(manifest: Manifest | None, record: TrialRecord) -> float | None:
    """The matmul peak a record's efficiency is measured against: that of the machine it ran on
    (its node's in a Ray run, else its run's), measured on the record's thread count; None when the
    manifest has none for that count."""
    if manifest is None:
        return None
    node = manifest.environment.nodes.get(record.node.node_id) if record.node else None
    peak, cores = (node.matmul_peak, node.identity.cpu_cores) if node else \
        (manifest.environment.matmul_peak, manifest.environment.cpu_cores)
    return peak.gflops if peak and peak.applies_to(record.threads, cores) else None


def run_frame(run_dir: str | Path) -> pd.DataFrame:
    """The summary table of a run, with efficiency against the peak its manifest measured."""
    manifest = load_manifest(run_dir)
    return summarize(load_records(run_dir), peak_for=lambda r: peak_for(manifest, r))


# What tells two runs apart, in order of preference, for side-by-side labels.
_DISTINGUISHING = (
    ("machine", lambda m: f"{m.environment.cpu_model} x{m.environment.cpu_cores or '?'}"),
    ("commit", lambda m: (m.environment.git.commit or "?")[:8]),
    ("versions", lambda m: ", ".join(f"{k} {v}" for k, v in m.environment.frameworks.items() if v)),
    ("threads", lambda m: f"{m.options.threads} threads"),
    ("run", lambda m: m.run_id),
)


def run_labels(manifests: list[Manifest | None]) -> list[str]:
    """A short label per run from the first property that differs between them (the machine,
    the commit, the versions, the threads), else the run id (or its position)."""
    if all(manifests):
        for _, describe in _DISTINGUISHING:
            labels = [describe(m) for m in manifests]
            if len(set(labels)) == len(labels):
                return labels
    return [m.run_id if m else f"run {i + 1}" for i, m in enumerate(manifests)]


def load_runs(run_dirs: list[Path], side_by_side: bool = False, unreadable: list[BadFile] | None = None
              ) -> tuple[pd.DataFrame, list[TrialRecord], list[Manifest | None]]:
    """The summary frame, the records and the manifests of one or more runs. Pooled, the
    records of all runs are repeats of one another; side by side, each framework label gets its
    run's label (`pytorch @ Xeon x2`) and each run keeps its own peak."""
    manifests = [load_manifest(d, unreadable) for d in run_dirs]
    per_run = [load_records(d, unreadable) for d in run_dirs]
    peaks = {id(r): peak_for(m, r) for m, rs in zip(manifests, per_run) for r in rs}
    if not side_by_side or len(run_dirs) == 1:
        records = [r for rs in per_run for r in rs]
        return summarize(records, peak_for=lambda r: peaks[id(r)]), records, manifests
    frames, records = [], []
    for manifest, run_records, run_label in zip(manifests, per_run, run_labels(manifests)):
        relabelled = [dataclasses.replace(r, label=f"{r.label} @ {run_label}") for r in run_records]
        records += relabelled
        frames.append(summarize(relabelled, peak_for=lambda r, m=manifest: peak_for(m, r)))
    return sort_cases(pd.concat(frames, ignore_index=True)), records, manifests
