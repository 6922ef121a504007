"""Export for github-action-benchmark (benchmark-action/github-action-benchmark): its
"customBiggerIsBetter" and "customSmallerIsBetter" tools each read a JSON list of
{name, unit, value, range, extra}."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

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


def export(side: dict, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for bigger, filename in FILES.items():
        path = folder / filename
        path.write_text(json.dumps(entries(side, bigger), indent=1) + "\n")
        paths.append(path)
    return paths
