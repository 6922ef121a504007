"""The inference scenario and the sweeps (batch size, width): the plan, the child's inference loop
with its check against the NumPy reference, real frameworks' inference paths, and the scaling
section of the reports (tables, crossovers, CSV)."""
from __future__ import annotations

import json

import pytest

from harness.plan import INFER_BATCH_SIZES, RunOptions, options_problem, plan
from harness.record import SCHEMA_VERSION, Block, TrialRecord
from harness.trial import MIN_LATENCY_CALLS
from reports import scaling
from reports.aggregate import summarize
from reports.summary import render_markdown, write_reports
from tests.conftest import framework_args, run_records
from tests.test_faults import cli, one_line
from workloads import get_workload
from workloads.profiles import PROFILES


def _options(**changes) -> RunOptions:
    base = dict(frameworks=("pytorch", "tensorflow"), workloads=("mnist_mlp",), dataset="mnist", profile="quick",
                device="cpu", threads=1, seed=0, repeats=1, data_dir=None, cache_dir=None, timeout_s=None)
    return RunOptions(**{**base, **changes})


def test_a_sweep_plan_has_one_trial_per_point_framework_and_repeat():
    trials = plan(_options(widths=(128, 512, 2048), batch_sizes=(32, 512), repeats=2))
    assert len(trials) == 2 * 3 * 2 * 2 and len({t.trial_id for t in trials}) == len(trials)
    assert [t.repeat for t in trials] == [0] * 12 + [1] * 12  # repeats outermost, interleaved
    points = {(t.batch_size, t.width) for t in trials}
    assert points == {(32, 128), (32, None), (32, 2048), (512, 128), (512, None), (512, 2048)}  # 512 is its own width
    assert "mnist_mlp.mnist.pytorch.default.b32.w128.r0" in {t.trial_id for t in trials}
    assert "mnist_mlp.mnist.tensorflow.default.b512.r1" in {t.trial_id for t in trials}
    # The workload's own batch size in a training sweep is its ordinary trial (same id as any run's).
    ids = {t.trial_id for t in plan(_options(batch_sizes=(32, 128)))}
    assert ids == {f"mnist_mlp.mnist.{f}.default.{p}r0" for f in ("pytorch", "tensorflow") for p in ("b32.", "")}


def test_inference_defaults_to_batches_1_32_1024_and_xor_keeps_its_one_shape():
    trials = plan(_options(frameworks=("pytorch",), workloads=("xor", "mnist_mlp"), scenarios=("train", "infer"),
                           widths=(256,)))
    got = [(t.workload, t.scenario, t.batch_size, t.width) for t in trials]
    assert got == [("xor", "train", None, None), *[("xor", "infer", b, None) for b in INFER_BATCH_SIZES],
                   ("mnist_mlp", "train", None, 256), *[("mnist_mlp", "infer", b, 256) for b in INFER_BATCH_SIZES]]
    assert trials[1].trial_id == "xor.xor.pytorch.default.infer.b1.r0"


def test_a_width_for_workloads_without_one_and_bad_sizes_are_one_line_errors(fakes):
    assert "none of the workloads (xor) has a width axis" in options_problem(_options(workloads=("xor",), widths=(64,)))
    code, _, err = cli("run", "-f", "numpy", "-w", "xor", "--width", "64")
    assert code == 2 and one_line(err).startswith("bench.py: error: --width: none of the workloads (xor) has a width "
                                                  "axis; use mnist_mlp, mnist_cnn")
    for args, message in ((["--batch-size", "0"], "0 is out of range"), (["--width", "12x"], "'12x' is not a whole"),
                          (["--scenario", "serve"], "unknown scenario 'serve'; choose from: train, infer")):
        code, _, err = cli("run", "-f", "numpy", "-w", "mnist_mlp", *args)
        assert code == 2 and message in one_line(err), err


def test_a_width_resizes_the_hidden_layers_and_everything_that_follows():
    mlp = get_workload("mnist_mlp").resized(width=2048, batch_size=32)
    assert mlp.width == 2048 and mlp.batch_size == 32
    assert mlp.param_count() == 784 * 2048 + 2048 + 2048 * 2048 + 2048 + 2048 * 10 + 10
    assert mlp.forward_flops() == 2 * (784 * 2048 + 2048 * 2048 + 2048 * 10)
    assert [w.shape for w in mlp.init_weights(0)][2] == (2048, 2048)
    cnn = get_workload("mnist_cnn").resized(width=128)
    assert [layer.filters for layer in cnn.layers if layer.kind == "conv2d"] == [64, 128]
    assert [layer.units for layer in cnn.layers if layer.kind == "dense"] == [128, 10]  # the head stays
    with pytest.raises(ValueError, match="it has no width axis"):
        get_workload("xor").resized(width=16)
    with pytest.raises(ValueError, match="its batch is the whole dataset"):
        get_workload("xor").resized(batch_size=8)


def test_an_inference_trial_times_calls_checks_outputs_and_reports_latency(fakes, tmp_path, data_dir):
    code, out, err = cli("run", "-f", "numpy", "-w", "mnist_mlp", "--scenario", "infer", "--batch-size", "1,32",
                         "--width", "64", "--profile", "smoke", "--threads", "1", "--out", str(tmp_path))
    assert code == 0, err
    records = run_records(tmp_path)
    assert set(records) == {"mnist_mlp.mnist.numpy.default.infer.b1.w64.r0", "mnist_mlp.mnist.numpy.default.infer.b32.w64.r0"}
    spec = get_workload("mnist_mlp").resized(width=64)
    for r in records.values():
        assert r.status == "ok" and r.scenario == "infer" and r.width == 64
        assert len(r.blocks) == PROFILES["smoke"].infer_blocks and r.first_block.steps == 1
        assert len(r.latencies_s) >= MIN_LATENCY_CALLS
        assert r.reference_error < 1e-6 and r.flops_per_sample == spec.forward_flops()
        assert not r.evaluations and r.final_test_accuracy is None
    assert {r.batch_size for r in records.values()} == {1, 32}
    assert "mnist_mlp · inference, batch 1, width 64 on mnist" in out and "call p50 / p90 / p99" in out
    assert "mnist_mlp inference on mnist, width 64: batch sweep" in out  # the sweep's table and verdict


