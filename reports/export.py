"""The aggregated table as CSV and JSON, for analysis in pandas and elsewhere."""
from __future__ import annotations

import pandas as pd


def csv_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def json_text(frame: pd.DataFrame) -> str:
    return frame.to_json(orient="records", indent=1, double_precision=6) + "\n"
