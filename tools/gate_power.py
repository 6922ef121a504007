#!/usr/bin/env python3
"""What does the regression gate catch, and how often does it cry wolf? Simulated with known truth.

Each repetition makes two synthetic sides of `--trials` trials (27 by default: the quick matrix),
each trial with `repeats` processes whose levels scatter lognormally by the process-to-process
noise (and whose blocks scatter by a within-process noise), compares them with `reports.compare`
exactly as `bench.py compare` does (throughput, 5% threshold, Holm over the trials), and counts:

- false alarms: repetitions with no change in which any trial is flagged as a regression;
- detection: repetitions in which one trial slowed by 5/10/20/40% is flagged.

The noise defaults to this machine's measured process-to-process spread; `--from-run RUN_DIR`
takes it from a run with repeats (the pooled spread `compare` itself would use), `--noise` sets it.

    .venv/bin/python tools/gate_power.py [--from-run results/runs/RUN] [--noise 0.05] [--reps 400]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reports.baseline import load_side, per_process  # noqa: E402
from reports.compare import compare  # noqa: E402
from reports.stats import pooled_noise  # noqa: E402

BLOCKS = 20  # steady-state blocks per process (the ci profile's at least 10, the quick profile's 30+)
BLOCK_NOISE = 0.04  # block-to-block spread within a process
SLOWDOWNS = (0.05, 0.10, 0.20, 0.40)
REPEATS = (1, 3, 5)


def synthetic_side(rng: np.random.Generator, trials: int, repeats: int, noise: float,
                   slowed: float = 0.0) -> dict:
    """A side as `reports.baseline.load_side` returns it; trial 0 runs `slowed` slower."""
    side: dict = {"trials": {}, "environment": {}}
    for i in range(trials):
        level = 20_000.0 * (1 - slowed if i == 0 else 1.0)
        processes = [list(level * rng.lognormal(0, noise) * rng.lognormal(0, BLOCK_NOISE, BLOCKS))
                     for _ in range(repeats)]
        side["trials"][f"w/d/t{i}"] = {"workload": "w", "dataset": "d", "label": f"t{i}",
                                       "statuses": ["ok"] * repeats, "target_accuracy": None,
                                       "samples": {"throughput": processes}, "machine_gflops": []}
    return side


def rates(trials: int, repeats: int, noise: float, reps: int, seed: int) -> dict[float, float]:
    """Per slowdown (0 = none): the share of repetitions flagged (any trial at 0, trial 0 otherwise)."""
    rng = np.random.default_rng(seed)
    out = {}
    for slowed in (0.0, *SLOWDOWNS):
        flagged = 0
        for _ in range(reps):
            result = compare(synthetic_side(rng, trials, repeats, noise),
                             synthetic_side(rng, trials, repeats, noise, slowed), metrics=("throughput",))
            names = {c.label for c in result.regressions}
            flagged += bool(names) if slowed == 0 else "t0" in names
        out[slowed] = flagged / reps
    return out


def noise_of(run_dir: Path) -> tuple[float, int]:
    side = load_side(run_dir)
    noise = pooled_noise([per_process(t["samples"]["throughput"]) for t in side["trials"].values()])
    if not noise.df:
        raise SystemExit(f"{run_dir}: no trial has repeats, so its process-to-process spread cannot be seen; "
                         f"use a run made with --repeats 3")
    return noise.sd, noise.df


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-run", type=Path, help="take the process-to-process noise from this run (with repeats)")
    parser.add_argument("--noise", type=float, default=None, help="process-to-process spread (log sd), e.g. 0.05")
    parser.add_argument("--trials", type=int, default=27)
    parser.add_argument("--reps", type=int, default=400, help="repetitions per cell")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.from_run:
        noise, df = noise_of(args.from_run)
        source = f"pooled from {args.from_run} ({df} degrees of freedom)"
    elif args.noise is not None:
        noise, source = args.noise, "given"
    else:
        parser.error("give --from-run RUN_DIR (a run with --repeats) or --noise SD")
    print(f"process-to-process noise {noise:.1%} ({source}); {args.trials} trials, throughput, 5% threshold, "
          f"Holm over the trials, {args.reps} repetitions per cell\n")
    print("| repeats | false alarms (no change) | " + " | ".join(f"{s:.0%} slower caught" for s in SLOWDOWNS) + " |")
    print("|---|---|" + "---|" * len(SLOWDOWNS))
    for repeats in REPEATS:
        r = rates(args.trials, repeats, noise, args.reps, args.seed + repeats)
        print(f"| {repeats} | {r[0.0]:.1%} | " + " | ".join(f"{r[s]:.1%}" for s in SLOWDOWNS) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
