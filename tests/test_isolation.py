"""Every trial outcome becomes a record, with no framework involved (fake adapters)."""
from __future__ import annotations

import json
import os
import time

import pytest

from harness.launch import TERM_GRACE_S, launch
from harness.record import SCHEMA_VERSION
from harness.schema import load_record
from tests.conftest import make_trial
from workloads import get_workload

pytestmark = pytest.mark.alone  # hangs are cut at a few seconds


def test_successful_trial_records_raw_figures(tmp_path):
    progress = []
    record = launch(make_trial("tests.fake_adapters:NumpyAdapter"), tmp_path, "run1", on_progress=progress.append)
    assert record.status == "ok", record.reason
    spec = get_workload("xor")
    total = spec.epochs["smoke"]
    assert record.schema_version == SCHEMA_VERSION and record.run_id == "run1"
    assert record.first_block.steps == 1 and record.first_block.seconds > 0
    assert record.first_block.steps + sum(b.steps for b in record.blocks) == total
    assert [b.first_step for b in record.blocks] == sorted(b.first_step for b in record.blocks)
    assert len(record.step_losses) == total and record.step_losses[-1] < record.step_losses[0]
    assert record.param_count == record.spec_param_count == 33
    assert record.final_test_accuracy == 1.0 and record.steps_to_target % spec.eval_every_steps == 0
    assert record.evaluations[-1].step == total
    assert record.peak_rss_bytes >= record.rss_after_import_bytes > 0
    assert record.versions["numpy"] and record.settings["mode"] == "numpy"
    assert len(record.settings["cpu_affinity"]) == 1  # the trial asked for 1 thread: pinned to 1 core
    stored = json.loads((tmp_path / "records" / f"{record.trial_id}.json").read_text())
    assert stored["status"] == "ok" and stored["threads"] == 1


def test_existing_record_is_never_overwritten(tmp_path):
    trial = make_trial("tests.fake_adapters:NumpyAdapter")
    launch(trial, tmp_path, "run1")
    with pytest.raises(FileExistsError):
        launch(trial, tmp_path, "run1")
    assert load_record(tmp_path / "records" / f"{trial.trial_id}.json").status == "ok"


def test_exception_becomes_error_record_with_reason(tmp_path):
    record = launch(make_trial("tests.fake_adapters:RaiseInBuild"), tmp_path, "r")
    assert record.status == "error"
    assert record.reason == "ValueError: weights do not fit (deliberate)"
    assert "Traceback" in (tmp_path / "logs" / f"{record.trial_id}.log").read_text()


def test_hard_crash_becomes_error_record_with_log_tail(tmp_path):
    record = launch(make_trial("tests.fake_adapters:CrashAfterSteps"), tmp_path, "r")
    assert record.status == "error"
    assert "exited with code 3 without a record" in record.reason
    assert "fake native crash" in record.reason


def test_hang_times_out_and_keeps_what_was_measured(tmp_path):
    start = time.monotonic()
    record = launch(make_trial("tests.fake_adapters:HangAfterSteps", timeout_s=6), tmp_path, "r")
    assert time.monotonic() - start < 6 + TERM_GRACE_S + 5
    assert record.status == "timeout" and "time limit" in record.reason
    # Every block that finished before the hang is kept, with its losses.
    assert record.first_block is not None and record.blocks
    assert len(record.step_losses) == record.first_block.steps + sum(b.steps for b in record.blocks) >= 10


def test_hang_ignoring_sigterm_is_killed(tmp_path):
    start = time.monotonic()
    record = launch(make_trial("tests.fake_adapters:HangIgnoringTerm", timeout_s=4), tmp_path, "r")
    assert time.monotonic() - start < 4 + TERM_GRACE_S + 5
    assert record.status == "timeout" and "4 s time limit" in record.reason


def test_unsupported_combination_is_skipped(tmp_path):
    record = launch(make_trial("tests.fake_adapters:SkipInSetup"), tmp_path, "r")
    assert record.status == "skipped" and "not supported (deliberate)" in record.reason


def test_missing_framework_is_skipped_with_the_module_name(tmp_path):
    record = launch(make_trial("tests.missing_framework_adapter:Adapter"), tmp_path, "r")
    assert record.status == "skipped"
    assert "framework_that_is_not_installed is not installed" in record.reason


def test_every_trial_starts_with_cold_compile_caches(tmp_path):
    """Inductor's FX graph cache (and Triton's, CUDA's) would make a later trial's first block a warm
    start; each trial gets empty ones, removed after it, and its record says so."""
    first = launch(make_trial("tests.fake_adapters:CacheProbe"), tmp_path / "a", "r")
    second = launch(make_trial("tests.fake_adapters:CacheProbe"), tmp_path / "b", "r")
    for record in (first, second):
        assert record.status == "ok", record.reason
        assert record.settings["cache_was_empty"] is True
        assert record.settings["compile_cache"].startswith("cold: fresh, empty TORCHINDUCTOR_CACHE_DIR")
    assert first.settings["cache_dir"] != second.settings["cache_dir"]
    assert not os.path.exists(first.settings["cache_dir"]) and not os.path.exists(second.settings["cache_dir"])
