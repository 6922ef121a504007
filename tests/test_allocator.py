"""--malloc: one C allocator policy for every trial, reaching the trial's process and its record.
`steady` must keep the memory a step frees in the process: under glibc's defaults JAX's CNN step
hands its temporaries back to the kernel and faults them in again (a third of a GiB a step)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from harness.allocator import STEADY
from harness.launch import child_env
from tests.conftest import ROOT

FAULTS_SCRIPT = """
import resource, numpy as np, jax
from adapters.jax import JaxAdapter
from workloads import get_workload
spec = get_workload("mnist_cnn")
adapter = JaxAdapter("default", "cpu", 1)
adapter.setup()
adapter.build(spec, spec.init_weights(0))
rng = np.random.default_rng(0)
adapter.stage(rng.random((256, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 256).astype(np.uint8))
for i in range(3):
    adapter.train_step(i % 2)
adapter.synchronize()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(4):
    adapter.train_step(i % 2)
    adapter.synchronize()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 4)
"""


def _faults_per_step(malloc: str) -> float:
    """Minor page faults per step of the JAX adapter's CNN step (a MALLOC_ variable of the caller's
    own is dropped for `default`: glibc's defaults are what is measured)."""
    env = child_env("jax", "default", "cpu", 1, malloc=malloc)
    if malloc == "default":
        env = {k: v for k, v in env.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", FAULTS_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return float(out.stdout.strip().splitlines()[-1])


def test_steady_keeps_what_a_jax_cnn_step_frees_in_the_process():
    pytest.importorskip("jax")
    default, steady = _faults_per_step("default"), _faults_per_step("steady")
    # Measured: about 86,000 minor faults a step (4 KiB pages: 337 MiB) with glibc's defaults, about 2,000 steady.
    assert default > 20_000, default
    assert steady < default / 5, (default, steady)


@pytest.mark.parametrize("policy", ["default", "steady"])
def test_the_policy_reaches_each_trial_and_its_record(tmp_path, policy, data_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, str(ROOT / "bench.py"), "run", "-f", "pytorch", "-w", "xor", "--profile",
                          "smoke", "--malloc", policy, "--out", str(tmp_path)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    (record,) = [json.loads(p.read_text()) for p in (run / "records").glob("*.json")]
    assert record["status"] == "ok"
    assert record["settings"]["malloc"] == (STEADY if policy == "steady" else "glibc defaults")
    assert json.loads((run / "manifest.json").read_text())["options"]["malloc"] == policy
    assert f"(--malloc {policy};" in (run / "summary.md").read_text()
