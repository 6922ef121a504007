"""Read a run directory: its manifest and its trial records."""
from __future__ import annotations

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


def run_frame(run_dir: str | Path) -> pd.DataFrame:
    """The summary table of a run, with efficiency against the peak its manifest measured."""
    peak = load_manifest(run_dir).get("environment", {}).get("matmul_peak", {}).get("gflops")
    return summarize(load_records(run_dir), peak_gflops=peak)
