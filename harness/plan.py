"""Turn a user's selection into the ordered list of trials of a run."""
from __future__ import annotations

import math
from dataclasses import dataclass

from adapters import FRAMEWORKS, default_selection, label, parse_selection
from harness.record import EXECUTORS, TrialSpec
from harness.threads import usable_cores
from workloads import IMAGE_DATASETS, WORKLOADS, dataset_for, get_workload
from workloads.spec import PROFILES

DEFAULT_TIMEOUT_S = {"smoke": 300.0, "ci": 300.0, "quick": 900.0, "full": 4 * 3600.0}
DEVICES = ("cpu", "cuda", "auto")
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class RunOptions:
    frameworks: tuple[str, ...]  # as typed: "pytorch", "keras:torch", "keras"
    workloads: tuple[str, ...]
    dataset: str
    profile: str
    device: str
    threads: int
    seed: int
    repeats: int
    data_dir: str | None
    cache_dir: str | None
    timeout_s: float | None
    executor: str = "local"  # local: this machine, one trial at a time; ray: a Ray cluster's nodes
    ray_address: str | None = None  # "auto" or HOST:PORT of the cluster's head (ray executor)
    trials_per_node: int = 1  # concurrent trials on one node, on disjoint cores (ray executor)
    record_hostnames: bool = False  # hostnames in records instead of hashed aliases


def threads_problem(threads: int) -> str | None:
    """Why `threads` cannot be given to a trial on this machine, or None."""
    cores = usable_cores()
    if 1 <= threads <= len(cores):
        return None
    return (f"{threads} threads asked, but this process may use {len(cores)} core{'s' if len(cores) > 1 else ''} "
            f"({', '.join(map(str, cores))}); choose 1 to {len(cores)}")


def options_problem(options: RunOptions) -> str | None:
    """The first option that no run can have, as 'name: problem', or None. (Threads above this
    machine's cores are checked when a run starts: a manifest may come from a bigger machine.)"""
    for name, values in (("frameworks", options.frameworks), ("workloads", options.workloads)):
        for value in values:
            try:
                parse_selection(value) if name == "frameworks" else get_workload(value)
            except ValueError as exc:
                return f"{name}: {exc}"
    for name, value, allowed in (("dataset", options.dataset, IMAGE_DATASETS), ("profile", options.profile, PROFILES),
                                 ("device", options.device, DEVICES), ("executor", options.executor, EXECUTORS)):
        if value not in allowed:
            return f"{name}: {value!r} is not one of {', '.join(allowed)}"
    for name, value in (("threads", options.threads), ("repeats", options.repeats),
                        ("trials_per_node", options.trials_per_node)):
        if value < 1:
            return f"{name}: use a whole number of 1 or more"
    if not 0 <= options.seed <= MAX_SEED:
        return f"seed: {options.seed} is out of range; use 0 to {MAX_SEED}"
    if options.timeout_s is not None and not (math.isfinite(options.timeout_s) and options.timeout_s > 0):
        return f"timeout_s: {options.timeout_s!r} is not a finite number of seconds above 0"
    return None


def trial_id(workload: str, dataset: str, framework: str, variant: str, repeat: int) -> str:
    return f"{workload}.{dataset}.{framework}.{variant}.r{repeat}"


def plan(options: RunOptions) -> list[TrialSpec]:
    """Trials in execution order: repeats outermost, so repeats of one trial are interleaved with
    the other frameworks' instead of running back to back. Raises ValueError on unknown names."""
    selected: list[tuple[str, str]] = [] if options.frameworks else default_selection()
    for value in options.frameworks:
        selected += [pair for pair in parse_selection(value) if pair not in selected]
    names = dict.fromkeys(options.workloads)  # `-w xor -w xor` is one workload
    workloads = [get_workload(n) for n in names] if names else list(WORKLOADS.values())
    timeout = options.timeout_s or DEFAULT_TIMEOUT_S[options.profile]
    trials = []
    for repeat in range(options.repeats):
        for spec in workloads:
            dataset = dataset_for(spec, options.dataset)
            for framework, variant in selected:
                trials.append(TrialSpec(
                    trial_id=trial_id(spec.name, dataset, framework, variant, repeat),
                    framework=framework, variant=variant, label=label(framework, variant),
                    adapter=FRAMEWORKS[framework].adapter, workload=spec.name, dataset=dataset,
                    profile=options.profile, device=options.device, threads=options.threads,
                    seed=options.seed, repeat=repeat, data_dir=options.data_dir,
                    cache_dir=options.cache_dir, timeout_s=timeout))
    return trials
