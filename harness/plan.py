"""Turn a user's selection into the ordered list of trials of a run."""
from __future__ import annotations

from dataclasses import dataclass

from adapters import FRAMEWORKS, default_selection, label, parse_selection
from harness.record import TrialSpec
from workloads import WORKLOADS, dataset_for, get_workload

DEFAULT_TIMEOUT_S = {"smoke": 300.0, "quick": 900.0, "full": 4 * 3600.0}


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


def trial_id(workload: str, dataset: str, framework: str, variant: str, repeat: int) -> str:
    return f"{workload}.{dataset}.{framework}.{variant}.r{repeat}"


def plan(options: RunOptions) -> list[TrialSpec]:
    """Trials in execution order: repeats outermost, so repeats of one trial are interleaved with
    the other frameworks' instead of running back to back. Raises ValueError on unknown names."""
    selected: list[tuple[str, str]] = [] if options.frameworks else default_selection()
    for value in options.frameworks:
        selected += [pair for pair in parse_selection(value) if pair not in selected]
    workloads = [get_workload(n) for n in options.workloads] if options.workloads else list(WORKLOADS.values())
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
