"""Turn a user's selection into the ordered list of trials of a run."""
from __future__ import annotations

import math
from dataclasses import dataclass

from adapters import FRAMEWORKS, default_selection, label, parse_selection
from adapters.numerics import DEFAULT_PRECISION, PRECISIONS
from harness.allocator import MALLOC_POLICIES
from harness.record import EXECUTORS, SCENARIOS, TrialSpec
from harness.threads import usable_cores
from workloads import IMAGE_DATASETS, WORKLOADS, dataset_for, get_workload
from workloads.profiles import PROFILES, get_profile
from workloads.spec import WorkloadSpec

DEVICES = ("cpu", "cuda", "auto")
MAX_SEED = 2**32 - 1
# Inference is timed at these batch sizes unless --batch-size says otherwise: one request, a small
# batch of requests, and bulk scoring.
INFER_BATCH_SIZES = (1, 32, 1024)
MAX_SWEEP_SIZE = 65536  # a batch size or width above this is a typo, not a benchmark on this kind of machine


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
    scenarios: tuple[str, ...] = ("train",)  # train and/or infer
    batch_sizes: tuple[int, ...] = ()  # a sweep; empty: the workload's own (train), INFER_BATCH_SIZES (infer)
    widths: tuple[int, ...] = ()  # a sweep of the model's width; empty: the workload's own
    precisions: tuple[str, ...] = (DEFAULT_PRECISION,)  # an axis: every point in each (adapters.numerics)
    tf32: bool = False  # float32 matmuls may use TF32 on GPUs (off: "fp32" means float32)
    autotune: bool = True  # convolution autotuning on GPUs, one policy for every framework
    malloc: str = "default"  # the C allocator's policy for every trial (harness.allocator)
    budget_s: float | None = None  # each trial's training budget; None: the profile's (workloads.profiles)

    @property
    def budget(self) -> float | None:
        """The training budget every trial of the run gets: --budget, else the profile's."""
        return self.budget_s if self.budget_s is not None else get_profile(self.profile).budget_s


def threads_problem(threads: int) -> str | None:
    """Why `threads` cannot be given to a trial on this machine, or None."""
    cores = usable_cores()
    if 1 <= threads <= len(cores):
        return None
    return (f"{threads} threads asked, but this process may use {len(cores)} core{'s' if len(cores) > 1 else ''} "
            f"({', '.join(map(str, cores))}); choose 1 to {len(cores)}")


def size_problem(value: int) -> str | None:
    """Why `value` cannot be a batch size or width of a sweep, or None."""
    return None if 1 <= value <= MAX_SWEEP_SIZE else f"{value} is out of range; use whole numbers from 1 to {MAX_SWEEP_SIZE}"


def width_problem(workloads: tuple[str, ...], widths: tuple[int, ...]) -> str | None:
    """Why a width sweep cannot apply to these workloads (all of them when none is named), or None."""
    names = workloads or tuple(WORKLOADS)
    if not widths or any(get_workload(n).width_layers for n in names):
        return None
    return (f"none of the workloads ({', '.join(names)}) has a width axis; use "
            f"{', '.join(n for n, w in WORKLOADS.items() if w.width_layers)}")


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
                                 ("device", options.device, DEVICES), ("executor", options.executor, EXECUTORS),
                                 ("malloc", options.malloc, MALLOC_POLICIES)):
        if value not in allowed:
            return f"{name}: {value!r} is not one of {', '.join(allowed)}"
    for name, value in (("threads", options.threads), ("repeats", options.repeats),
                        ("trials_per_node", options.trials_per_node)):
        if value < 1:
            return f"{name}: use a whole number of 1 or more"
    for name, values, allowed in (("scenarios", options.scenarios, SCENARIOS),
                                  ("precisions", options.precisions, tuple(PRECISIONS))):
        bad = next((v for v in values if v not in allowed), None if values else "")
        if bad is not None:
            return f"{name}: {bad!r} is not one of {', '.join(allowed)}"
    for name, values in (("batch_sizes", options.batch_sizes), ("widths", options.widths)):
        problem = next((p for p in map(size_problem, values) if p), None)
        if problem:
            return f"{name}: {problem}"
    problem = width_problem(options.workloads, options.widths)
    if problem:
        return f"widths: {problem}"
    if not 0 <= options.seed <= MAX_SEED:
        return f"seed: {options.seed} is out of range; use 0 to {MAX_SEED}"
    for name, value in (("timeout_s", options.timeout_s), ("budget_s", options.budget_s)):
        if value is not None and not (math.isfinite(value) and value > 0):
            return f"{name}: {value!r} is not a finite number of seconds above 0"
    return None