def test_an_inference_path_that_returns_probabilities_is_an_error_record(fakes, tmp_path, data_dir):
    code, _, _ = cli("run", "-f", "probs", "-w", "xor", "--scenario", "infer", "--batch-size", "4",
                     "--profile", "smoke", "--threads", "1", "--out", str(tmp_path))
    assert code == 1
    (record,) = run_records(tmp_path).values()
    assert record.status == "error" and "the inference path's outputs differ from the NumPy float32 reference" in record.reason
    assert record.reference_error > 1e-4


@pytest.mark.framework
def test_real_inference_paths_in_trials(tmp_path, data_dir):
    chosen = ["pytorch", "jax", "keras:jax", "keras:torch-call"]
    code, _, err = cli("run", *framework_args(chosen), "-w", "mnist_mlp", "--scenario", "infer", "--batch-size", "48",
                       "--profile", "smoke", "--threads", "1", "--out", str(tmp_path / "infer"))
    assert code == 0, err
    records = list(run_records(tmp_path / "infer").values())
    assert len(records) == len(chosen) and all(r.status == "ok" for r in records), [(r.label, r.reason) for r in records]
    assert all(r.reference_error < 1e-4 and r.settings["inference"] and r.batch_size == 48 for r in records)
    assert "Model.predict" in next(r for r in records if r.label == "keras:jax").settings["inference"]
    # 256 smoke test samples make 5 staged batches of 48: Keras's one predict call per block wraps around.
    assert next(r for r in records if r.label == "keras:jax").blocks
    code, _, err = cli("run", "-f", "keras:torch-call", "-w", "xor", "--profile", "smoke", "--threads", "1",
                       "--out", str(tmp_path / "train"))
    (skipped,) = run_records(tmp_path / "train").values()
    assert code == 0 and skipped.status == "skipped" and "inference path only" in skipped.reason, err


def _sweep_records() -> list[TrialRecord]:
    """Inference records of two frameworks at three batch sizes: 'eager' leads at batch 1, 'bulk'
    from batch 32 on (far apart at 32, within a few percent at 1024)."""
    rates = {"eager": {1: 900.0, 32: 9_000.0, 1024: 40_800.0}, "bulk": {1: 300.0, 32: 20_000.0, 1024: 41_000.0}}
    out = []
    for label, by_batch in rates.items():
        for batch, rate in by_batch.items():
            wobble = [0.97, 1.0, 1.03, 0.99, 1.01, 1.0]
            out.append(TrialRecord(
                schema_version=SCHEMA_VERSION, trial_id=f"mnist_mlp.mnist.{label}.default.infer.b{batch}.r0",
                run_id="r", framework=label, variant="default", label=label, workload="mnist_mlp", dataset="mnist",
                profile="quick", device="cpu", threads=2, seed=0, repeat=0, status="ok", batch_size=batch,
                scenario="infer", width=512, flops_per_sample=2 * 669_696, first_block=Block(0, 0, 1, 0.05),
                blocks=[Block(0, 1 + 10 * k, 10, 10 * batch / (rate * w)) for k, w in enumerate(wobble)],
                latencies_s=[batch / rate] * 20, peak_rss_bytes=400 * 2**20, machine_gflops=100.0))
    return out


def test_the_scaling_section_names_where_the_fastest_changes(tmp_path):
    frame = summarize(_sweep_records(), peak_for=lambda r: 100.0)
    (sweep,) = scaling.sweeps(frame)
    assert sweep.axis == "batch_size" and sweep.points == [1, 32, 1024] and sweep.fixed == 512
    verdict = scaling.crossovers(sweep)
    assert verdict.startswith("The fastest framework changes at batch 32: eager at batch 1; bulk from batch 32 "
                              "to 1024.")
    assert "Not resolved at batch 1024 (bulk and eager within their intervals)" in verdict
    markdown = render_markdown(frame, _sweep_records(), [None])
    assert "## Scaling" in markdown and "| eager       | 900 (1.2%) |  9,000 (12.1%) |" in markdown
    assert verdict in markdown
    assert "### mnist_mlp · inference, batch 32 on mnist" in markdown
    run = tmp_path / "run"
    (run / "records").mkdir(parents=True)
    for record in _sweep_records():
        (run / "records" / f"{record.trial_id}.json").write_text(json.dumps(record.to_dict()))
    written = write_reports([run], tmp_path / "report", ("csv", "md"))
    figure = tmp_path / "report" / "scaling-mnist_mlp-infer-mnist.svg"
    assert figure.read_text().startswith("<svg") and f"]({figure.name})" in written["md"].read_text()
    lines = written["scaling csv"].read_text().splitlines()
    assert lines[0].startswith("sweep,workload,dataset,scenario,precision,axis,point") and len(lines) == 1 + 6
    assert sum(line.endswith(",True") for line in lines) == 3  # one fastest per point


def test_a_single_shape_gives_no_scaling_section():
    from tests.test_reports import GOLDEN
    from reports.load import load_runs

    frame, records, manifests = load_runs([GOLDEN])
    assert not scaling.sweeps(frame) and "## Scaling" not in render_markdown(frame, records, manifests)
