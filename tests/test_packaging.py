"""pip install of the project into a fresh virtualenv, used from a folder outside the repo: the
`dlbench` command works there, writes ./results/ in that folder (never into the installed code),
and children in the MXNet/Theano environments run from a copy of dlbench's own packages, not from
site-packages (whose NumPy would shadow theirs)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from harness import paths
from tests.conftest import interpreter_or_skip

ROOT = Path(__file__).resolve().parent.parent


def test_an_installed_copy_runs_children_from_a_folder_with_only_dlbench_in_it(tmp_path, monkeypatch):
    site = tmp_path / "site-packages"
    for package in paths.CHILD_PACKAGES:
        shutil.copytree(ROOT / package, site / package, ignore=shutil.ignore_patterns("__pycache__"))
    (site / "numpy").mkdir()  # what must not reach a child of the MXNet environment
    (site / "numpy" / "__init__.py").write_text("")
    monkeypatch.setattr(paths, "PROJECT_ROOT", site)
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    paths.child_code_root.cache_clear()
    try:
        root = paths.child_code_root()
        assert root.parent == tmp_path / "cache" / "code"
        assert sorted(p.name for p in root.iterdir()) == sorted(paths.CHILD_PACKAGES)
        assert (root / "harness" / "trial.py").read_text() == (ROOT / "harness" / "trial.py").read_text()
        (site / "harness" / "trial.py").write_text("# another version\n")
        paths.child_code_root.cache_clear()
        assert paths.child_code_root() != root  # a copy per version of the code
    finally:
        paths.child_code_root.cache_clear()  # the next caller computes it for the real tree again
    assert paths.is_source_tree(ROOT) and not paths.is_source_tree(site)  # a source tree runs children from itself


def test_the_cache_root_honours_the_override_then_xdg(tmp_path, monkeypatch):
    from harness import envs
    from workloads import datasets

    monkeypatch.delenv("BENCH_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert envs.base_dir() == tmp_path / "xdg" / "dlbench" / "envs"
    assert datasets.default_cache_dir() == tmp_path / "xdg" / "dlbench"
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "mine"))
    assert envs.base_dir() == tmp_path / "mine" / "envs" and datasets.default_cache_dir() == tmp_path / "mine"
    assert envs.base_dir("elsewhere") == Path("elsewhere").absolute()


@pytest.mark.framework
def test_pip_install_gives_a_dlbench_command_that_writes_under_the_current_folder(tmp_path, data_dir):
    mxnet_python = interpreter_or_skip("mxnet", "default")
    env_base = Path(mxnet_python).parents[2]  # <base>/mxnet/bin/python
    venv, source, work = tmp_path / "venv", tmp_path / "source", tmp_path / "work"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", purelib], capture_output=True, text=True,
                               check=True).stdout.strip())
    # the frameworks of the test environment, not installed a second time (the install is --no-deps)
    (site / "test-environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "results", "__pycache__", "build",
                                                               "*.egg-info", ".pytest_cache"))
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", str(source)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    assert (site / "bench.py").is_file() and (site / "harness" / "trial.py").is_file()
    shutil.rmtree(source)  # the command must not need the tree it was installed from
    work.mkdir()
    env = {**os.environ, "BENCH_DATA_DIR": str(data_dir), "BENCH_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": ""}
    dlbench = str(venv / "bin" / "dlbench")
    listed = subprocess.run([dlbench, "list"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0 and "pytorch" in listed.stdout and "mxnet" in listed.stdout, listed.stderr
    run = subprocess.run([dlbench, "run", "-f", "pytorch", "-f", "mxnet", "-w", "xor", "--profile", "smoke",
                          "--threads", "1", "--env-dir", str(env_base), "--no-env-setup"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (run_dir,) = (work / "results" / "runs").iterdir()
    statuses = {p.stem: json.loads(p.read_text())["status"] for p in (run_dir / "records").glob("*.json")}
    assert statuses == {"xor.xor.pytorch.default.r0": "ok", "xor.xor.mxnet.default.r0": "ok"}, statuses
    assert not (site / "results").exists()
    (code,) = (tmp_path / "cache" / "code").iterdir()
    assert sorted(p.name for p in code.iterdir()) == sorted(paths.CHILD_PACKAGES)
    assert json.loads((run_dir / "manifest.json").read_text())["command"].startswith("dlbench run ")
    ab = subprocess.run([dlbench, "ab", "HEAD~1", "-w", "xor"], cwd=work, env=env, capture_output=True, text=True,
                        timeout=300)
    assert ab.returncode == 2 and "run it from a clone" in ab.stderr and ab.stderr.count("\n") == 1, ab.stderr
