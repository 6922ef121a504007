"""A run as MLflow runs: one parent run for the dlbench run (its report, manifest and summary as
artifacts) and one child run per trial (parameters, metrics with their history, the record JSON).

Exporting is idempotent: every MLflow run is tagged with the dlbench run id and trial id, and a
trial already in the experiment is left as it is, so exporting the same run again (or a resumed
run with more trials) adds only what is missing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from harness.record import TrialRecord
from harness.rundir import RunDir
from reports.aggregate import block_throughputs, framework_version, training_memory
from reports.load import load_manifest, load_records
from reports.stats import median_ci

DEFAULT_EXPERIMENT = "dlbench"
RUN_TAG, TRIAL_TAG = "dlbench.run_id", "dlbench.trial_id"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own tag that nests a run under another in its UI
ARTIFACTS = ("summary.md", "report.html", "summary.csv", "summary.json", "manifest.json")
MAX_PARAM_CHARS = 6000  # MLflow's limit on a parameter's value
BATCH = 1000  # metrics per log_batch call (MLflow's limit); parameters: 100
STATUS = {"ok": "FINISHED", "skipped": "FINISHED", "error": "FAILED", "timeout": "FAILED", "interrupted": "KILLED"}


class ExportError(Exception):
    pass


@dataclass
class Exported:
    experiment_id: str
    parent_run_id: str
    added: list[str] = field(default_factory=list)  # trial ids exported now
    kept: list[str] = field(default_factory=list)  # trial ids that were there already


def _key(text: str) -> str:
    """MLflow keys allow letters, digits, _ - . / and spaces."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", text)


def _millis(iso: str) -> int | None:
    try:
        return int(datetime.fromisoformat(iso).timestamp() * 1000)
    except (TypeError, ValueError):
        return None


def trial_params(record: TrialRecord) -> dict[str, str]:
    params = {"framework": record.framework, "variant": record.variant, "label": record.label,
              "workload": record.workload, "dataset": record.dataset, "profile": record.profile,
              "scenario": record.scenario, "precision": record.precision, "device": record.device,
              "threads": record.threads, "seed": record.seed, "repeat": record.repeat,
              "batch_size": record.batch_size, "width": record.width, "status": record.status,
              "framework_version": framework_version(record), "executor": record.executor}
    params.update({f"version.{name}": v for name, v in record.versions.items()})
    params.update({f"setting.{name}": v for name, v in record.settings.items()})
    return {_key(k): str(v)[:MAX_PARAM_CHARS] for k, v in params.items() if v is not None and v != ""}


def trial_metrics(record: TrialRecord) -> dict[str, float]:
    """The trial's figures: throughput (median of its blocks, samples/s) and its 95% interval,
    time to target, accuracy, memory, the first block."""
    metrics: dict[str, float | int | None] = {}
    rates = block_throughputs(record)
    if len(rates):
        metrics["throughput"] = float(np.median(rates))
        if len(rates) >= 2:
            metrics["throughput_low"], metrics["throughput_high"] = median_ci([rates])
    if record.latencies_s:
        for q in (50, 90, 99):
            metrics[f"latency_p{q}_s"] = float(np.percentile(record.latencies_s, q))
    metrics.update(first_block_s=record.first_block.seconds if record.first_block else None,
                   final_test_accuracy=record.final_test_accuracy, target_accuracy=record.target_accuracy,
                   time_to_target_s=record.time_to_target_s, steps_to_target=record.steps_to_target,
                   peak_rss_bytes=record.peak_rss_bytes, training_memory_bytes=training_memory(record),
                   device_peak_bytes=record.device_peak_bytes,
                   device_process_peak_bytes=record.device_process_peak_bytes,
                   machine_gflops=record.machine_gflops, wall_seconds=record.wall_seconds)
    return {k: float(v) for k, v in metrics.items() if v is not None}


def trial_history(record: TrialRecord, at: int) -> list:
    """Accuracy at each evaluation and the loss of every step, against the training step."""
    from mlflow.entities import Metric

    history = [Metric("test_accuracy", e.test_accuracy, at, e.step) for e in record.evaluations]
    history += [Metric("train_loss", loss, at, step) for step, loss in enumerate(record.step_losses)
                if loss is not None]
    return history


