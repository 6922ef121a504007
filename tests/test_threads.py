"""Thread settings are the same for every framework: no adapter sets an OpenMP wait policy of its own
(Theano once set PASSIVE alone), and the manifest records the one in effect."""
from __future__ import annotations

import os
import subprocess

import pytest

from adapters import FRAMEWORKS
from harness.environment import describe
from harness.launch import child_env
from harness.paths import PROJECT_ROOT
from tests.conftest import interpreter_or_skip

OPENMP_FRAMEWORKS = [("pytorch", "default"), ("mxnet", "default"), ("theano", "default"), ("keras", "torch")]


@pytest.mark.framework
@pytest.mark.parametrize("framework, variant", OPENMP_FRAMEWORKS, ids=[f"{f}:{v}" for f, v in OPENMP_FRAMEWORKS])
def test_no_adapter_sets_its_own_openmp_wait_policy(framework, variant):
    python = interpreter_or_skip(framework, variant)
    module = FRAMEWORKS[framework].adapter.partition(":")[0]
    env = {k: v for k, v in child_env(framework, variant, "cpu", 2).items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([python, "-c", f"import os, {module}; print(os.environ.get('OMP_WAIT_POLICY'))"],
                         cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-1000:]
    assert out.stdout.strip().splitlines()[-1] == "None"


def test_the_manifest_records_the_wait_policy(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert describe(2).thread_env["OMP_WAIT_POLICY"] == "runtime default (unset)"
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    assert describe(2).thread_env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
