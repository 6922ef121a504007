"""The default profile's rule: each trial trains until its target or its training budget, whichever
comes first, and a trial that runs out of budget reads "not reached in N s (best A)" in every format,
the terminal, summary.md, report.html, summary.csv and summary.json, and in the time-to-accuracy
figure; the budget and the rule are in the manifest, the records and the settings line."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from harness.rundir import RunDir
from reports.aggregate import to_target_text, trained_seconds
from tests.conftest import run_records
from tests.test_faults import cli
from workloads.profiles import PROFILES, get_profile

BUDGET_S = 2.0


def test_the_profiles_stop_rule():
    quick, ci, full = PROFILES["quick"], PROFILES["ci"], PROFILES["full"]
    assert quick.stop(reached=True, blocks=quick.min_blocks - 1, train_seconds=100, budget_s=20) is None
    assert quick.stop(reached=True, blocks=quick.min_blocks, train_seconds=1, budget_s=20) == "target"
    assert quick.stop(reached=False, blocks=quick.min_blocks, train_seconds=19.9, budget_s=20) is None
    assert quick.stop(reached=False, blocks=quick.min_blocks, train_seconds=20, budget_s=20) == "budget"
    assert quick.stop(reached=False, blocks=50, train_seconds=1e6, budget_s=None) is None  # no budget: epochs
    assert ci.stop(reached=False, blocks=ci.steady_blocks, train_seconds=0.1, budget_s=None) == "blocks"
    assert full.stop(reached=True, blocks=10**6, train_seconds=1e6, budget_s=None) is None
    with pytest.raises(ValueError, match="unknown profile 'fast'; choose from: smoke, ci, quick, full"):
        get_profile("fast")


def test_the_not_reached_text_names_the_seconds_and_the_best_accuracy():
    assert to_target_text(0, 1, None, None, 20.4, 0.97125) == "not reached in 20 s (best 0.9712)"
    assert to_target_text(1, 3, None, None, 20.0, 0.975) == "not reached in 20 s (best 0.9750, 1 of 3)"
    assert to_target_text(2, 3, 12.5, 351, 20.0, 0.981) == "12.50 s (351 steps, 2 of 3)"


def test_a_trial_that_cannot_reach_its_target_ends_at_its_budget_and_every_format_says_so(fakes, tmp_path,
                                                                                           data_dir):
    # NumPy's plain SGD at the MLP's learning rate (1e-3) is far from 0.97 after a few seconds.
    code, out, err = cli("run", "-f", "numpy", "-w", "mnist_mlp", "--budget", str(BUDGET_S), "--threads", "1",
                         "--data-dir", str(data_dir), "--out", str(tmp_path))
    assert code == 0, err
    (record,) = run_records(tmp_path).values()
    trained = trained_seconds(record)
    assert record.status == "ok" and record.stopped_by == "budget" and record.budget_s == BUDGET_S
    assert BUDGET_S <= trained < BUDGET_S + 1.0  # ended at the budget (within a block), not at its epochs
    assert record.steps_to_target is None and record.final_test_accuracy < record.target_accuracy
    assert record.evaluations[-1].step < record.epochs * record.steps_per_epoch
    best = max(e.test_accuracy for e in record.evaluations)
    text = f"not reached in {trained:.0f} s (best {best:.4f})"

    (run,) = [p for p in tmp_path.iterdir() if (p / "manifest.json").exists()]
    manifest = RunDir(run).read_manifest()
    assert manifest.options.budget_s == BUDGET_S and manifest.profile.budget_s == BUDGET_S
    assert manifest.profile.name == "quick" and manifest.profile.stop_at_target
    assert text in out  # the terminal's table
    summary = (run / "summary.md").read_text()
    assert text in summary and f"after {BUDGET_S:g} s of timed training, whichever comes first" in summary
    page = (run / "report.html").read_text()
    assert text in page and "Target accuracy reached by 0 of 1 (numpy: " + text in page
    # The time-to-accuracy figure (its text is drawn as paths; matplotlib keeps each string in a comment).
    assert f"<!-- numpy: {text} -->" in page and f"<!-- budget {BUDGET_S:g} s -->" in page
    csv = pd.read_csv(run / "summary.csv")
    assert csv.loc[0, "to_target"] == text and csv.loc[0, "budget_s"] == BUDGET_S
    assert pd.isna(csv.loc[0, "time_to_target_s"]) and csv.loc[0, "best_test_accuracy"] == pytest.approx(best)
    (row,) = json.loads((run / "summary.json").read_text())
    assert row["to_target"] == text and row["stopped_by"] == "budget"
    assert row["trained_s"] == pytest.approx(trained, abs=1e-5)


def test_a_run_without_budget_flag_gets_the_profiles_budget_and_full_has_none(fakes, tmp_path, data_dir):
    code, _, err = cli("run", "-f", "numpy", "-w", "xor", "--threads", "1", "--out", str(tmp_path / "quick"))
    assert code == 0, err
    (record,) = run_records(tmp_path / "quick").values()
    assert record.budget_s == PROFILES["quick"].budget_s and record.stopped_by == "target"
    assert record.steps_to_target is not None and len(record.blocks) == PROFILES["quick"].min_blocks
    code, _, err = cli("run", "-f", "numpy", "-w", "xor", "--threads", "1", "--profile", "full",
                       "--out", str(tmp_path / "full"))
    assert code == 0, err
    (record,) = run_records(tmp_path / "full").values()
    assert record.budget_s is None and record.stopped_by == "epochs"
