"""Statistics from raw records: one row per case (workload, scenario, batch size, width, precision),
dataset and framework:variant, repeats pooled."""
from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from adapters import FRAMEWORKS
from adapters.numerics import DEFAULT_PRECISION, PRECISIONS
from harness.record import TrialRecord
from reports.stats import Noise, median_ci, pooled_noise, process_interval
from workloads import WORKLOADS

COLUMNS = ["workload", "case", "scenario", "batch_size", "width", "precision", "dataset", "label", "version", "status",
           "reason", "repeats", "processes", "throughput", "throughput_interval", "throughput_low", "throughput_high",
           "throughput_q1", "throughput_q3",
           "throughput_sustained", "steps_per_s", "first_block_s", "latency_p50_s", "latency_p90_s", "latency_p99_s",
           "test_accuracy", "best_test_accuracy", "target_accuracy", "target_reached", "steps_to_target",
           "time_to_target_s", "to_target", "trained_s", "budget_s", "stopped_by",
           "rss_after_import_bytes", "rss_after_build_bytes", "peak_rss_bytes", "training_memory_bytes",
           "device_peak_bytes", "device_process_peak_bytes", "flops_per_sample", "gflops", "peak_gflops", "peak_fraction",
           "param_count", "blocks",
           "machine_gflops", "precision_applied"]

# What the interval around a median means (column throughput_interval): with repeats, a 95%
# confidence interval that includes the spread between processes; with one process, only the
# spread inside that run, which covers the level another run would measure far less often (11-17%
# of the time at 5-10% process-to-process noise, simulated), so it is not called a CI.
CI_95 = "95% CI"
WITHIN_RUN = "within-run spread"
MIN_BLOCKS_FOR_INTERVAL = 5  # fewer blocks give no interval (two gave a zero-width one)


BUSY_FRACTION = 0.5  # a machine probe under this share of the run's median: something else held the machine


def busy_machine(records: list[TrialRecord]) -> list[TrialRecord]:
    """The trials that started while the machine ran at under BUSY_FRACTION of its median speed
    over these records (`machine_gflops`). A 0.3 s probe also catches blips (0.54 seen on a quiet
    run), so this marks suspects, not proven disturbances."""
    speeds = [r.machine_gflops for r in records if r.machine_gflops]
    median = float(np.median(speeds)) if speeds else 0.0
    return [r for r in records if r.machine_gflops and r.machine_gflops < BUSY_FRACTION * median]


def block_throughputs(record: TrialRecord) -> np.ndarray:
    """Samples per second of each steady-state block."""
    if not record.blocks or not record.batch_size:
        return np.array([])
    return np.array([b.steps * record.batch_size / b.seconds for b in record.blocks if b.seconds > 0])


def sustained_throughput(*records: TrialRecord) -> float | None:
    """All timed samples over all timed seconds (blocks of every record): the figure a plain
    loop around the whole training prints; beside the median, it shows what slow blocks cost
    (a framework with periodic stalls has a median above its sustained rate)."""
    seconds = sum(b.seconds for r in records for b in r.blocks)
    samples = sum(b.steps * r.batch_size for r in records if r.batch_size for b in r.blocks)
    return samples / seconds if seconds > 0 and samples else None


def framework_version(record: TrialRecord) -> str | None:
    """The framework's own version (and the Keras backend's), from the record's versions."""
    info = FRAMEWORKS.get(record.framework)
    names = (*(info.distributions if info else ()), record.framework)
    main = next((record.versions[n] for n in names if n in record.versions), None)
    if record.framework == "keras" and main:
        backend = record.variant.partition("-")[0]
        backend_version = record.versions.get(backend)
        return f"{main} ({backend} {backend_version})" if backend_version else main
    return main


def throughput_ci(per_process: list[np.ndarray], noise: Noise) -> tuple[float, float]:
    """95% interval of a trial's throughput: the hierarchical block bootstrap of the pooled median,
    widened to the Student-t interval of the per-process medians when there is between-process
    spread to go on (see `reports.stats`)."""
    low, high = median_ci(per_process)
    between = process_interval(per_process, noise)
    return (min(low, between[0]), max(high, between[1])) if between else (low, high)


