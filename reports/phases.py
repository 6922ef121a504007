"""Where a trial's time goes: each record's phases (harness.record.PHASES) as a table, a stacked
bar figure and a one-line total, so that a user sees what the harness and the frameworks cost
beyond the timed steps."""
from __future__ import annotations

import numpy as np
import pandas as pd
from tabulate import tabulate

from harness.record import PHASES, TrialRecord
from reports.aggregate import record_case

TOTAL = "total"
PARENT_PHASES = {"probe", "end"}  # what the parent measures; the rest come from the child's record


def frame(records: list[TrialRecord]) -> pd.DataFrame:
    """Seconds by phase, one row per case, dataset and framework (the median of its repeats), in
    the order the trials ran; phases no record has are left out, and so are records without the
    child's own phases (a child that died before writing its record has only the parent's probe)."""
    timed = [r for r in records if set(r.phases) - PARENT_PHASES]
    rows: dict[tuple, list[TrialRecord]] = {}
    for r in timed:
        rows.setdefault((record_case(r), r.dataset, r.label), []).append(r)
    table = []
    for (case, dataset, label), group in rows.items():
        row = {"case": case, "dataset": dataset, "label": label, "status": group[0].status}
        for phase in PHASES:
            values = [r.phases[phase] for r in group if phase in r.phases]
            row[phase] = float(np.median(values)) if values else np.nan
        row[TOTAL] = float(np.median([sum(r.phases.values()) for r in group]))
        table.append(row)
    result = pd.DataFrame(table, columns=["case", "dataset", "label", "status", TOTAL, *PHASES])
    return result.dropna(axis=1, how="all")


def phase_columns(table: pd.DataFrame) -> list[str]:
    return [p for p in PHASES if p in table.columns]


def cells(table: pd.DataFrame) -> list[list[str]]:
    def cell(value: float) -> str:
        return "–" if pd.isna(value) else f"{value:,.1f}" if value < 100 else f"{value:,.0f}"

    return [[row["case"], row["label"], *(cell(row[c]) for c in [TOTAL, *phase_columns(table)])]
            for _, row in table.iterrows()]


def section(records: list[TrialRecord], markdown: bool) -> str:
    """The breakdown as one table (seconds), with the run's total by phase under it; '' without phases."""
    table = frame(records)
    if table.empty:
        return ""
    headers = ["case", "framework", TOTAL, *phase_columns(table)]
    text = tabulate(cells(table), headers=headers, tablefmt="github" if markdown else "simple",
                    disable_numparse=True, colalign=("left", "left") + ("right",) * (len(headers) - 2))
    title = "Where each trial's time went (seconds, the median of its repeats)"
    return (f"## {title}\n\n" if markdown else f"{title}\n") + text + "\n\n" + total_line(records)


def total_line(records: list[TrialRecord]) -> str:
    """The run's trials' time summed by phase, largest first: what a whole run spent where."""
    timed = [r for r in records if set(r.phases) - PARENT_PHASES]
    sums = {p: sum(r.phases.get(p, 0.0) for r in timed) for p in PHASES}
    whole = sum(sums.values())
    if not whole:
        return ""
    parts = ", ".join(f"{p} {s:,.0f} s ({s / whole:.0%})" for p, s in sorted(sums.items(), key=lambda kv: -kv[1])
                      if s >= 0.5)
    return f"{len(timed)} trials took {whole:,.0f} s: {parts}"
