"""The GPU path (marker `gpu`): every framework trains on an NVIDIA GPU with its memory measured,
builds the same model there as the NumPy reference with TF32 off, and trains in mixed precision
with its own mechanism. Each test skips, naming why, where no GPU is visible (a CPU-only machine,
CI); `tools/gpu_check.sh` runs them with the GPU figures in one go."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from harness import envs, equivalence
from tests.conftest import framework_args, run_records
from tests.test_faults import cli

pytestmark = [pytest.mark.gpu, pytest.mark.framework]

# Every variant run on a GPU: MXNet's CPU build (the isolated environment's) skips with its reason.
GPU_VARIANTS = ["pytorch", "tensorflow", "jax", "keras:tensorflow", "keras:torch", "keras:jax", "mxnet"]
MAIN_ENVIRONMENT_VARIANTS = GPU_VARIANTS[:-1]


def gpu_or_skip() -> str:
    """The GPUs nvidia-smi lists; skips the test where there are none."""
    if not shutil.which("nvidia-smi"):
        pytest.skip("no NVIDIA GPU here: nvidia-smi is not installed")
    listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    if listing.returncode != 0 or "GPU" not in listing.stdout:
        pytest.skip(f"no NVIDIA GPU visible: nvidia-smi -L says {(listing.stdout + listing.stderr).strip()!r}")
    return listing.stdout.strip()


def test_every_framework_trains_on_the_gpu_with_its_process_memory_measured(tmp_path, data_dir):
    gpu_or_skip()
    code, out, err = cli("run", *framework_args(GPU_VARIANTS), "-w", "mnist_cnn", "--device", "cuda",
                         "--profile", "smoke", "--out", str(tmp_path))
    records = {r.label: r for r in run_records(tmp_path).values()}
    assert code in (0, 1), err
    for label in MAIN_ENVIRONMENT_VARIANTS:
        r = records[label]
        assert r.status == "ok" and r.device == "cuda", (label, r.reason)
        assert r.device_process_peak_bytes and r.device_process_peak_bytes > 0, label
        assert r.device_peak_bytes and r.device_peak_bytes > 0, label
        assert r.settings["tf32"].startswith("off (") and "no effect" not in r.settings["tf32"]
        assert r.settings["conv_autotune"].startswith("on (")
    mxnet = records["mxnet"]
    assert mxnet.status == "ok" or "no GPU visible to MXNet" in mxnet.reason, mxnet.reason
    assert "GPU mem (allocator)" in out


@pytest.mark.parametrize("precision", ["fp32", "mixed-bf16", "mixed-fp16", "fp16"])
@pytest.mark.parametrize("name", MAIN_ENVIRONMENT_VARIANTS)
def test_the_model_on_the_gpu_is_the_reference_model(name, precision):
    """TF32 off: float32 on the GPU within float32's tolerance; the reduced formats within theirs
    (the CNN in float16 included, which the CPU tests leave out)."""
    gpu_or_skip()
    framework, _, variant = name.partition(":")
    probe = equivalence.run_probe(framework, variant or "default", ["mnist_mlp", "mnist_cnn"],
                                  envs.interpreter(framework, variant or "default", envs.base_dir()) or sys.executable,
                                  threads=2, device="cuda", precision=precision, layers=precision == "fp32")
    for workload in ("mnist_mlp", "mnist_cnn"):
        if workload in probe.skipped:
            assert precision == "mixed-fp16" and framework in ("jax", "tensorflow"), probe.skipped
            continue
        assert not equivalence.model_problems(probe, workload)
        assert not equivalence.loss_problems([probe], workload)


def test_mixed_precision_on_the_gpu_uses_each_frameworks_own_mechanism(tmp_path, data_dir):
    gpu_or_skip()
    code, _, err = cli("run", *framework_args(MAIN_ENVIRONMENT_VARIANTS), "-w", "mnist_mlp", "--device", "cuda",
                       "--precision", "mixed-bf16,mixed-fp16", "--profile", "smoke", "--out", str(tmp_path))
    assert code == 0, err
    records = {(r.label, r.precision): r for r in run_records(tmp_path).values()}
    for (label, precision), r in records.items():
        skipped_by_design = precision == "mixed-fp16" and label in ("jax", "tensorflow")
        assert r.status == ("skipped" if skipped_by_design else "ok"), (label, precision, r.reason)
    assert "GradScaler('cuda')" in records["pytorch", "mixed-fp16"].settings["precision"]
