"""The aggregated table as CSV and JSON, for analysis in pandas and elsewhere."""
from __future__ import annotations

from pathlib import Path

import pandas as pd


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def write_json(frame: pd.DataFrame, path: Path) -> Path:
    path.write_text(frame.to_json(orient="records", indent=1, double_precision=6) + "\n")
    return path
