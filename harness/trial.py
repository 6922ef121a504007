"""The child side of a trial: `python -m harness.trial SPEC.json RECORD.json PROGRESS.json RUN_ID`.

Runs one adapter on one workload, timing blocks of steps with a device barrier around the clock,
and writes a TrialRecord whatever happens (what was measured before a failure is kept).
Standard library and NumPy only, besides the adapter's own framework.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import signal
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from adapters import (FRAMEWORKS, MAIN_ENVIRONMENT, environment_of, environment_versions,
                      load_adapter_class)
from adapters.base import Adapter, SkipTrial
from adapters.numerics import forward_problem
from harness.files import write_json
from harness import lifeline
from harness.allocator import malloc_in_effect
from harness.lifeline import tie_to_parent
from harness.measure import current_rss_bytes, peak_rss_bytes
from harness.record import Block, Evaluation, TrialRecord, TrialSpec
from harness.threads import pin_to_cores
from workloads import TrainingData, get_workload, reference, training_data
from workloads.spec import WorkloadSpec, batch_order

log = logging.getLogger("harness.trial")

TARGET_BLOCK_SECONDS = 0.2  # steady-state blocks grow to about this long
# The quick profile ends training at the first evaluation that reaches the target once this many
# steady-state blocks (about 6 s) are timed, or at its epochs: enough blocks for the median and its
# interval, and the target reached, are what its figures need; the full profile trains every epoch.
STOP_AT_TARGET_AFTER_BLOCKS = {"quick": 30}
# The ci profile is made for a regression gate: a few seconds a trial, steady state only. Blocks
# timed in its first WARMUP_SECONDS of training (after the first step) are kept apart
# (`warmup_blocks`: just-compiled code, caches and allocators settling, blocks still growing), and
# training ends once STEADY_BLOCKS steady-state blocks are timed, with a final evaluation.
WARMUP_SECONDS = {"ci": 1.0}
STEADY_BLOCKS = {"ci": 12}
# Test-set evaluations (untimed) run in batches of 128, the workloads' training batch: on the CNN
# one evaluation of 10,000 images took, against batches of 1000, 1.6 s instead of 2.9 (PyTorch),
# 4.5 instead of 6.1 (Keras on torch), 3.8 instead of 4.8 (Theano), 2.8 instead of 3.1 (MXNet), and
# 0.1 s more on TensorFlow and JAX (1.3-1.4 s): 12 s less per default run.
EVAL_BATCH = 128
PROGRESS_INTERVAL_S = 1.0
# Inference (scenario infer): the model from the spec's weights, its inference path called on
# staged test inputs (tiled where the test set is smaller than a batch). Throughput: blocks of calls
# between two barriers, until INFER_BLOCKS steady-state blocks are timed, the first call (tracing,
# compilation) apart and calls in the first INFER_WARMUP_SECONDS after it kept as warm-up. Latency:
# then single calls, each between barriers and including the outputs' copy to the host, until
# LATENCY_CALLS calls or LATENCY_SECONDS (at least MIN_LATENCY_CALLS).
INFER_SAMPLES = 4096  # staged inputs at most (a batch at least)
INFER_BLOCKS = {"smoke": 3, "ci": 12, "quick": 30, "full": 100}
INFER_WARMUP_SECONDS = 0.5
LATENCY_CALLS = {"smoke": 10, "ci": 50, "quick": 200, "full": 1000}
LATENCY_SECONDS = {"smoke": 1.0, "ci": 3.0, "quick": 5.0, "full": 20.0}
MIN_LATENCY_CALLS = 10
REFERENCE_ROWS = 16  # outputs of the first batch checked against the NumPy reference


def accuracy(spec: WorkloadSpec, logits: np.ndarray, labels: np.ndarray) -> float:
    if spec.output == "sigmoid":
        predicted = (logits[:, 0] > 0).astype(labels.dtype)
    else:
        predicted = logits.argmax(axis=1)
    return float((predicted == labels).mean())


def evaluate(adapter: Adapter, spec: WorkloadSpec, data: TrainingData) -> float:
    logits = np.concatenate([adapter.predict(data.inputs(data.x_test, slice(i, i + EVAL_BATCH)))
                             for i in range(0, len(data.x_test), EVAL_BATCH)])
    return accuracy(spec, logits, data.y_test)


class Progress:
    """Throttled progress file that the parent polls for its progress bar."""

    def __init__(self, path: str | None) -> None:
        self.path, self.last = path, 0.0

    def __call__(self, force: bool = False, **state: object) -> None:
        now = time.monotonic()
        if self.path and (force or now - self.last >= PROGRESS_INTERVAL_S):
            self.last = now
            write_json(self.path, {**state, "rss_bytes": current_rss_bytes()})


def next_block_size(steps: int, seconds: float) -> int:
    """Steps for the next timed block, so that it lasts about TARGET_BLOCK_SECONDS at the last rate."""
    return max(1, round(TARGET_BLOCK_SECONDS * steps / max(seconds, 1e-9)))


def _next_eval(spec: WorkloadSpec, step: int, spe: int, total: int, reached: bool) -> int:
    """The step count after which the next (untimed) evaluation happens."""
    points = [total]
    if spec.eval_every_steps:
        if not reached:
            points.append((step // spec.eval_every_steps + 1) * spec.eval_every_steps)
    else:
        chunk = max(1, spe // spec.evals_per_epoch)
        epoch_start = step - step % spe
        points.append(epoch_start + min(spe, ((step - epoch_start) // chunk + 1) * chunk))
    return min(points)


def train(adapter: Adapter, spec: WorkloadSpec, data: TrainingData, trial: TrialSpec, record: TrialRecord,
          progress: Progress) -> None:
    """The measured training loop. Blocks never span a re-staging of data or an evaluation."""
    n_train, spe = len(data.x_train), len(data.x_train) // spec.batch_size
    if spe == 0:
        raise ValueError(f"{n_train} training samples make no full batch of {spec.batch_size}")
    epochs = spec.epochs[trial.profile]
    total = epochs * spe
    target = spec.target_for(trial.dataset)
    record.batch_size, record.train_samples, record.test_samples = spec.batch_size, n_train, len(data.x_test)
    record.steps_per_epoch, record.epochs, record.target_accuracy = spe, epochs, target

    step, train_seconds, block_size, reached = 0, 0.0, 1, False
    while step < total:
        epoch, i = divmod(step, spe)
        if i == 0 and (spec.shuffle or step == 0):
            # The last epoch's batches go before this one's are made, and the harness keeps none:
            # at most one staged epoch (and, while copying, its source) is alive at a time.
            adapter.unstage()
            x, y = data.epoch(batch_order(trial.seed, epoch, n_train, spec.shuffle))
            adapter.stage(x, y)
            del x, y
        next_eval = _next_eval(spec, step, spe, total, reached)
        limit = min(next_eval, step - i + spe if spec.shuffle else total) - step
        n = 1 if step == 0 else min(block_size, limit)

        adapter.synchronize()
        t0 = time.perf_counter()
        handles = [adapter.train_step((step + k) % spe) for k in range(n)]
        adapter.synchronize()
        seconds = time.perf_counter() - t0

        block = Block(epoch=epoch, first_step=step, steps=n, seconds=seconds)
        if step == 0:
            record.first_block = block
        else:
            warming = train_seconds - record.first_block.seconds < WARMUP_SECONDS.get(trial.profile, 0.0)
            (record.warmup_blocks if warming else record.blocks).append(block)
            block_size = next_block_size(n, seconds)
        train_seconds += seconds
        step += n
        record.step_losses.extend(adapter.loss_values(handles))

        if step == next_eval:
            acc = evaluate(adapter, spec, data)
            record.evaluations.append(Evaluation(step=step, epoch=step / spe, train_seconds=train_seconds,
                                                 test_accuracy=acc))
            if not reached and acc >= target:
                reached = True
                record.steps_to_target, record.time_to_target_s = step, train_seconds
            enough = STOP_AT_TARGET_AFTER_BLOCKS.get(trial.profile)
            if reached and enough and len(record.blocks) >= enough and step < total:
                record.settings["stopped_at"] = (f"step {step} of {total} (epoch {step / spe:.2f} of {epochs}): the "
                                                 f"target was reached with {len(record.blocks)} steady-state blocks "
                                                 f"timed (the {trial.profile} profile's rule)")
                break
        progress(step=step, total=total, epoch=step / spe, epochs=epochs,
                 accuracy=record.evaluations[-1].test_accuracy if record.evaluations else None)
        if len(record.blocks) >= STEADY_BLOCKS.get(trial.profile, total + 1):
            record.settings["stopped_at"] = (f"step {step} of {total}: {len(record.blocks)} steady-state blocks "
                                             f"timed (the {trial.profile} profile's rule)")
            break
    if not record.evaluations or record.evaluations[-1].step != step:
        record.evaluations.append(Evaluation(step=step, epoch=step / spe, train_seconds=train_seconds,
                                             test_accuracy=evaluate(adapter, spec, data)))
    record.final_test_accuracy = record.evaluations[-1].test_accuracy
    measure_latency(adapter, spec, spe, record)
    progress(force=True, step=step, total=total, epoch=epochs, epochs=epochs,
             accuracy=record.final_test_accuracy)


def measure_latency(adapter: Adapter, spec: WorkloadSpec, spe: int, record: TrialRecord) -> None:
    """Steps timed one by one, each between two barriers, after training and its final
    evaluation (so they change no reported accuracy); for latency percentiles of short steps."""
    for k in range(spec.latency_steps):
        adapter.synchronize()
        t0 = time.perf_counter()
        adapter.train_step(k % spe)
        adapter.synchronize()
        record.latencies_s.append(time.perf_counter() - t0)


def infer(adapter: Adapter, spec: WorkloadSpec, data: TrainingData, weights: list[np.ndarray], trial: TrialSpec,
          record: TrialRecord, progress: Progress) -> None:
    """The measured inference loop (see INFER_SAMPLES and what follows it)."""
    batch = spec.batch_size
    n_batches = max(1, min(len(data.x_test), INFER_SAMPLES) // batch)
    x = data.inputs(data.x_test, np.arange(n_batches * batch) % len(data.x_test))
    record.batch_size, record.test_samples = batch, len(data.x_test)
    record.settings.update(adapter.stage_inference(x) or {})
    rows = min(batch, REFERENCE_ROWS)
    reference_inputs = x[:rows].copy()
    del x
    record.data_feeding = (f"{n_batches} device-resident batches of test inputs, staged untimed, called in turn; "
                           "outputs left on the device in throughput blocks, copied to the host in latency calls")

    adapter.synchronize()
    t0 = time.perf_counter()
    handle = adapter.infer(0)
    adapter.wait([handle])
    record.first_block = Block(epoch=0, first_step=0, steps=1, seconds=time.perf_counter() - t0)
    record.reference_error = reference.relative_error(reference.forward(spec, weights, reference_inputs),
                                                      np.asarray(adapter.outputs(handle))[:rows])
    problem = forward_problem(record.reference_error, trial.precision, reference.FORWARD_TOLERANCE)
    if problem:
        raise RuntimeError(f"the inference path's outputs {problem}")

    calls, block_size, timed, wanted = 1, 1, 0.0, INFER_BLOCKS[trial.profile]
    while len(record.blocks) < wanted:
        adapter.synchronize()
        t0 = time.perf_counter()
        handles = adapter.infer_block(calls % n_batches, block_size)
        adapter.wait(handles)
        seconds = time.perf_counter() - t0
        block = Block(epoch=0, first_step=calls, steps=block_size, seconds=seconds)
        (record.warmup_blocks if timed < INFER_WARMUP_SECONDS else record.blocks).append(block)
        del handles
        timed += seconds
        calls += block_size
        block_size = next_block_size(block_size, seconds)
        progress(step=len(record.blocks), total=wanted, epoch=len(record.blocks) / wanted, epochs=1)

    deadline = time.perf_counter() + LATENCY_SECONDS[trial.profile]
    for k in range(LATENCY_CALLS[trial.profile]):
        adapter.synchronize()
        t0 = time.perf_counter()
        adapter.outputs(adapter.infer((calls + k) % n_batches))
        record.latencies_s.append(time.perf_counter() - t0)
        if k + 1 >= MIN_LATENCY_CALLS and time.perf_counter() > deadline:
            break
    progress(force=True, step=len(record.blocks), total=len(record.blocks), epoch=1, epochs=1)


def run(trial: TrialSpec, record: TrialRecord, progress: Progress) -> None:
    info = FRAMEWORKS.get(trial.framework)
    if trial.scenario == "train" and info and trial.variant in info.inference_only:  # before any import
        raise SkipTrial(f"{trial.label} is an inference path only; it has no training (use --scenario infer)")
    try:
        adapter_cls = load_adapter_class(trial.adapter)
    except ModuleNotFoundError as exc:
        raise SkipTrial(f"{exc.name} is not installed for {sys.executable}") from exc
    record.rss_after_import_bytes = current_rss_bytes()
    record.settings["compile_cache"] = os.environ.get("BENCH_COMPILE_CACHE", "as configured (not set by the harness)")
    adapter: Adapter = adapter_cls(trial.variant, trial.device, trial.threads, trial.numerics)
    record.settings.update(adapter.setup())
    record.device = adapter.device
    record.versions = {**environment_versions(trial.framework, trial.variant), **adapter.versions(),
                       "numpy": np.__version__, "python": platform.python_version()}
    env = environment_of(trial.framework, trial.variant) if trial.framework in FRAMEWORKS else None
    record.settings.update(environment=env.name if env else MAIN_ENVIRONMENT, python_executable=sys.executable)
    spec = get_workload(trial.workload).resized(width=trial.width, batch_size=trial.batch_size)
    record.scenario, record.width = trial.scenario, spec.width
    data = training_data(spec, trial.dataset, trial.profile, trial.data_dir, trial.cache_dir, download=False)
    weights = spec.init_weights(trial.seed)
    record.settings.update(adapter.build(spec, weights) or {})
    record.param_count, record.spec_param_count = adapter.param_count(), spec.param_count()
    record.train_flops_per_sample = spec.train_flops()
    record.flops_per_sample = spec.forward_flops() if trial.scenario == "infer" else spec.train_flops()
    if record.param_count != record.spec_param_count:
        raise RuntimeError(f"{trial.label} built {record.param_count} parameters; the spec has "
                           f"{record.spec_param_count}")
    record.rss_after_build_bytes = current_rss_bytes()
    if trial.scenario == "infer":
        infer(adapter, spec, data, weights, trial, record, progress)
    else:
        train(adapter, spec, data, trial, record, progress)
    record.device_peak_bytes = adapter.device_memory_peak()


class Stopped(BaseException):
    """The parent asked the child to stop (time limit, interruption); what was measured is still written."""


def _stop_requested(signum: int, frame: object) -> None:
    raise Stopped()


def _first_to_go_when_memory_runs_out() -> None:
    """If the machine runs out of memory, the kernel should end this trial, not the harness that
    would record why (raising one's own OOM score needs no privilege)."""
    try:
        with open("/proc/self/oom_score_adj", "w") as fh:
            fh.write("1000")
    except OSError:
        pass


def main(argv: list[str]) -> int:
    tie_to_parent()
    _first_to_go_when_memory_runs_out()
    spec_path, record_path, progress_path, run_id = argv
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    trial = TrialSpec.from_dict(json.loads(Path(spec_path).read_text()))
    record = TrialRecord.not_run(trial, run_id, status="error", reason="")
    record.started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    start = time.perf_counter()
    signal.signal(signal.SIGTERM, _stop_requested)
    record.settings["cpu_affinity"] = pin_to_cores(trial.threads)  # before any framework starts threads
    record.settings["malloc"] = malloc_in_effect()
    try:
        run(trial, record, Progress(progress_path))
        record.status = "ok"
    except SkipTrial as exc:
        record.status, record.reason = "skipped", str(exc)
    except Stopped:
        record.status, record.reason = "timeout", "stopped by the harness at its time limit"
    except Exception as exc:  # noqa: BLE001 - every failure becomes a record
        traceback.print_exc()
        record.status, record.reason = "error", f"{type(exc).__name__}: {exc}"
    record.peak_rss_bytes = peak_rss_bytes()
    record.wall_seconds = time.perf_counter() - start
    record.finished_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        write_json(record_path, record.to_dict())
    except OSError as exc:  # a full disk: the parent makes an error record of this line
        print(f"harness.trial: cannot write the trial's record to {record_path}: {exc.strerror or exc}",
              file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    lifeline.leave(main(sys.argv[1:]))
