"""Baselines: the raw samples a statistical comparison needs, per trial, with the environment and
the commit, in one compact JSON file (committed under results/baselines/).

A run directory and a baseline file are interchangeable inputs to `compare` and `history`:
`load_side` reads either into the same form.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from harness.record import TrialRecord
from reports.aggregate import block_throughputs, framework_version
from reports.load import load_manifest, load_records

SCHEMA = 2  # 2: throughput samples kept per process, in time order


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    higher_is_better: bool
    description: str


# The metrics a comparison knows. Throughput has a sample per timed block (many per process, kept
# per process in the order they ran: a list of lists); the others one per process, so their spread
# comes from --repeats.
METRICS = {m.name: m for m in (
    Metric("throughput", "samples/s", True, "median of the timed blocks' samples/s"),
    Metric("test_accuracy", "", True, "final test accuracy"),
    Metric("time_to_target_s", "s", False, "timed training seconds until the target accuracy"),
    Metric("first_block_s", "s", False, "the first step (tracing, compilation, allocation)"),
    Metric("peak_rss_bytes", "bytes", False, "peak RSS of the trial process"),
)}


def per_process(samples: list) -> list[list[float]]:
    """A metric's stored samples as one list per process (throughput is stored so already)."""
    return [list(v) if isinstance(v, list) else [v] for v in samples if v != []]


def pooled(samples: list) -> np.ndarray:
    """A metric's stored samples, all processes together."""
    parts = per_process(samples)
    return np.concatenate(parts).astype(float) if parts else np.array([])


def _round(values: list[float]) -> list[float]:
    return [float(f"{v:.5g}") for v in values]


def trial_key(record: TrialRecord) -> str:
    return f"{record.workload}/{record.dataset}/{record.label}"


def trial_samples(records: list[TrialRecord]) -> dict[str, dict]:
    """Per trial key: the samples of every metric (repeats pooled), the target, the statuses."""
    trials: dict[str, dict] = {}
    for r in records:
        entry = trials.setdefault(trial_key(r), {
            "workload": r.workload, "dataset": r.dataset, "label": r.label, "statuses": [],
            "target_accuracy": r.target_accuracy, "version": framework_version(r),
            "samples": {name: [] for name in METRICS}, "machine_gflops": []})
        entry["statuses"].append(r.status)
        if r.machine_gflops:
            entry["machine_gflops"] += _round([r.machine_gflops])
        if r.status != "ok":
            continue
        s = entry["samples"]
        s["throughput"].append(_round(block_throughputs(r).tolist()))
        for name, value in (("test_accuracy", r.final_test_accuracy), ("time_to_target_s", r.time_to_target_s),
                            ("first_block_s", r.first_block.seconds if r.first_block else None),
                            ("peak_rss_bytes", r.peak_rss_bytes)):
            if value is not None:
                s[name] += _round([value])
        entry["target_accuracy"] = r.target_accuracy
    return trials


def machine_speed(side: dict) -> float | None:
    """A run's (or baseline's) machine speed: the median of the probes taken before its trials."""
    probes = [v for trial in side["trials"].values() for v in trial.get("machine_gflops", [])]
    return float(np.median(probes)) if probes else None


def environment_summary(manifest: dict) -> dict:
    """What about a run's environment can change its figures (compared, and warned about)."""
    env, options = manifest.get("environment", {}), manifest.get("options", {})
    return {
        "cpu_model": env.get("cpu_model"), "cpu_cores": env.get("cpu_cores"), "gpus": env.get("gpus"),
        "threads": options.get("threads"), "device": options.get("device"), "profile": options.get("profile"),
        "python": env.get("python"), "numpy": env.get("numpy"), "frameworks": env.get("frameworks", {}),
        "isolated_environments": {k: v.get("versions", {}) for k, v in env.get("isolated_environments", {}).items()},
        "matmul_peak_gflops": env.get("matmul_peak", {}).get("gflops"),
    }


def make_baseline(run_dirs: list[Path], name: str) -> dict:
    manifests = [load_manifest(d) for d in run_dirs]
    records = [r for d in run_dirs for r in load_records(d)]
    first = manifests[0] if manifests else {}
    return {
        "schema": SCHEMA, "name": name, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "runs": [m.get("run_id") for m in manifests],
        "git": first.get("environment", {}).get("git", {}),
        "created_from": first.get("created_at"),
        "environment": environment_summary(first),
        "trials": trial_samples(records),
    }


def save_baseline(run_dirs: list[Path], name: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(make_baseline(run_dirs, name), indent=1) + "\n")
    return path


def load_side(path: Path) -> dict:
    """A baseline file, or a run directory read as one. Raises ValueError with what is wrong."""
    if path.is_dir():
        if not (path / "records").is_dir():
            raise ValueError(f"{path} is not a run directory (no records/ folder) or a baseline file")
        return make_baseline([path], path.name)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise ValueError(f"{path} is not JSON: neither a baseline file nor a run directory") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or "trials" not in data:
        raise ValueError(f"{path} is not a baseline file (schema {SCHEMA})")
    return data