def trial_id(workload: str, dataset: str, framework: str, variant: str, repeat: int, scenario: str = "train",
             batch_size: int | None = None, width: int | None = None, precision: str = DEFAULT_PRECISION) -> str:
    """`workload.dataset.framework.variant[.infer][.bBATCH][.wWIDTH][.PRECISION].rREPEAT`: the
    workload's own training shape in float32 keeps the short form, so its records and baselines
    match those of earlier runs."""
    shape = (".infer" if scenario == "infer" else "") + (f".b{batch_size}" if batch_size else "") \
        + (f".w{width}" if width else "") + (f".{precision}" if precision != DEFAULT_PRECISION else "")
    return f"{workload}.{dataset}.{framework}.{variant}{shape}.r{repeat}"


def shapes(spec: WorkloadSpec, options: RunOptions) -> list[tuple[str, int | None, int | None]]:
    """(scenario, batch size, width) points of one workload: None where the workload's own is meant
    (a training point at its own batch size and width is its ordinary trial). Axes a workload does
    not have (XOR's batch is its four points; it has no width) are left at its own shape."""
    widths = [w if w != spec.width else None for w in options.widths] if spec.width_layers else []
    points = []
    for scenario in options.scenarios:
        if scenario == "infer":
            batches = list(options.batch_sizes or INFER_BATCH_SIZES)
        else:
            batches = [b if b != spec.batch_size else None for b in options.batch_sizes] if spec.batch_axis else []
        for batch in dict.fromkeys(batches or [None]):
            for width in dict.fromkeys(widths or [None]):
                points.append((scenario, batch, width))
    return points


def plan(options: RunOptions) -> list[TrialSpec]:
    """Trials in execution order: repeats outermost, so repeats of one trial are interleaved with
    the other frameworks' instead of running back to back. Raises ValueError on unknown names."""
    selected: list[tuple[str, str]] = [] if options.frameworks else default_selection()
    for value in options.frameworks:
        selected += [pair for pair in parse_selection(value) if pair not in selected]
    names = dict.fromkeys(options.workloads)  # `-w xor -w xor` is one workload
    workloads = [get_workload(n) for n in names] if names else list(WORKLOADS.values())
    timeout = options.timeout_s or get_profile(options.profile).timeout_s
    trials = []
    for repeat in range(options.repeats):
        for spec in workloads:
            dataset = dataset_for(spec, options.dataset)
            points = [(*shape, precision) for shape in shapes(spec, options)
                      for precision in dict.fromkeys(options.precisions)]
            for scenario, batch, width, precision in points:
                for framework, variant in selected:
                    trials.append(TrialSpec(
                        trial_id=trial_id(spec.name, dataset, framework, variant, repeat, scenario, batch, width,
                                          precision),
                        framework=framework, variant=variant, label=label(framework, variant),
                        adapter=FRAMEWORKS[framework].adapter, workload=spec.name, dataset=dataset,
                        profile=options.profile, device=options.device, threads=options.threads,
                        seed=options.seed, repeat=repeat, data_dir=options.data_dir,
                        cache_dir=options.cache_dir, timeout_s=timeout, scenario=scenario, batch_size=batch,
                        width=width, precision=precision, tf32=options.tf32, autotune=options.autotune,
                        malloc=options.malloc, budget_s=options.budget if scenario == "train" else None))
    return trials
