from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import envs
from harness.plan import RunOptions, plan
from harness.record import TrialRecord, TrialSpec
from harness.rundir import GitState, Manifest, MatmulPeak, RunDir, RunEnvironment

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    """Under pytest-xdist (`make test`), give each worker its own share of the cores where there
    are at least two a worker: the trials pin themselves to the first cores they may use, and two
    workers' trials would otherwise share the same ones while the rest stay idle."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker.startswith("gw") or not hasattr(os, "sched_setaffinity"):
        return
    from harness.threads import usable_cores

    cores = usable_cores()
    share = len(cores) // count
    if share >= 2:
        index = int(worker[2:])
        os.sched_setaffinity(0, cores[index * share:(index + 1) * share])


def shared_data_dir() -> Path | None:
    """$BENCH_DATA_DIR, else ../shared/data beside the project (this workplace's copy)."""
    candidates = [os.environ.get("BENCH_DATA_DIR"), ROOT.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "mnist").is_dir():
            return Path(candidate)
    return None


@pytest.fixture
def fakes():
    """The stand-in frameworks of tests/fake_bench.py (numpy, slow, hog), registered in this process."""
    from adapters import FRAMEWORKS
    from tests.fake_bench import FAKES, register

    register()
    yield
    for name in FAKES:
        FRAMEWORKS.pop(name, None)


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


def framework_args(names: list[str]) -> list[str]:
    """`-f NAME` arguments for `bench.py run`, each variant's interpreter checked (interpreter_or_skip)."""
    for name in names:
        framework, _, variant = name.partition(":")
        interpreter_or_skip(framework, variant or "default")
    return [arg for name in names for arg in ("-f", name)]


def run_records(out: Path) -> dict[str, TrialRecord]:
    """The records of the one run directory `bench.py run --out OUT` made, by trial id."""
    from harness.schema import load_record

    (run,) = [p for p in out.iterdir() if (p / "manifest.json").exists()]
    return {p.stem: load_record(p) for p in sorted((run / "records").glob("*.json"))}


def make_trial(adapter: str, workload: str = "xor", dataset: str = "xor", framework: str = "fake",
               variant: str = "default", profile: str = "smoke", timeout_s: float = 120.0,
               data_dir: Path | None = None, label: str | None = None) -> TrialSpec:
    return TrialSpec(trial_id=f"{workload}.{dataset}.{framework}.{variant}.r0", framework=framework,
                     variant=variant, label=label or f"{framework}:{variant}", adapter=adapter,
                     workload=workload, dataset=dataset, profile=profile, device="cpu", threads=1, seed=0,
                     repeat=0, data_dir=str(data_dir) if data_dir else None, timeout_s=timeout_s)


def write_manifest(run_dir: Path, run_id: str | None = None, created_at: str = "2026-11-24T00:00:00+00:00",
                   commit: str = "abc123", peak_gflops: float | None = 100.0, **options: object) -> Manifest:
    """A valid manifest for a synthetic run directory (options: RunOptions fields to change)."""
    chosen = RunOptions(**{**dict(frameworks=(), workloads=("mnist_mlp",), dataset="mnist", profile="quick",
                                  device="cpu", threads=2, seed=0, repeats=1, data_dir=None, cache_dir=None,
                                  timeout_s=None), **options})
    manifest = Manifest(run_id=run_id or run_dir.name, command="bench.py run", created_at=created_at, options=chosen,
                        trials=[t.trial_id for t in plan(chosen)],
                        environment=RunEnvironment(cpu_model="Test CPU", cpu_cores=2, python="3.11.7", numpy="2.0",
                                                   frameworks={"pytorch": "2.13.0"}, git=GitState(commit=commit),
                                                   matmul_peak=MatmulPeak(peak_gflops) if peak_gflops else None))
    RunDir(run_dir).write_manifest(manifest)
    return manifest
