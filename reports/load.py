"""Read a run directory: its manifest and its trial records."""
from __future__ import annotations

import json
from pathlib import Path

from harness.record import TrialRecord, read_record


def load_manifest(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def load_records(run_dir: str | Path) -> list[TrialRecord]:
    records_dir = Path(run_dir) / "records"
    return [read_record(p) for p in sorted(records_dir.glob("*.json"))]