def _median(values: list[float | int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.median(present)) if present else None


def _most_common(values: list[str]) -> str | None:
    return max(sorted(set(values)), key=values.count) if values else None


def time_to_target(records: list[TrialRecord]) -> tuple[int, float | None, int | None]:
    """(repeats that reached the target, median seconds, steps of that same repeat). A repeat that
    never reached it counts as infinitely slow, so the median is None (not reached) when fewer than
    half reached it; the steps and seconds shown come from one repeat (the lower median)."""
    reached = sorted((r.time_to_target_s, r.steps_to_target) for r in records if r.time_to_target_s is not None)
    times = [t for t, _ in reached] + [math.inf] * (len(records) - len(reached))
    if not times:
        return 0, None, None
    middle = (len(times) - 1) // 2
    return (len(reached), None, None) if math.isinf(times[middle]) else (len(reached), *reached[middle])


def trained_seconds(record: TrialRecord) -> float | None:
    """Timed training seconds of the whole trial: the first block, warm-up and steady-state blocks
    (the clock of time to target and of the budget; evaluations and latency sampling excluded)."""
    if record.first_block is None or record.scenario != "train":
        return None
    return record.first_block.seconds + sum(b.seconds for b in record.warmup_blocks + record.blocks)


def best_accuracy(record: TrialRecord) -> float | None:
    """The highest test accuracy of any of the trial's evaluations."""
    return max((e.test_accuracy for e in record.evaluations), default=None)


def to_target_text(reached: int, processes: int, seconds: float | None, steps: int | None, trained: float | None,
                   best: float | None) -> str:
    """The "to target" cell, in every format: seconds and steps to the target (the median repeat's),
    or "not reached in N s (best A)" with the timed training seconds the trial had and the best
    accuracy it got; with repeats, how many reached it."""
    out_of = f", {reached} of {processes}" if processes > 1 else ""
    if steps is not None and seconds is not None:
        return f"{format_seconds(seconds)} ({steps:,} steps{out_of})"
    budget = f" in {trained:,.0f} s" if trained is not None else ""
    detail = ", ".join(([f"best {best:.4f}"] if best is not None else []) + ([out_of[2:]] if out_of else []))
    return f"not reached{budget}" + (f" ({detail})" if detail else "")


def format_seconds(value: float) -> str:
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def training_memory(record: TrialRecord) -> int | None:
    """What training itself added to the process: peak RSS minus RSS once the model was built
    (which holds the framework, the dataset and the model)."""
    if record.peak_rss_bytes is None or record.rss_after_build_bytes is None:
        return None
    return max(0, record.peak_rss_bytes - record.rss_after_build_bytes)


def shape_of(record: TrialRecord) -> tuple[str, int | None, int | None, str]:
    """(scenario, batch size, width, precision) of a record, the workload's own filled in where a
    record does not say (one that was never run; one written before sweeps existed)."""
    spec = WORKLOADS.get(record.workload)
    batch = record.batch_size or (spec.batch_size if spec else None)
    width = record.width or (spec.width if spec else None)
    return record.scenario, batch, width, record.precision


def case_name(workload: str, scenario: str, batch: int | None, width: int | None,
              precision: str = DEFAULT_PRECISION) -> str:
    """What a table is about: 'mnist_mlp', 'mnist_mlp · inference, batch 32', 'mnist_mlp · batch 512, width 2048',
    'mnist_mlp · mixed-bf16' (the workload's own batch size and width, and fp32, go unsaid in training)."""
    spec = WORKLOADS.get(workload)
    parts = ["inference"] if scenario == "infer" else []
    if batch is not None and (scenario == "infer" or spec is None or batch != spec.batch_size):
        parts.append(f"batch {batch}")
    if width is not None and (spec is None or width != spec.width):
        parts.append(f"width {width}")
    if precision != DEFAULT_PRECISION:
        parts.append(precision)
    return workload + (" · " + ", ".join(parts) if parts else "")


def record_case(record: TrialRecord) -> str:
    """The case (table) a record belongs to: `case_name` of its workload and shape."""
    return case_name(record.workload, *shape_of(record))


def machine_label(record: TrialRecord) -> str:
    """A row's label when a report holds several kinds of machine: the variant and its machine's
    fingerprint, so that figures from different hardware are never pooled."""
    return f"{record.label} [{record.node.fingerprint[:6]}]" if record.node else f"{record.label} [?]"


def summarize(records: Iterable[TrialRecord],
              peak_for: Callable[[TrialRecord], float | None] | None = None) -> pd.DataFrame:
    """`peak_for(record)`: the matmul rate measured on that record's machine at its thread count
    (reports.load.peak_lookup), for the fraction of peak; None where there is none to divide by."""
    records = list(records)
    groups: dict[tuple, list[TrialRecord]] = {}
    by_machine = len({r.node.fingerprint for r in records if r.node}) > 1
    for r in records:
        groups.setdefault((r.workload, *shape_of(r), r.dataset, machine_label(r) if by_machine else r.label),
                          []).append(r)
    rates = {id(r): block_throughputs(r) for group in groups.values() for r in group if r.status == "ok"}
    rates = {key: value for key, value in rates.items() if value.size}  # ok processes with timed blocks
    # The pooled spread is the run's ordinary process-to-process noise: a process that started on a
    # busy machine stays in its own trial (widening its interval) but not in the pool, where it
    # would widen every trial's (one at 4% of its repeats' speed was seen).
    suspects = {id(r) for r in busy_machine([r for group in groups.values() for r in group])}
    noise = pooled_noise([[rates[id(r)] for r in group if id(r) in rates and id(r) not in suspects]
                          for group in groups.values()])
    rows = []
    for (workload, scenario, batch, width, precision, dataset, label), group in groups.items():
        ok = [r for r in group if r.status == "ok"]
        failed = [r for r in group if r.status != "ok"]
        per_process = [rates[id(r)] for r in ok if id(r) in rates]
        pooled = np.concatenate(per_process) if per_process else np.array([])
        median = float(np.median(pooled)) if pooled.size else None
        interval = "" if pooled.size < MIN_BLOCKS_FOR_INTERVAL else CI_95 if len(per_process) > 1 else WITHIN_RUN
        low, high = throughput_ci(per_process, noise) if interval else (None, None)
        reached, seconds_to_target, steps_to_target = time_to_target(ok)
        trained, best = _median([trained_seconds(r) for r in ok]), _median([best_accuracy(r) for r in ok])
        peak = _median([peak_for(r) for r in ok]) if peak_for and ok else None
        q1, q3 = np.percentile(pooled, [25, 75]) if pooled.size else (None, None)
        latencies = np.concatenate([np.asarray(r.latencies_s, dtype=float) for r in ok]) if ok else np.array([])
        p50, p90, p99 = np.percentile(latencies, [50, 90, 99]) if latencies.size else (None, None, None)
        first = ok[0] if ok else None
        flops = (first.flops_per_sample or first.train_flops_per_sample) if first else None
        gflops = median * flops / 1e9 if median and flops else None
        status = "ok" if ok and not failed else (failed[0].status if not ok else f"ok {len(ok)}/{len(group)}")
        rows.append({
            "workload": workload, "case": case_name(workload, scenario, batch, width, precision), "scenario": scenario,
            "batch_size": batch, "width": width, "precision": precision, "dataset": dataset, "label": label,
            "status": status,
            "version": framework_version(first or group[0]),
            "reason": "; ".join(sorted({r.reason for r in failed if r.reason})),
            "repeats": len(group), "processes": len(per_process),
            "throughput": median, "throughput_interval": interval, "throughput_low": low, "throughput_high": high,
            "throughput_q1": q1, "throughput_q3": q3, "throughput_sustained": sustained_throughput(*ok),
            "steps_per_s": median / first.batch_size if median and first.batch_size else None,
            "first_block_s": _median([r.first_block.seconds if r.first_block else None for r in ok]),
            "latency_p50_s": p50, "latency_p90_s": p90, "latency_p99_s": p99,
            "test_accuracy": _median([r.final_test_accuracy for r in ok]),
            "best_test_accuracy": best,
            "target_accuracy": first.target_accuracy if first else None,
            "target_reached": reached if ok else None,
            "steps_to_target": steps_to_target, "time_to_target_s": seconds_to_target,
            "to_target": to_target_text(reached, len(ok), seconds_to_target, steps_to_target, trained, best)
            if ok and first.target_accuracy is not None and scenario == "train" else None,
            "trained_s": trained, "budget_s": _median([r.budget_s for r in ok]),
            "stopped_by": _most_common([r.stopped_by for r in ok if r.stopped_by]),
            "rss_after_import_bytes": _median([r.rss_after_import_bytes for r in ok]),
            "rss_after_build_bytes": _median([r.rss_after_build_bytes for r in ok]),
            "peak_rss_bytes": _median([r.peak_rss_bytes for r in ok]),
            "training_memory_bytes": _median([training_memory(r) for r in ok]),
            "device_peak_bytes": _median([r.device_peak_bytes for r in ok]),
            "device_process_peak_bytes": _median([r.device_process_peak_bytes for r in ok]),
            "flops_per_sample": flops, "gflops": gflops, "peak_gflops": peak,
            "peak_fraction": gflops / peak if gflops and peak else None,
            "param_count": first.param_count if first else None,
            "blocks": int(pooled.size),
            "machine_gflops": _median([r.machine_gflops for r in group]),
            "precision_applied": (first.settings.get("precision") or "") if first else "",
        })
    return sort_cases(pd.DataFrame(rows, columns=COLUMNS))


def sort_cases(frame: pd.DataFrame) -> pd.DataFrame:
    """Workload by workload, training before inference, narrow to wide, small batches to large,
    precisions in PRECISIONS order; the fastest first within a case."""
    order = {name: i for i, name in enumerate(PRECISIONS)}
    rank = frame.assign(_infer=frame["scenario"].eq("infer"), _speed=-frame["throughput"].astype(float),
                        _precision=frame["precision"].map(order))
    rank = rank.sort_values(["workload", "dataset", "_infer", "width", "batch_size", "_precision", "_speed"],
                            na_position="last", kind="stable")
    return rank.drop(columns=["_infer", "_speed", "_precision"]).reset_index(drop=True)
