"""Precision as an axis (--precision), the numeric settings every adapter applies alike (--tf32,
--autotune), the check that a reduced precision was applied, and the reports' precision section."""
from __future__ import annotations

import json

import pytest

from adapters.numerics import (PRECISIONS, Numerics, forward_bounds, forward_problem, numerics_environment)
from harness.launch import child_env
from harness.plan import RunOptions, options_problem, plan
from harness.record import SCHEMA_VERSION, Block, TrialRecord
from reports.aggregate import summarize
from reports.summary import render_markdown
from tests.conftest import framework_args, run_records
from tests.test_faults import cli, one_line
from workloads.reference import FORWARD_TOLERANCE


def _options(**changes) -> RunOptions:
    base = dict(frameworks=("pytorch", "jax"), workloads=("mnist_mlp",), dataset="mnist", profile="quick",
                device="cpu", threads=1, seed=0, repeats=1, data_dir=None, cache_dir=None, timeout_s=None)
    return RunOptions(**{**base, **changes})


def test_precision_is_an_axis_and_float32_keeps_the_ids_of_earlier_runs():
    trials = plan(_options(precisions=("fp32", "mixed-bf16"), repeats=2))
    assert len(trials) == 2 * 2 * 2 and len({t.trial_id for t in trials}) == len(trials)
    ids = [t.trial_id for t in trials[:4]]
    assert ids == ["mnist_mlp.mnist.pytorch.default.r0", "mnist_mlp.mnist.jax.default.r0",
                   "mnist_mlp.mnist.pytorch.default.mixed-bf16.r0", "mnist_mlp.mnist.jax.default.mixed-bf16.r0"]
    assert trials[2].precision == "mixed-bf16" and trials[2].point == "mnist_mlp mixed-bf16"
    assert all(not t.tf32 and t.autotune for t in trials)
    sweep = plan(_options(frameworks=("pytorch",), precisions=("bf16",), scenarios=("infer",), batch_sizes=(32,),
                          tf32=True, autotune=False))
    assert [t.trial_id for t in sweep] == ["mnist_mlp.mnist.pytorch.default.infer.b32.bf16.r0"]
    assert sweep[0].tf32 and not sweep[0].autotune


def test_an_unknown_precision_is_a_one_line_error_naming_the_choices(fakes):
    code, _, err = cli("run", "-f", "numpy", "-w", "xor", "--precision", "fp32,fp8")
    assert code == 2
    assert one_line(err).endswith("--precision: unknown precision 'fp8'; choose from: fp32, bf16, mixed-bf16, fp16, "
                                  "mixed-fp16 (several as fp32,mixed-bf16)")
    for flag, value in (("--tf32", "maybe"), ("--autotune", "always")):
        code, _, err = cli("run", "-f", "numpy", "-w", "xor", flag, value)
        assert code == 2 and f"invalid choice: '{value}'" in one_line(err)
    assert options_problem(_options(precisions=("fp8",))) == "precisions: 'fp8' is not one of " + ", ".join(PRECISIONS)


def test_a_reduced_precision_must_show_its_rounding_and_stay_within_it():
    assert forward_bounds("fp32", FORWARD_TOLERANCE) == (0.0, FORWARD_TOLERANCE)
    low, high = forward_bounds("mixed-bf16", FORWARD_TOLERANCE)
    assert low == pytest.approx(0.02 * 2**-8) and high == pytest.approx(16 * 2**-8)
    assert forward_problem(3e-3, "mixed-bf16", FORWARD_TOLERANCE) is None  # about 0.8 u: what bf16 gives
    assert forward_problem(3e-3, "fp32", FORWARD_TOLERANCE).startswith("differ from the NumPy float32 reference")
    assert "the precision was not applied" in forward_problem(2e-7, "bf16", FORWARD_TOLERANCE)
    assert "fp16 allows up to" in forward_problem(0.5, "fp16", FORWARD_TOLERANCE)
    assert "allows up to" in forward_problem(float("nan"), "mixed-fp16", FORWARD_TOLERANCE)


def test_tf32_and_autotuning_reach_a_gpu_child_before_import_and_nothing_changes_on_a_cpu():
    assert numerics_environment(Numerics(), "cpu") == {}
    assert numerics_environment(Numerics(tf32=True), "cuda") == {}
    off = numerics_environment(Numerics(tf32=False, autotune=False), "cuda")
    assert off["NVIDIA_TF32_OVERRIDE"] == "0" and off["TF_CUDNN_USE_AUTOTUNE"] == "0"
    assert off["MXNET_CUDNN_AUTOTUNE_DEFAULT"] == "0"
    env = child_env("jax", "default", "cuda", 2, numerics=Numerics(autotune=False))
    assert env["XLA_FLAGS"].split() == ["--xla_cpu_multi_thread_eigen=true", "--xla_gpu_autotune_level=0"]
    assert "NVIDIA_TF32_OVERRIDE" not in child_env("jax", "default", "cpu", 2)