def _experiment(client, name: str, tracking_uri: str | None) -> str:
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = None
    if tracking_uri and tracking_uri.startswith("sqlite:///"):  # artifacts beside the database, not in ./mlruns
        location = (Path(tracking_uri[len("sqlite:///"):]).absolute().parent / "mlartifacts" / _key(name)).as_uri()
    return client.create_experiment(name, artifact_location=location)


def _tagged(client, experiment_id: str, run_id: str) -> dict[str, str]:
    """MLflow run id by dlbench trial id ('' for the parent) of the runs already exported."""
    found, token = {}, None
    while True:
        page = client.search_runs([experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{run_id}'",
                                  max_results=1000, page_token=token)
        for run in page:
            found[run.data.tags.get(TRIAL_TAG, "")] = run.info.run_id
        token = page.token
        if not token:
            return found


def _log(client, mlflow_run: str, params: dict[str, str], metrics: dict[str, float], history: list,
         at: int) -> None:
    from mlflow.entities import Metric, Param

    items = [Param(k, v) for k, v in params.items()]
    for i in range(0, len(items), 100):
        client.log_batch(mlflow_run, params=items[i:i + 100])
    points = [Metric(k, v, at, 0) for k, v in metrics.items()] + history
    for i in range(0, len(points), BATCH):
        client.log_batch(mlflow_run, metrics=points[i:i + BATCH])


def export(run_dir: Path, tracking_uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT) -> Exported:
    """Export the run at `run_dir` (see the module's docstring)."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ExportError("MLflow is not installed; install it with: pip install 'dlbench[mlflow]' "
                          "(or pip install -r requirements-mlflow.txt)") from None
    run = RunDir(run_dir)
    manifest = load_manifest(run_dir)
    if manifest is None:
        raise ExportError(f"{run_dir} is not a run directory (no manifest.json)")
    records = load_records(run_dir)
    client = MlflowClient(tracking_uri)
    experiment_id = _experiment(client, experiment, tracking_uri)
    done = _tagged(client, experiment_id, manifest.run_id)
    created = _millis(manifest.created_at)
    parent = done.get("")
    if parent is None:
        parent = client.create_run(experiment_id, start_time=created, run_name=manifest.run_id,
                                   tags={RUN_TAG: manifest.run_id, TRIAL_TAG: "", "dlbench.command": manifest.command,
                                         "dlbench.commit": manifest.environment.git.commit or ""}).info.run_id
        options = {_key(f"option.{k}"): str(v)[:MAX_PARAM_CHARS] for k, v in manifest.to_dict()["options"].items()}
        _log(client, parent, options, {}, [], created or 0)
    for name in ARTIFACTS:
        if (run.path / name).is_file():
            client.log_artifact(parent, str(run.path / name))
    result = Exported(experiment_id, parent)
    for record in records:
        if record.trial_id in done:
            result.kept.append(record.trial_id)
            continue
        started, finished = _millis(record.started_at), _millis(record.finished_at)
        child = client.create_run(experiment_id, start_time=started,
                                  run_name=f"{record.label} {record.trial_id}",
                                  tags={RUN_TAG: manifest.run_id, TRIAL_TAG: record.trial_id, PARENT_TAG: parent,
                                        "dlbench.status": record.status,
                                        "dlbench.reason": record.reason[:MAX_PARAM_CHARS]}).info.run_id
        at = finished or started or created or 0
        _log(client, child, trial_params(record), trial_metrics(record), trial_history(record, at), at)
        client.log_artifact(child, str(run.record_path(record.trial_id)))
        client.set_terminated(child, status=STATUS.get(record.status, "FINISHED"), end_time=finished)
        result.added.append(record.trial_id)
    client.set_terminated(parent, status="FINISHED", end_time=max(
        [m for r in records if (m := _millis(r.finished_at))] or [created or 0]))
    return result
