"""Baselines: the raw samples a statistical comparison needs, per trial, with the environment and
the commit, in one compact JSON file (committed under results/baselines/).

A run directory and a baseline file are interchangeable inputs to `compare` and `history`:
`load_side` reads either into the same form.
"""
from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Union

import numpy as np
from typing_extensions import NotRequired, TypedDict

from harness import schema
from harness.files import BadFile, write_json
from harness.record import STATUSES, TrialRecord
from harness.rundir import Manifest
from reports.names import METRICS  # noqa: F401 - re-exported for compare, history, gab
from reports.aggregate import block_throughputs, framework_version, record_case
from reports.load import load_manifest, load_records

SCHEMA = 2  # 2: throughput samples kept per process, in time order
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class GitInfo(TypedDict):
    commit: NotRequired[Union[str, None]]
    dirty: NotRequired[Union[bool, None]]


class BaselineTrial(TypedDict):
    workload: str
    dataset: str
    label: str
    statuses: list[str]
    target_accuracy: Union[float, None]
    version: Union[str, None]
    samples: dict[str, list[Union[float, list[float]]]]  # throughput: one list per process
    machine_gflops: NotRequired[list[float]]
    reasons: NotRequired[list[str]]  # why trials were not ok (first lines)
    fingerprints: NotRequired[list[str]]  # the kinds of machine its processes ran on (harness.node)


class Baseline(TypedDict):
    """A baseline file as `make_baseline` writes it (validated on reading)."""
    schema: int
    name: str
    created_at: str
    runs: list[Union[str, None]]
    git: GitInfo
    created_from: NotRequired[Union[str, None]]
    environment: dict[str, object]
    trials: dict[str, BaselineTrial]




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
    """'mnist_mlp/mnist/pytorch'; a point of a sweep or an inference trial names its case
    ('mnist_mlp · inference, batch 32/mnist/pytorch'), so that no two shapes are pooled."""
    return f"{record_case(record)}/{record.dataset}/{record.label}"


def trial_samples(records: list[TrialRecord]) -> dict[str, dict]:
    """Per trial key: the samples of every metric (repeats pooled), the target, the statuses."""
    trials: dict[str, dict] = {}
    for r in records:
        entry = trials.setdefault(trial_key(r), {
            "workload": record_case(r), "dataset": r.dataset, "label": r.label, "statuses": [],
            "target_accuracy": r.target_accuracy, "version": framework_version(r),
            "samples": {name: [] for name in METRICS}, "machine_gflops": [], "reasons": [], "fingerprints": []})
        entry["statuses"].append(r.status)
        if r.node and r.node.fingerprint not in entry["fingerprints"]:
            entry["fingerprints"].append(r.node.fingerprint)
        if r.status != "ok" and r.reason:
            entry["reasons"].append(r.reason.splitlines()[0][:300])
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


def environment_summary(manifest: Manifest | None) -> dict:
    """What about a run's environment can change its figures (compared, and warned about)."""
    if manifest is None:
        return {}
    env, options = manifest.environment, manifest.options
    return {
        "cpu_model": env.cpu_model, "cpu_cores": env.cpu_cores, "gpus": env.gpus,
        "threads": options.threads, "device": options.device, "profile": options.profile, "malloc": options.malloc,
        "python": env.python, "numpy": env.numpy, "frameworks": env.frameworks,
        "isolated_environments": {k: v.versions for k, v in env.isolated_environments.items()},
        "matmul_peak_gflops": env.matmul_peak.gflops if env.matmul_peak else None,
    }


def make_baseline(run_dirs: list[Path], name: str) -> dict:
    """Raises BadFile for a manifest or record that cannot be read: a baseline is kept and gated
    on, so it is made from every record of the runs or not at all."""
    manifests = [load_manifest(d) for d in run_dirs]
    records = [r for d in run_dirs for r in load_records(d)]
    first = manifests[0] if manifests else None
    return {
        "schema": SCHEMA, "name": name, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "runs": [m.run_id if m else Path(d).name for m, d in zip(manifests, run_dirs)],
        "git": {"commit": first.environment.git.commit, "dirty": first.environment.git.dirty} if first else {},
        "created_from": first.created_at if first else None,
        "environment": environment_summary(first),
        "trials": trial_samples(records),
    }


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a baseline file inside its folder, or None."""
    if NAME_PATTERN.fullmatch(name) and not name.endswith(".json"):
        return None
    return (f"baseline name {name!r} must be a plain file name (letters, digits, '.', '_' and '-', not starting "
            f"with '.' or '-', without .json): it is written as DIR/NAME.json")


def save_baseline(run_dirs: list[Path], name: str, folder: Path, overwrite: bool = False) -> Path:
    """Write folder/name.json; an existing one is replaced only with overwrite (WouldOverwrite)."""
    problem = name_problem(name)
    if problem:
        raise ValueError(problem)
    return write_json(folder / f"{name}.json", make_baseline(run_dirs, name), overwrite=overwrite)


def _baseline_problem(data: dict) -> str | None:
    if data["schema"] != SCHEMA:
        return f"field schema is {data['schema']}; this version of dlbench reads baselines of schema {SCHEMA}"
    for key, trial in data["trials"].items():
        bad = [s for s in trial["statuses"] if s not in STATUSES]
        if bad:
            return f"field trials.{key}.statuses holds {bad[0]!r}; expected one of: {', '.join(STATUSES)}"
        for metric, values in trial["samples"].items():
            flat = [v for value in values for v in (value if isinstance(value, list) else [value])]
            if not all(math.isfinite(v) and v >= 0 for v in flat):
                return f"field trials.{key}.samples.{metric} holds a value that is not a finite number of 0 or more"
        if not all(math.isfinite(v) and v > 0 for v in trial.get("machine_gflops", [])):
            return f"field trials.{key}.machine_gflops holds a value that is not a finite number above 0"
    return None


def load_side(path: Path) -> dict:
    """A baseline file, or a run directory read as one. Raises BadFile naming the file and what is wrong."""
    if path.is_dir():
        if not (path / "records").is_dir():
            raise BadFile(path, "is not a run directory (no records/ folder) or a baseline file")
        return make_baseline([path], path.name)
    if not path.exists():
        raise BadFile(path, "does not exist: expected a baseline file or a run directory")
    return schema.load(path, Baseline, "a baseline file", _baseline_problem, ("schema", SCHEMA))
