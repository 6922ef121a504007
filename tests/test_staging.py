"""Staging returns with the copies done, so no transfer is paid inside the first timed block.

JAX (and Keras on JAX) copy asynchronously even to the CPU: without a wait in `stage`, the first
block of each epoch after the first ran at about a third of the steady rate (measured here)."""
from __future__ import annotations

import subprocess

import pytest

from adapters import FRAMEWORKS
from harness.launch import child_env
from harness.paths import PROJECT_ROOT
from tests.conftest import interpreter_or_skip

pytestmark = pytest.mark.framework

CHILD = """
import sys
import jax, numpy as np
from adapters import load_adapter_class
from workloads import get_workload
adapter = load_adapter_class(sys.argv[1])(sys.argv[2], "cpu", 1)
adapter.setup()
spec = get_workload("mnist_mlp")
adapter.build(spec, spec.init_weights(0))
rng = np.random.default_rng(0)
adapter.stage(rng.random((30000, 784), dtype=np.float32), rng.integers(0, 10, 30000).astype(np.uint8))
arrays = [a for batch in adapter.batches for a in batch]
print(sum(not a.is_ready() for a in arrays), len(arrays))
"""


@pytest.mark.parametrize("framework, variant", [("jax", "default"), ("keras", "jax")])
def test_staged_batches_are_resident_when_stage_returns(framework, variant):
    python = interpreter_or_skip(framework, variant)
    out = subprocess.run([python, "-c", CHILD, FRAMEWORKS[framework].adapter, variant], cwd=PROJECT_ROOT,
                         env=child_env(framework, variant, "cpu", 1), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    pending, total = map(int, out.stdout.split()[-2:])
    assert total == 2 * (30000 // 128) and pending == 0, f"{pending} of {total} staged arrays still copying"
