"""The harness holds no copy of the training data that an adapter does not need, so what a trial's
memory shows beyond the dataset as stored is the framework's. Through a whole trial (three epochs of
MNIST, re-staged each epoch, evaluations), the allocations the harness makes stay within one
float32 epoch: that epoch alone for an adapter that keeps views of it (as PyTorch's staged tensors
do), plus the adapter's own copy for one that copies (as TensorFlow and MXNet do)."""
from __future__ import annotations

import tracemalloc
from typing import Any, Sequence

import numpy as np
import pytest

from adapters.base import Adapter, split_batches, split_inputs
from harness.record import TrialRecord
from harness.trial import Progress, train
from tests.conftest import make_trial
from workloads import get_workload, training_data
from workloads.spec import WorkloadSpec

SLACK = 16 * 2**20  # a conversion chunk (6 MiB of uint8), an evaluation batch, logits, the record's lists


class KeepsViews(Adapter):
    """Stages by keeping views into the epoch it is given; trains nothing (the harness is measured)."""

    framework = "stand-in"

    def setup(self) -> dict[str, Any]:
        return {}

    def versions(self) -> dict[str, str]:
        return {}

    def build(self, spec: WorkloadSpec, weights: Sequence[np.ndarray]) -> None:
        self.spec = spec

    def param_count(self) -> int:
        return 0

    def stage(self, x: np.ndarray, y: np.ndarray) -> None:
        self.batches = split_batches(x, y, self.spec.batch_size)
        self.n_batches = len(self.batches)

    def train_step(self, i: int) -> float:
        return 0.0

    def synchronize(self) -> None:
        pass

    def loss_values(self, handles: Sequence[Any]) -> list[float]:
        return [float(h) for h in handles]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.zeros((len(x), 10), np.float32)

    def stage_inference(self, x: np.ndarray) -> dict[str, Any]:  # not used here: these tests train
        self.batches = split_inputs(x, self.spec.batch_size)
        self.n_batches = len(self.batches)
        return {}

    def infer(self, i: int) -> np.ndarray:
        return self.predict(self.batches[i])


class Copies(KeepsViews):
    def stage(self, x: np.ndarray, y: np.ndarray) -> None:
        self.batches = [(xb.copy(), yb.copy()) for xb, yb in split_batches(x, y, self.spec.batch_size)]
        self.n_batches = len(self.batches)


@pytest.mark.parametrize("adapter_cls, epochs_alive", [(KeepsViews, 1), (Copies, 2)])
def test_the_harness_adds_no_copy_beyond_one_staged_epoch(data_dir, adapter_cls, epochs_alive):
    spec = get_workload("mnist_mlp")
    data = training_data(spec, "mnist", "quick", data_dir)
    epoch_bytes = len(data.x_train) * 784 * 4
    trial = make_trial("tests.test_memory:KeepsViews", workload="mnist_mlp", dataset="mnist", profile="quick")
    record = TrialRecord.not_run(trial, "r", "error", "")
    adapter = adapter_cls("default", "cpu", 1)
    adapter.build(spec, [])
    tracemalloc.start()
    try:
        train(adapter, spec, data, trial, record, Progress(None))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert record.epochs == 3 and len(record.evaluations) == 12  # three epochs, each staged anew
    assert peak <= epochs_alive * epoch_bytes + SLACK, \
        f"{peak / 2**20:.0f} MiB at the peak; one float32 epoch is {epoch_bytes / 2**20:.0f} MiB"


class Oracle(KeepsViews):
    """Predicts the test labels it was told (reaches any target at the first evaluation) and takes
    a few milliseconds a step, so that blocks pile up as in a real trial."""

    labels: np.ndarray = np.array([])

    def train_step(self, i: int) -> float:
        import time

        time.sleep(0.005)
        return 0.0

    def predict(self, x: np.ndarray) -> np.ndarray:
        start = getattr(self, "cursor", 0) % len(self.labels)
        self.cursor = start + len(x)
        return np.eye(10, dtype=np.float32)[self.labels[start:start + len(x)]]


def test_the_quick_profile_stops_at_the_target_once_enough_blocks_are_timed(data_dir):
    from workloads.profiles import PROFILES

    spec = get_workload("mnist_mlp")
    data = training_data(spec, "mnist", "quick", data_dir)
    adapter = Oracle("default", "cpu", 1)
    adapter.labels = data.y_test
    adapter.build(spec, [])
    trial = make_trial("tests.test_memory:Oracle", workload="mnist_mlp", dataset="mnist", profile="quick")
    record = TrialRecord.not_run(trial, "r", "error", "")
    train(adapter, spec, data, trial, record, Progress(None))
    enough = PROFILES["quick"].min_blocks
    assert record.steps_to_target == record.evaluations[0].step  # reached at the first evaluation ...
    assert len(record.blocks) == enough  # ... but trained on until the figures had enough blocks ...
    assert record.evaluations[-1].step < record.epochs * record.steps_per_epoch  # ... then stopped, early
    assert record.stopped_by == "target" and record.final_test_accuracy == 1.0
