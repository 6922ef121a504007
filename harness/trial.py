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
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

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
from workloads.profiles import get_profile
from workloads.spec import WorkloadSpec, batch_order

log = logging.getLogger("harness.trial")

TARGET_BLOCK_SECONDS = 0.2  # steady-state blocks grow to about this long
# When training ends is the profile's rule (workloads.profiles): at its target or budget (quick), after
# its steady-state blocks (ci), or at the workload's epochs.
# Test-set evaluations (untimed) run in batches of 128, the workloads' training batch: on the CNN
# one evaluation of 10,000 images took, against batches of 1000, 1.6 s instead of 2.9 (PyTorch),
# 4.5 instead of 6.1 (Keras on torch), 3.8 instead of 4.8 (Theano), 2.8 instead of 3.1 (MXNet), and
# 0.1 s more on TensorFlow and JAX (1.3-1.4 s): 12 s less per default run.
EVAL_BATCH = 128
PROGRESS_INTERVAL_S = 1.0
# Inference (scenario infer): the model from the spec's weights, its inference path called on
# staged test inputs (tiled where the test set is smaller than a batch). Throughput: blocks of calls
# between two barriers, until the profile's `infer_blocks` steady-state blocks are timed, the first
# call (tracing, compilation) apart and calls in the first INFER_WARMUP_SECONDS after it kept as
# warm-up. Latency: then single calls, each between barriers and including the outputs' copy to the
# host, until the profile's `latency_calls` calls or `latency_s` seconds (at least MIN_LATENCY_CALLS).
INFER_SAMPLES = 4096  # staged inputs at most (a batch at least)
INFER_WARMUP_SECONDS = 0.5
MIN_LATENCY_CALLS = 10
LAUNCHED_AT_VAR = "BENCH_LAUNCHED_AT"  # the parent's time.time() when it started this process
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


