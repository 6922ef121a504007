"""Statistics from raw records: one row per (workload, dataset, framework:variant), repeats pooled."""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from harness.record import TrialRecord

COLUMNS = ["workload", "dataset", "label", "status", "reason", "repeats", "throughput", "throughput_q1",
           "throughput_q3", "steps_per_s", "first_block_s", "test_accuracy", "target_accuracy",
           "steps_to_target", "time_to_target_s", "peak_rss_bytes", "param_count", "blocks"]


def block_throughputs(record: TrialRecord) -> np.ndarray:
    """Samples per second of each steady-state block."""
    if not record.blocks or not record.batch_size:
        return np.array([])
    return np.array([b.steps * record.batch_size / b.seconds for b in record.blocks if b.seconds > 0])


def _median(values: list[float | int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.median(present)) if present else None


def summarize(records: Iterable[TrialRecord]) -> pd.DataFrame:
    groups: dict[tuple[str, str, str], list[TrialRecord]] = {}
    for r in records:
        groups.setdefault((r.workload, r.dataset, r.label), []).append(r)
    rows = []
    for (workload, dataset, label), group in groups.items():
        ok = [r for r in group if r.status == "ok"]
        failed = [r for r in group if r.status != "ok"]
        pooled = np.concatenate([block_throughputs(r) for r in ok]) if ok else np.array([])
        batch = ok[0].batch_size if ok else None
        status = "ok" if ok and not failed else (failed[0].status if not ok else f"ok {len(ok)}/{len(group)}")
        rows.append({
            "workload": workload, "dataset": dataset, "label": label, "status": status,
            "reason": "; ".join(sorted({r.reason for r in failed if r.reason})),
            "repeats": len(group),
            "throughput": float(np.median(pooled)) if pooled.size else None,
            "throughput_q1": float(np.percentile(pooled, 25)) if pooled.size else None,
            "throughput_q3": float(np.percentile(pooled, 75)) if pooled.size else None,
            "steps_per_s": float(np.median(pooled)) / batch if pooled.size and batch else None,
            "first_block_s": _median([r.first_block.seconds if r.first_block else None for r in ok]),
            "test_accuracy": _median([r.final_test_accuracy for r in ok]),
            "target_accuracy": ok[0].target_accuracy if ok else None,
            "steps_to_target": _median([r.steps_to_target for r in ok]),
            "time_to_target_s": _median([r.time_to_target_s for r in ok]),
            "peak_rss_bytes": _median([r.peak_rss_bytes for r in ok]),
            "param_count": ok[0].param_count if ok else None,
            "blocks": int(pooled.size),
        })
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.sort_values(["workload", "dataset", "throughput"], ascending=[True, True, False],
                             na_position="last", ignore_index=True)
