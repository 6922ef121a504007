"""bench.py as a user meets it: bad input, listing, a small run, resume, missing frameworks."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import bench
from adapters import FRAMEWORKS, FrameworkInfo
from harness.threads import usable_cores
from tests.conftest import ROOT
from tests.test_datasets import closed_port_url


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bench.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **(env or {})}, timeout=600)


@pytest.mark.parametrize("args, message", [
    (["run", "-f", "pytorh"], "unknown framework 'pytorh'; choose from: all, jax, jax:all, keras, keras:all, "
                              "keras:jax, keras:jax-call, keras:jax-nojit, keras:jax-onbatch, keras:tensorflow, "
                              "keras:tensorflow-call, keras:tensorflow-jit, keras:tensorflow-onbatch, keras:torch, "
                              "keras:torch-call, keras:torch-jit, keras:torch-onbatch, mxnet, mxnet:all, mxnet:hybrid, "
                              "pytorch, pytorch:all, "
                              "pytorch:compile, tensorflow, tensorflow:all, tensorflow:xla, theano, theano:all"),
    (["run", "-f", "keras:theano"], "unknown framework 'keras:theano'; choose from: all, jax, jax:all, keras,"),
    (["run", "-w", "mnist"], "unknown workload 'mnist'; choose from: xor, mnist_mlp, mnist_cnn"),
    (["run", "--profile", "fast"], "invalid choice: 'fast' (choose from 'smoke', 'ci', 'quick', 'full')"),
    (["run", "--dataset", "cifar10"], "invalid choice: 'cifar10' (choose from 'mnist', 'fashion_mnist')"),
    (["run", "--device", "tpu"], "invalid choice: 'tpu' (choose from 'cpu', 'cuda', 'auto')"),
    (["run", "--malloc", "tcmalloc"], "invalid choice: 'tcmalloc' (choose from 'default', 'steady')"),
    (["run", "--repeats", "0"], "0 is not allowed; use a whole number of 1 or more"),
    (["run", "--threads", "two"], "'two' is not a whole number"),
    (["run", "--seed", "-1"], "-1 is out of range; use 0 to 4294967295"),
    (["run", "--timeout", "0"], "0 is not allowed; use a finite number of seconds above 0"),
    (["run", "--timeout", "inf"], "inf is not allowed; use a finite number of seconds above 0"),
    (["run", "--budget", "-5"], "-5 is not allowed; use a finite number of seconds above 0"),
    (["run", "--timeout", "nan"], "nan is not allowed; use a finite number of seconds above 0"),
    (["run", "--threads", "999"], f"999 threads asked, but this process may use {len(usable_cores())} core"),
    (["run", "--threads", "0"], "0 is not allowed; use a whole number of 1 or more"),
    (["baseline", "save", ".", "--name", "../x"], "baseline name '../x' must be a plain file name"),
    (["baseline", "save", ".", "--name", "a/b"], "baseline name 'a/b' must be a plain file name"),
    (["history", "--plot", "h.jpeg"], "cannot draw into 'h.jpeg': its name must end in .svg, .png, .pdf"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_unwritable_output_directory_is_exit_2(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_cli("run", "-f", "pytorch", "-w", "xor", "--profile", "smoke", "--out", str(blocker / "runs"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"bench.py: error: cannot write to output directory {blocker / 'runs'}")
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_data_stops_at_once_naming_places_and_urls(tmp_path):
    url = closed_port_url()
    result = run_cli("run", "-w", "mnist_mlp", "--profile", "smoke", "--out", str(tmp_path / "runs"),
                     env={"BENCH_DATA_DIR": str(tmp_path / "nodata"), "BENCH_CACHE_DIR": str(tmp_path / "cache"),
                          "BENCH_DATA_MIRRORS": url})
    assert result.returncode == 1
    assert str(tmp_path / "nodata" / "mnist") in result.stderr and f"{url}train-images" in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_list_shows_every_variant_and_workload():
    result = run_cli("list")
    assert result.returncode == 0
    for name in ["pytorch", "tensorflow", "keras:tensorflow", "keras:torch", "keras:jax", "jax", "mxnet:hybrid",
                 "theano", "env mxnet", "xor", "mnist_mlp",
                 "mnist_cnn", "smoke", "quick", "full"]:
        assert name in result.stdout


def test_run_resume_and_report(tmp_path, monkeypatch, capsys):
    """In-process run with a framework that is not installed beside a fake one that trains."""
    monkeypatch.setitem(FRAMEWORKS, "numpy", FrameworkInfo(
        name="numpy", adapter="tests.fake_adapters:NumpyAdapter", variants=("default",),
        modules={"default": ("numpy",)}, distributions=("numpy",)))
    monkeypatch.setitem(FRAMEWORKS, "ghost", FrameworkInfo(
        name="ghost", adapter="adapters.ghost:GhostAdapter", variants=("default",),
        modules={"default": ("ghost_framework_not_installed",)}, distributions=("ghost",)))
    code = bench.main(["run", "-f", "numpy", "-f", "ghost", "-w", "xor", "--profile", "smoke",
                       "--repeats", "2", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    (run_dir,) = tmp_path.iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["options"]["repeats"] == 2 and manifest["environment"]["cpu_cores"] >= 1
    assert manifest["trials"] == ["xor.xor.numpy.default.r0", "xor.xor.ghost.default.r0",
                                  "xor.xor.numpy.default.r1", "xor.xor.ghost.default.r1"]
    ghost = json.loads((run_dir / "records" / "xor.xor.ghost.default.r0.json").read_text())
    assert ghost["status"] == "skipped" and "ghost_framework_not_installed not installed" in ghost["reason"]
    numpy_record = json.loads((run_dir / "records" / "xor.xor.numpy.default.r0.json").read_text())
    assert numpy_record["machine_gflops"] > 0  # the machine's speed, probed just before the trial
    assert "numpy" in out and "ghost" in out and "skipped" in out
    summary = (run_dir / "summary.md").read_text()
    assert "### xor on xor" in summary and "| numpy " in summary and "## Skipped or failed" in summary

    (run_dir / "records" / "xor.xor.numpy.default.r1.json").unlink()
    before = (run_dir / "records" / "xor.xor.numpy.default.r0.json").read_text()
    assert bench.main(["run", "--resume", str(run_dir)]) == 0
    assert (run_dir / "records" / "xor.xor.numpy.default.r1.json").exists()
    assert (run_dir / "records" / "xor.xor.numpy.default.r0.json").read_text() == before

    assert bench.main(["report", str(run_dir)]) == 0
    assert "numpy" in capsys.readouterr().out


def test_efficiency_is_against_the_peak_at_the_trials_thread_count(fakes, tmp_path):
    """A --threads 1 run measures the matmul peak on one BLAS thread and divides each trial by it
    (an all-core peak would halve every share on two cores)."""
    import dataclasses

    from reports.load import load_manifest, load_records, peak_for, run_frame

    assert bench.main(["run", "-f", "numpy", "-w", "xor", "--profile", "smoke", "--threads", "1",
                       "--out", str(tmp_path)]) == 0
    (run_dir,) = tmp_path.iterdir()
    manifest = load_manifest(run_dir)
    peak = manifest.environment.matmul_peak
    assert peak.threads == 1 and "1 thread," in peak.method and peak.gflops > 0
    row = run_frame(run_dir).set_index("label").loc["numpy"]
    assert row["peak_gflops"] == pytest.approx(peak.gflops)
    assert row["peak_fraction"] == pytest.approx(row["gflops"] / peak.gflops)
    (record,) = load_records(run_dir)
    assert peak_for(manifest, record) == peak.gflops
    assert peak_for(manifest, dataclasses.replace(record, threads=2)) is None  # no peak measured for 2
