"""`export RUN --mlflow`: one MLflow run per trial under a parent run, read back with MLflow's own
client from a real SQLite tracking store; exporting again adds nothing, a resumed run only its new
trials."""
from __future__ import annotations

import json

import pytest

import bench
from harness.files import write_json
from tests.test_compare import synthetic_run

mlflow = pytest.importorskip("mlflow", reason="MLflow is not installed (make test installs requirements-mlflow.txt)")


def exported(uri: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("bench-test")
    return client, client.search_runs([experiment.experiment_id], max_results=1000)


def test_every_trial_becomes_a_run_with_its_figures_once(tmp_path, capsys):
    run = synthetic_run(tmp_path, "run1", seed=3, labels=("pytorch", "tensorflow", "jax"), repeats=2)
    for path in (run / "records").glob("*.json"):  # accuracy at two evaluations and a loss per step
        data = json.loads(path.read_text())
        data.update(evaluations=[{"step": 40, "epoch": 0, "train_seconds": 1.0, "test_accuracy": 0.93},
                                 {"step": 80, "epoch": 0, "train_seconds": 2.0, "test_accuracy": 0.975}],
                    step_losses=[2.3 - 0.01 * i for i in range(120)])
        write_json(path, data)
    (run / "summary.md").write_text("# the report\n")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = ["export", str(run), "--mlflow", "--tracking-uri", uri, "--experiment", "bench-test"]
    assert bench.main(argv) == 0
    assert "6 trials exported" in capsys.readouterr().out
    client, runs = exported(uri)
    (parent,) = [r for r in runs if r.data.tags["dlbench.trial_id"] == ""]
    trials = {r.data.tags["dlbench.trial_id"]: r for r in runs if r.data.tags["dlbench.trial_id"]}
    assert len(trials) == 6 and all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in trials.values())
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"summary.md", "manifest.json"}
    one = trials["mnist_mlp.mnist.pytorch.default.r0"]
    assert one.info.status == "FINISHED"
    params, metrics = one.data.params, one.data.metrics
    assert (params["framework"], params["workload"], params["dataset"], params["precision"], params["threads"]) == \
        ("pytorch", "mnist_mlp", "mnist", "fp32", "2")
    assert params["version.torch"] == "2.13.0"
    assert 30_000 < metrics["throughput"] < 55_000 and metrics["throughput_low"] <= metrics["throughput"] <= \
        metrics["throughput_high"]
    assert (metrics["final_test_accuracy"], metrics["time_to_target_s"]) == (0.975, 5.0)
    assert metrics["peak_rss_bytes"] == 900 * 2**20
    accuracy = client.get_metric_history(one.info.run_id, "test_accuracy")
    assert [(m.step, m.value) for m in accuracy] == [(40, 0.93), (80, 0.975)]
    assert len(client.get_metric_history(one.info.run_id, "train_loss")) == 120
    assert [a.path for a in client.list_artifacts(one.info.run_id)] == ["mnist_mlp.mnist.pytorch.default.r0.json"]

    assert bench.main(argv) == 0  # again: nothing new
    assert "0 trials exported, 6 already there" in capsys.readouterr().out
    assert len(exported(uri)[1]) == 7


def test_a_failed_trial_is_a_failed_run_and_a_resumed_run_adds_only_its_new_trials(tmp_path, capsys):
    run = synthetic_run(tmp_path, "run2", seed=4, status="error")
    kept = {p.name: p.read_text() for p in (run / "records").glob("*.json")}
    newest = run / "records" / "mnist_mlp.mnist.tensorflow.default.r0.json"
    newest.rename(tmp_path / "later.json")  # as if the run were interrupted before this trial
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = ["export", str(run), "--mlflow", "--tracking-uri", uri, "--experiment", "bench-test"]
    assert bench.main(argv) == 0
    (tmp_path / "later.json").rename(newest)
    assert bench.main(argv) == 0
    assert "1 trials exported, 1 already there" in capsys.readouterr().out.splitlines()[-1]
    runs = {r.data.tags["dlbench.trial_id"]: r for r in exported(uri)[1]}
    assert len(runs) == 3
    failed = runs["mnist_mlp.mnist.pytorch.default.r0"]
    assert failed.info.status == "FAILED" and failed.data.tags["dlbench.reason"] == "RuntimeError: boom"
    assert {p.name: p.read_text() for p in (run / "records").glob("*.json")} == kept  # the run is only read


def test_export_of_a_folder_that_is_not_a_run_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["export", str(tmp_path), "--mlflow", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"])
    assert exc.value.code == 2 and "is not a run directory" in capsys.readouterr().err
