"""Isolated framework environments: created on demand, reused, used for the trial, and a failed
install that skips only its own trials. Uses real venvs and pip (an old NumPy, a missing package)."""
from __future__ import annotations

import json

import pytest

import bench
from adapters import ENVIRONMENTS, FRAMEWORKS, Environment, FrameworkInfo
from harness import envs
from tests.test_cli import run_cli

OLD_NUMPY = "numpy==1.23.5"


@pytest.fixture
def isolated_frameworks(monkeypatch):
    """A fake framework in an environment with an old NumPy, one whose environment cannot be
    installed, and one in the main environment."""
    monkeypatch.setitem(ENVIRONMENTS, "oldnumpy", Environment("oldnumpy", (OLD_NUMPY,), ("numpy",)))
    monkeypatch.setitem(ENVIRONMENTS, "broken", Environment("broken", ("dlbench-no-such-package==0.0.1",), ()))
    for name, env in (("isolated", "oldnumpy"), ("unbuildable", "broken"), ("numpy", None)):
        monkeypatch.setitem(FRAMEWORKS, name, FrameworkInfo(
            name=name, adapter="tests.fake_adapters:NumpyAdapter", variants=("default",),
            modules={"default": ("numpy",)}, distributions=("numpy",),
            environment={"default": env} if env else {}))


def test_run_creates_the_environment_uses_it_and_reuses_it(tmp_path, isolated_frameworks, caplog):
    env_dir = tmp_path / "envs"
    args = ["run", "-f", "isolated", "-f", "numpy", "-w", "xor", "--profile", "smoke", "--env-dir", str(env_dir)]
    with caplog.at_level("INFO"):
        assert bench.main(args + ["--out", str(tmp_path / "a")]) == 0
    assert "environment oldnumpy is not created; creating it" in caplog.text
    assert "bench.py env setup oldnumpy --env-dir" in caplog.text
    (run_dir,) = (tmp_path / "a").iterdir()
    isolated = json.loads((run_dir / "records" / "xor.xor.isolated.default.r0.json").read_text())
    main = json.loads((run_dir / "records" / "xor.xor.numpy.default.r0.json").read_text())
    assert isolated["status"] == "ok" and main["status"] == "ok"
    assert isolated["versions"]["numpy"] == "1.23.5" and main["versions"]["numpy"] != "1.23.5"
    assert isolated["settings"]["python_executable"] == str(env_dir / "oldnumpy" / "bin" / "python")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["environment"]["isolated_environments"]["oldnumpy"]["versions"] == {"numpy": "1.23.5"}

    stamp = (env_dir / "oldnumpy" / envs.STAMP).stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level("INFO"):
        assert bench.main(args + ["--out", str(tmp_path / "b")]) == 0
    assert "creating" not in caplog.text
    assert (env_dir / "oldnumpy" / envs.STAMP).stat().st_mtime_ns == stamp

    # A changed pin makes the environment stale; `env list` says so and how to repair it.
    ENVIRONMENTS["oldnumpy"] = Environment("oldnumpy", ("numpy==1.24.4",), ("numpy",))
    state = envs.status(ENVIRONMENTS["oldnumpy"], env_dir)
    assert not state.ready and "now pinned: numpy==1.24.4" in state.problem


def test_a_failed_install_skips_its_trials_with_pips_error(tmp_path, isolated_frameworks):
    code = bench.main(["run", "-f", "unbuildable", "-f", "numpy", "-w", "xor", "--profile", "smoke",
                       "--env-dir", str(tmp_path / "envs"), "--out", str(tmp_path / "runs")])
    assert code == 0  # skipped is not a failure; the other framework ran
    (run_dir,) = (tmp_path / "runs").iterdir()
    broken = json.loads((run_dir / "records" / "xor.xor.unbuildable.default.r0.json").read_text())
    assert broken["status"] == "skipped"
    assert broken["reason"].startswith("environment broken could not be set up:")
    assert "dlbench-no-such-package" in broken["reason"] and "ERROR" in broken["reason"]
    assert json.loads((run_dir / "records" / "xor.xor.numpy.default.r0.json").read_text())["status"] == "ok"


def test_no_env_setup_names_the_command(tmp_path, isolated_frameworks):
    assert bench.main(["run", "-f", "isolated", "-w", "xor", "--profile", "smoke", "--no-env-setup",
                       "--env-dir", str(tmp_path / "envs"), "--out", str(tmp_path / "runs")]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    record = json.loads((run_dir / "records" / "xor.xor.isolated.default.r0.json").read_text())
    assert record["status"] == "skipped"
    assert "environment oldnumpy is not set up (not created); run: bench.py env setup oldnumpy" in record["reason"]
    assert not (tmp_path / "envs" / "oldnumpy").exists()


def test_env_list_and_bad_names(tmp_path):
    listing = run_cli("env", "list", "--env-dir", str(tmp_path))
    assert listing.returncode == 0
    for name in ENVIRONMENTS:
        assert f"{name} " in listing.stdout and f"bench.py env setup {name}" in listing.stdout
    bad = run_cli("env", "setup", "tensorflow", "--env-dir", str(tmp_path))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "unknown environment 'tensorflow'; choose from: mxnet, theano" in bad.stderr