def test_an_inference_path_that_ignores_the_precision_is_an_error_record(fakes, tmp_path, data_dir):
    code, _, _ = cli("run", "-f", "numpy", "-w", "mnist_mlp", "--scenario", "infer", "--batch-size", "8",
                     "--precision", "mixed-bf16", "--profile", "smoke", "--threads", "1", "--out", str(tmp_path))
    assert code == 1
    (record,) = run_records(tmp_path).values()
    assert record.precision == "mixed-bf16" and record.status == "error"
    assert "closer than mixed-bf16's rounding allows" in record.reason and "the precision was not applied" in record.reason


@pytest.mark.framework
def test_mixed_bf16_trials_apply_each_frameworks_own_mechanism(tmp_path, data_dir):
    code, out, err = cli("run", *framework_args(["pytorch", "tensorflow", "jax", "keras:torch"]), "-w", "xor",
                         "--precision", "mixed-bf16,mixed-fp16", "--profile", "smoke", "--threads", "1",
                         "--out", str(tmp_path))
    assert code == 0, err
    records = {(r.label, r.precision): r for r in run_records(tmp_path).values()}
    assert len(records) == 8
    expected = {"pytorch": "torch.autocast('cpu', dtype=torch.bfloat16)", "tensorflow": "cast to bfloat16",
                "jax": "cast to bfloat16 inside the jitted step", "keras:torch": "Keras dtype policy 'mixed_bfloat16'"}
    for label, mechanism in expected.items():
        r = records[label, "mixed-bf16"]
        assert r.status == "ok" and r.settings["precision"].startswith("mixed-bf16: "), (label, r.reason)
        assert mechanism in r.settings["precision"], r.settings["precision"]
        assert r.settings["tf32"] == "off (no effect on a CPU)" and r.settings["conv_autotune"].startswith("on")
        assert r.trial_id.endswith(".mixed-bf16.r0")
    # float16 with loss scaling: the framework's own, or skipped where it has none.
    assert "GradScaler" in records["pytorch", "mixed-fp16"].settings["precision"]
    assert "LossScaleOptimizer" in records["keras:torch", "mixed-fp16"].settings["precision"]
    for label, why in (("jax", "JAX has none of its own"), ("tensorflow", "only as a Keras optimizer wrapper")):
        r = records[label, "mixed-fp16"]
        assert r.status == "skipped" and why in r.reason
    assert "xor · mixed-bf16 on xor" in out and "Precision: xor on xor" in out


def _record(label: str, precision: str, rate: float, accuracy: float, applied: str) -> TrialRecord:
    suffix = "" if precision == "fp32" else f".{precision}"
    return TrialRecord(
        schema_version=SCHEMA_VERSION, trial_id=f"mnist_mlp.mnist.{label}.default{suffix}.r0", run_id="r",
        framework=label, variant="default", label=label, workload="mnist_mlp", dataset="mnist", profile="quick",
        device="cpu", threads=2, seed=0, repeat=0, status="ok", batch_size=128, precision=precision,
        settings={"precision": f"{precision}: {applied}"}, first_block=Block(0, 0, 1, 0.05),
        blocks=[Block(0, 1 + 10 * k, 10, 10 * 128 / (rate * w)) for k, w in enumerate([0.98, 1.0, 1.02, 1.0, 0.99])],
        target_accuracy=0.97, final_test_accuracy=accuracy, train_flops_per_sample=2_000_000, machine_gflops=100.0)


def test_reports_give_each_precision_its_table_and_compare_it_with_the_frameworks_own_fp32(tmp_path):
    records = [_record("eager", "fp32", 20_000.0, 0.975, "float32"),
               _record("eager", "mixed-bf16", 30_000.0, 0.974, "autocast to bfloat16, float32 parameters"),
               _record("graph", "fp32", 40_000.0, 0.976, "float32"),
               _record("graph", "mixed-bf16", 20_000.0, 0.973, "float32 variables cast to bfloat16")]
    frame = summarize(records, peak_for=lambda r: 100.0)
    assert list(frame["case"].unique()) == ["mnist_mlp", "mnist_mlp · mixed-bf16"]
    markdown = render_markdown(frame, records, [None])
    assert "### mnist_mlp · mixed-bf16 on mnist" in markdown and "## Precision" in markdown
    assert "| eager       | mixed-bf16  | ok       | 30,000      | 1.50×         | 0.9740 ✓   | autocast to bfloat16, " \
           "float32 parameters |" in markdown
    assert "| graph       | mixed-bf16  | ok       | 20,000      | 0.50×" in markdown
    # One precision alone, float32: no precision section.
    alone = summarize(records[::2], peak_for=lambda r: 100.0)
    assert "## Precision" not in render_markdown(alone, records[::2], [None])
    # A record written before precisions existed reads as float32.
    old = {k: v for k, v in records[0].to_dict().items() if k != "precision"}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    from harness.schema import load_record
    assert load_record(path).precision == "fp32"
