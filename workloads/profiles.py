"""The profiles: how long a trial trains and measures, the same rule for every framework.

A workload says how much data and how many epochs it has under each profile (`WorkloadSpec.epochs`,
`train_samples`); the profile says when training ends before that, and how much inference and
latency sampling a trial does. Standard library only: this runs in every child environment.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    purpose: str  # one line for `list` and the CLI's help
    timeout_s: float  # a trial's time limit, unless --timeout says otherwise
    # Timed training seconds (the first step included, evaluations not) after which training ends
    # once `min_blocks` steady-state blocks are timed; None: no budget. --budget overrides it.
    budget_s: float | None = None
    stop_at_target: bool = False  # training ends at the first evaluation that reaches the target ...
    min_blocks: int = 10  # ... (or at the budget) once this many steady-state blocks are timed
    steady_blocks: int | None = None  # training ends once this many steady-state blocks are timed (ci)
    warmup_s: float = 0.0  # blocks timed this soon after the first step are kept apart as warm-up
    infer_blocks: int = 30  # steady-state blocks of inference calls (scenario infer)
    latency_calls: int = 200  # single inference calls timed, at most ...
    latency_s: float = 5.0  # ... or for this long (at least MIN_LATENCY_CALLS)

    @property
    def rule(self) -> str:
        """When training ends, in words (`list`, the report's settings line)."""
        if self.steady_blocks is not None:
            return (f"after {self.steady_blocks} steady-state blocks (blocks in the first {self.warmup_s:g} s after "
                    "the first step kept apart as warm-up), or at the workload's epochs")
        at_least = f" (at least {self.min_blocks} steady-state blocks timed)"
        if self.stop_at_target and self.budget_s is not None:
            return (f"at the target accuracy or after {self.budget_s:g} s of timed training, whichever comes first"
                    + at_least + ", or at the workload's epochs")
        if self.stop_at_target:
            return "at the target accuracy" + at_least + ", or at the workload's epochs"
        if self.budget_s is not None:
            return f"after {self.budget_s:g} s of timed training" + at_least + ", or at the workload's epochs"
        return "at the workload's epochs"

    def stop(self, reached: bool, blocks: int, train_seconds: float, budget_s: float | None) -> str | None:
        """Why training ends after this block ("target", "budget", "blocks"), or None to go on."""
        if self.steady_blocks is not None and blocks >= self.steady_blocks:
            return "blocks"
        if blocks < self.min_blocks:
            return None
        if self.stop_at_target and reached:
            return "target"
        if budget_s is not None and train_seconds >= budget_s:
            return "budget"
        return None


# What ended a trial's training (TrialRecord.stopped_by); "epochs": the workload's epochs for the profile.
STOPS = ("target", "budget", "blocks", "epochs")

PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("smoke", "a few hundred samples, for tests", timeout_s=300.0, infer_blocks=3, latency_calls=10,
            latency_s=1.0),
    # For a regression gate: a few seconds of steady state a trial. Blocks timed in the first second
    # of training (just-compiled code, caches and allocators settling, blocks still growing) are
    # kept apart, and training ends once 12 steady-state blocks are timed.
    Profile("ci", "a few seconds of steady state a trial, for a regression gate", timeout_s=300.0,
            steady_blocks=12, warmup_s=1.0, infer_blocks=12, latency_calls=50, latency_s=3.0),
    # The default: a first answer in minutes whatever the frameworks' speed on this CPU. Each trial
    # trains until its target or its budget, whichever comes first (time to target within a fixed
    # budget, as AlgoPerf scores it), with at least 10 steady-state blocks for the throughput. On 2
    # cores the budget binds on the CNN (its 0.98 takes 27 to 145 s of training there), rarely elsewhere.
    Profile("quick", "the default: a first answer in minutes, each trial to its target or its budget",
            timeout_s=600.0, budget_s=15.0, stop_at_target=True),
    Profile("full", "published-style epochs, every trial to its last epoch", timeout_s=4 * 3600.0,
            infer_blocks=100, latency_calls=1000, latency_s=20.0),
)}
DEFAULT_PROFILE = "quick"


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose from: {', '.join(PROFILES)}") from None