class Stopwatch:
    """Seconds by phase of the trial (harness.record.PHASES), summed over every time a phase ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, phase: str, seconds: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(phase, time.perf_counter() - start)


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
          progress: Progress, clock: Stopwatch | None = None) -> None:
    """The measured training loop. Blocks never span a re-staging of data or an evaluation. It ends
    where the profile's rule says (workloads.profiles.Profile.stop), else at the workload's epochs."""
    clock = clock or Stopwatch()
    profile = get_profile(trial.profile)
    n_train, spe = len(data.x_train), len(data.x_train) // spec.batch_size
    if spe == 0:
        raise ValueError(f"{n_train} training samples make no full batch of {spec.batch_size}")
    epochs = spec.epochs[trial.profile]
    total = epochs * spe
    target = spec.target_for(trial.dataset)
    record.batch_size, record.train_samples, record.test_samples = spec.batch_size, n_train, len(data.x_test)
    record.steps_per_epoch, record.epochs, record.target_accuracy = spe, epochs, target
    record.budget_s = trial.budget_s

    def evaluation(step: int) -> None:
        with clock("evaluation"):
            acc = evaluate(adapter, spec, data)
        record.evaluations.append(Evaluation(step=step, epoch=step / spe, train_seconds=train_seconds,
                                             test_accuracy=acc))
        if record.steps_to_target is None and acc >= target:
            record.steps_to_target, record.time_to_target_s = step, train_seconds

    step, train_seconds, block_size, stop = 0, 0.0, 1, None
    while step < total and stop is None:
        epoch, i = divmod(step, spe)
        if i == 0 and (spec.shuffle or step == 0):
            # The last epoch's batches go before this one's are made, and the harness keeps none:
            # at most one staged epoch (and, while copying, its source) is alive at a time.
            with clock("staging"):
                adapter.unstage()
                x, y = data.epoch(batch_order(trial.seed, epoch, n_train, spec.shuffle))
                adapter.stage(x, y)
                del x, y
        next_eval = _next_eval(spec, step, spe, total, record.steps_to_target is not None)
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
            clock.add("first step", seconds)
        else:
            warming = train_seconds - record.first_block.seconds < profile.warmup_s
            (record.warmup_blocks if warming else record.blocks).append(block)
            block_size = next_block_size(n, seconds)
            clock.add("timed", seconds)
        train_seconds += seconds
        step += n
        record.step_losses.extend(adapter.loss_values(handles))

        if step == next_eval and step < total:
            evaluation(step)
        stop = profile.stop(record.steps_to_target is not None, len(record.blocks), train_seconds, trial.budget_s)
        progress(step=step, total=total, epoch=step / spe, epochs=epochs,
                 accuracy=record.evaluations[-1].test_accuracy if record.evaluations else None)
    record.stopped_by = stop or "epochs"
    if not record.evaluations or record.evaluations[-1].step != step:
        evaluation(step)
    record.final_test_accuracy = record.evaluations[-1].test_accuracy
    with clock("latency"):
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
          record: TrialRecord, progress: Progress, clock: Stopwatch | None = None) -> None:
    """The measured inference loop (see INFER_SAMPLES and what follows it)."""
    clock = clock or Stopwatch()
    profile = get_profile(trial.profile)
    batch = spec.batch_size
    n_batches = max(1, min(len(data.x_test), INFER_SAMPLES) // batch)
    with clock("staging"):
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
    clock.add("first step", record.first_block.seconds)
    with clock("evaluation"):
        record.reference_error = reference.relative_error(reference.forward(spec, weights, reference_inputs),
                                                          np.asarray(adapter.outputs(handle))[:rows])
    problem = forward_problem(record.reference_error, trial.precision, reference.FORWARD_TOLERANCE)
    if problem:
        raise RuntimeError(f"the inference path's outputs {problem}")

    calls, block_size, timed, wanted = 1, 1, 0.0, profile.infer_blocks
    while len(record.blocks) < wanted:
        adapter.synchronize()
        t0 = time.perf_counter()
        handles = adapter.infer_block(calls % n_batches, block_size)
        adapter.wait(handles)
        seconds = time.perf_counter() - t0
        block = Block(epoch=0, first_step=calls, steps=block_size, seconds=seconds)
        (record.warmup_blocks if timed < INFER_WARMUP_SECONDS else record.blocks).append(block)
        clock.add("timed", seconds)
        del handles
        timed += seconds
        calls += block_size
        block_size = next_block_size(block_size, seconds)
        progress(step=len(record.blocks), total=wanted, epoch=len(record.blocks) / wanted, epochs=1)
    record.stopped_by = "blocks"

    with clock("latency"):
        deadline = time.perf_counter() + profile.latency_s
        for k in range(profile.latency_calls):
            adapter.synchronize()
            t0 = time.perf_counter()
            adapter.outputs(adapter.infer((calls + k) % n_batches))
            record.latencies_s.append(time.perf_counter() - t0)
            if k + 1 >= MIN_LATENCY_CALLS and time.perf_counter() > deadline:
                break
    progress(force=True, step=len(record.blocks), total=len(record.blocks), epoch=1, epochs=1)


def run(trial: TrialSpec, record: TrialRecord, progress: Progress, clock: Stopwatch | None = None) -> None:
    clock = clock or Stopwatch()
    info = FRAMEWORKS.get(trial.framework)
    if trial.scenario == "train" and info and trial.variant in info.inference_only:  # before any import
        raise SkipTrial(f"{trial.label} is an inference path only; it has no training (use --scenario infer)")
    with clock("import"):
        try:
            adapter_cls = load_adapter_class(trial.adapter)
        except ModuleNotFoundError as exc:
            raise SkipTrial(f"{exc.name} is not installed for {sys.executable}") from exc
        record.rss_after_import_bytes = current_rss_bytes()
        record.settings["compile_cache"] = os.environ.get("BENCH_COMPILE_CACHE",
                                                          "as configured (not set by the harness)")
        adapter: Adapter = adapter_cls(trial.variant, trial.device, trial.threads, trial.numerics)
        record.settings.update(adapter.setup())
        record.device = adapter.device
        record.versions = {**environment_versions(trial.framework, trial.variant), **adapter.versions(),
                           "numpy": np.__version__, "python": platform.python_version()}
    env = environment_of(trial.framework, trial.variant) if trial.framework in FRAMEWORKS else None
    record.settings.update(environment=env.name if env else MAIN_ENVIRONMENT, python_executable=sys.executable)
    spec = get_workload(trial.workload).resized(width=trial.width, batch_size=trial.batch_size)
    record.scenario, record.width = trial.scenario, spec.width
    with clock("data"):
        data = training_data(spec, trial.dataset, trial.profile, trial.data_dir, trial.cache_dir, download=False)
    with clock("build"):
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
        infer(adapter, spec, data, weights, trial, record, progress, clock)
    else:
        train(adapter, spec, data, trial, record, progress, clock)
    record.device_peak_bytes = adapter.device_memory_peak()


def _since_launch() -> float | None:
    """Seconds from the parent's launch of this process (LAUNCHED_AT_VAR) to now, where it says."""
    try:
        return max(0.0, time.time() - float(os.environ[LAUNCHED_AT_VAR]))
    except (KeyError, ValueError):
        return None


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
    started = _since_launch()
    spec_path, record_path, progress_path, run_id = argv
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    trial = TrialSpec.from_dict(json.loads(Path(spec_path).read_text()))
    record = TrialRecord.not_run(trial, run_id, status="error", reason="")
    record.started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    start = time.perf_counter()
    signal.signal(signal.SIGTERM, _stop_requested)
    record.settings["cpu_affinity"] = pin_to_cores(trial.threads)  # before any framework starts threads
    record.settings["malloc"] = malloc_in_effect()
    clock = Stopwatch()
    try:
        run(trial, record, Progress(progress_path), clock)
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
    record.phases = {**({"start": started} if started is not None else {}), **clock.seconds,
                     "other": max(0.0, record.wall_seconds - sum(clock.seconds.values()))}
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
