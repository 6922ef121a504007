from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import envs
from harness.record import TrialSpec

ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path | None:
    """$BENCH_DATA_DIR, else ../shared/data beside the project (this workplace's copy)."""
    candidates = [os.environ.get("BENCH_DATA_DIR"), ROOT.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "mnist").is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = shared_data_dir()
    if found is None:
        message = "no MNIST files: set BENCH_DATA_DIR to a folder with mnist/ and fashion-mnist/"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run every test)")
        pytest.skip(message)
    return found


def interpreter_or_skip(framework: str, variant: str) -> str:
    """The Python that runs this variant; skips the test (fails it under CI, which must run every
    framework) when the variant's packages or its isolated environment are missing."""
    problem = envs.unavailable(framework, variant, envs.base_dir())
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"{framework}:{variant} {problem} (CI must run every framework)")
        pytest.skip(f"{framework}:{variant} {problem}")
    return envs.interpreter(framework, variant, envs.base_dir())


def make_trial(adapter: str, workload: str = "xor", dataset: str = "xor", framework: str = "fake",
               variant: str = "default", profile: str = "smoke", timeout_s: float = 120.0,
               data_dir: Path | None = None, label: str | None = None) -> TrialSpec:
    return TrialSpec(trial_id=f"{workload}.{dataset}.{framework}.{variant}.r0", framework=framework,
                     variant=variant, label=label or f"{framework}:{variant}", adapter=adapter,
                     workload=workload, dataset=dataset, profile=profile, device="cpu", threads=1, seed=0,
                     repeat=0, data_dir=str(data_dir) if data_dir else None, timeout_s=timeout_s)
