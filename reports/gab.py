"""Export for github-action-benchmark (benchmark-action/github-action-benchmark): its
"customBiggerIsBetter" and "customSmallerIsBetter" tools each read a JSON list of
{name, unit, value, range, extra}."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.files import WouldOverwrite, write_json
from reports.baseline import METRICS, pooled

FILES = {True: "bigger_is_better.json", False: "smaller_is_better.json"}


def entries(side: dict, higher_is_better: bool) -> list[dict]:
    out = []
    for key, trial in sorted(side["trials"].items()):
        for name, metric in METRICS.items():
            values = pooled(trial["samples"].get(name) or [])
            if metric.higher_is_better != higher_is_better or not values.size:
                continue
            q1, q3 = np.percentile(values, [25, 75])
            out.append({"name": f"{key} {name}", "unit": metric.unit or "fraction",
                        "value": float(np.median(values)),
                        "range": f"IQR {q1:.5g}–{q3:.5g}" if values.size > 1 else "one sample",
                        "extra": f"n={values.size}; {metric.description}; version {trial.get('version')}"})
    return out


def export(side: dict, folder: Path, overwrite: bool = False) -> list[Path]:
    """Write both files; if either exists and not `overwrite`, neither is written (WouldOverwrite)."""
    paths = [folder / filename for filename in FILES.values()]
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise WouldOverwrite(existing[0])
    for bigger, path in zip(FILES, paths):
        write_json(path, entries(side, bigger))
    return paths
