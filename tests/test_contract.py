"""Every adapter x every workload, for real, on the smoke profile, each in its own process."""
from __future__ import annotations

import math

import numpy as np
import pytest

from adapters import FRAMEWORKS, environment_of
from harness.launch import launch
from harness.record import TrialRecord
from tests.conftest import interpreter_or_skip, make_trial
from workloads import WORKLOADS, dataset_for

pytestmark = pytest.mark.framework

# Variants that train (an inference-only one, keras:*-call, is skipped in training; the equivalence
# tests check its inference path, tests/test_inference.py its trials).
VARIANTS = [(f.name, v) for f in FRAMEWORKS.values() for v in f.variants if v not in f.inference_only]
_records: dict[tuple[str, str, str], TrialRecord] = {}


@pytest.fixture(scope="module")
def smoke_record(tmp_path_factory, data_dir):
    """Runs a trial the first time it is asked for and keeps its record for the other tests."""
    run_dir = tmp_path_factory.mktemp("contract")

    def get(framework: str, variant: str, workload: str) -> TrialRecord:
        python = interpreter_or_skip(framework, variant)
        key = (framework, variant, workload)
        if key not in _records:
            trial = make_trial(FRAMEWORKS[framework].adapter, workload=workload, framework=framework,
                               variant=variant, dataset=dataset_for(WORKLOADS[workload], "mnist"),
                               data_dir=data_dir, timeout_s=300)
            _records[key] = launch(trial, run_dir, "contract", python=python)
        return _records[key]

    return get


@pytest.mark.parametrize("workload", list(WORKLOADS))
@pytest.mark.parametrize("framework, variant", VARIANTS, ids=[f"{f}:{v}" for f, v in VARIANTS])
def test_adapter_trains_the_workload(smoke_record, framework, variant, workload):
    record = smoke_record(framework, variant, workload)
    assert record.status == "ok", record.reason
    spec = WORKLOADS[workload]
    assert record.param_count == spec.param_count()
    total = record.steps_per_epoch * record.epochs
    assert record.first_block.steps + sum(b.steps for b in record.blocks) == total
    assert all(b.seconds > 0 for b in record.blocks)
    assert len(record.step_losses) == total and all(math.isfinite(x) for x in record.step_losses)
    assert np.mean(record.step_losses[-3:]) < record.step_losses[0]
    assert record.evaluations and record.evaluations[-1].step == total
    assert 0 <= record.final_test_accuracy <= 1
    assert record.peak_rss_bytes > record.rss_after_import_bytes > 0
    assert record.settings and record.versions["numpy"]
    env = environment_of(framework, variant)
    if env is not None:  # the isolated environment's pins, not the main environment's packages
        for pin in env.requirements:
            name, _, version = pin.partition("==")
            assert record.versions[name] == version, (pin, record.versions)
    if workload == "xor":
        assert record.final_test_accuracy == 1.0 and record.steps_to_target is not None


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_frameworks_start_from_the_same_loss(smoke_record, workload):
    """Same initial weights and the same first batch give the same first loss everywhere."""
    firsts = {}
    for framework, variant in VARIANTS:
        try:
            record = smoke_record(framework, variant, workload)
        except pytest.skip.Exception:
            continue
        if record.status == "ok":
            firsts[f"{framework}:{variant}"] = record.step_losses[0]
    if len(firsts) < 2:
        pytest.skip("fewer than two frameworks installed")
    reference = np.median(list(firsts.values()))
    far = {k: v for k, v in firsts.items() if abs(v - reference) > 1e-4 * max(1.0, abs(reference))}
    assert not far, f"first-step losses differ from the median {reference:.6f}: {far}"
