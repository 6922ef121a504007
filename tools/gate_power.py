#!/usr/bin/env python3
"""What does the regression gate catch, and how often does it cry wolf? Simulated with known truth.

Each repetition makes two synthetic sides of `--trials` trials (27 by default: the quick matrix),
each trial with `repeats` processes, compares them with `reports.compare` exactly as the CLI does
(throughput, 5% threshold, Holm over the trials), and counts:

- false alarms: repetitions with no change in which any trial is flagged as a regression;
- detection: repetitions in which one trial slowed by 5/10/20/40% is flagged.

Two designs, each with the noise measured on this machine:

- `--mode ab` (`bench.py ab`): processes of both sides run in pairs, side by side; what matters is
  the spread of the per-pair log ratio (`--from-ab AB_FOLDER` measures it from an A/B run).
- `--mode baseline` (`bench.py compare BASELINE RUN`): the sides ran at different times; what
  matters is the process-to-process spread (`--from-run RUN_DIR`, a run with repeats).

    .venv/bin/python tools/gate_power.py --mode ab --from-ab results/ab/<folder> [--reps 400]
    .venv/bin/python tools/gate_power.py --mode baseline --from-run results/runs/<run> [--noise 0.05]
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reports.baseline import load_side, per_process  # noqa: E402
from reports.compare import compare  # noqa: E402
from reports.stats import paired_noise, pooled_noise, process_logs  # noqa: E402

BLOCKS = 20  # steady-state blocks per process (the ci profile's at least 10, the quick profile's 30+)
BLOCK_NOISE = 0.04  # block-to-block spread within a process
SLOWDOWNS = (0.05, 0.10, 0.20, 0.40)
REPEATS = (1, 3, 5)


def synthetic_sides(rng: np.random.Generator, trials: int, repeats: int, noise: float, paired: bool,
                    slowed: float = 0.0) -> tuple[dict, dict]:
    """Two sides as `reports.baseline.load_side` returns them; trial 0 of the second runs `slowed`
    slower. Paired: each head process shares its base process's level (the machine both met), and
    their log ratio scatters by `noise`; else every process's log level scatters by `noise`."""
    sides: tuple[dict, dict] = ({"trials": {}, "environment": {}}, {"trials": {}, "environment": {}})
    own = noise / math.sqrt(2) if paired else noise  # paired: the ratio of two has sqrt(2) x each one's
    for i in range(trials):
        shared = rng.normal(0, 0.10, repeats) if paired else np.zeros(repeats)
        for side, factor in zip(sides, (1.0, 1 - slowed if i == 0 else 1.0)):
            levels = 20_000.0 * factor * np.exp(shared + rng.normal(0, own, repeats))
            processes = [list(level * rng.lognormal(0, BLOCK_NOISE, BLOCKS)) for level in levels]
            side["trials"][f"w/d/t{i}"] = {"workload": "w", "dataset": "d", "label": f"t{i}",
                                           "statuses": ["ok"] * repeats, "target_accuracy": None,
                                           "samples": {"throughput": processes}, "machine_gflops": []}
    return sides


def rates(trials: int, repeats: int, noise: float, paired: bool, reps: int, seed: int) -> dict[float, float]:
    """Per slowdown (0 = none): the share of repetitions flagged (any trial at 0, trial 0 otherwise)."""
    rng = np.random.default_rng(seed)
    out = {}
    for slowed in (0.0, *SLOWDOWNS):
        flagged = 0
        for _ in range(reps):
            base, cur = synthetic_sides(rng, trials, repeats, noise, paired, slowed)
            result = compare(base, cur, metrics=("throughput",), paired=paired)
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


def pair_noise_of(ab_folder: Path) -> tuple[float, int]:
    runs = [next((ab_folder / side).iterdir()) for side in ("base", "head")]
    base, head = (load_side(run) for run in runs)
    noise = paired_noise([(process_logs(per_process(base["trials"][k]["samples"]["throughput"])),
                           process_logs(per_process(head["trials"][k]["samples"]["throughput"])))
                          for k in set(base["trials"]) & set(head["trials"])])
    if not noise.df:
        raise SystemExit(f"{ab_folder}: no trial has repeats on both sides; use an A/B run made with --repeats 3")
    return noise.sd, noise.df


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("ab", "baseline"), default="ab")
    parser.add_argument("--from-ab", type=Path, help="ab mode: take the per-pair spread from this A/B folder")
    parser.add_argument("--from-run", type=Path, help="baseline mode: take the process spread from this run")
    parser.add_argument("--noise", type=float, default=None, help="the spread itself (log sd), e.g. 0.05")
    parser.add_argument("--trials", type=int, default=27)
    parser.add_argument("--reps", type=int, default=400, help="repetitions per cell")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    paired = args.mode == "ab"
    if args.noise is not None:
        noise, source = args.noise, "given"
    elif paired and args.from_ab:
        noise, df = pair_noise_of(args.from_ab)
        source = f"the spread of the per-pair log ratio in {args.from_ab}, {df} degrees of freedom"
    elif not paired and args.from_run:
        noise, df = noise_of(args.from_run)
        source = f"the process-to-process spread in {args.from_run}, {df} degrees of freedom"
    else:
        parser.error("give --noise SD, or --from-ab AB_FOLDER (ab mode) or --from-run RUN_DIR (baseline mode)")
    design = "A/B, processes paired" if paired else "against a baseline, processes unpaired"
    print(f"{design}; noise {noise:.1%} ({source}); {args.trials} trials, throughput, 5% threshold, Holm over "
          f"the trials, {args.reps} repetitions per cell\n")
    print("| repeats | false alarms (no change) | " + " | ".join(f"{s:.0%} slower caught" for s in SLOWDOWNS) + " |")
    print("|---|---|" + "---|" * len(SLOWDOWNS))
    for repeats in REPEATS:
        if paired and repeats == 1:
            continue  # one pair per trial: no spread to test against
        r = rates(args.trials, repeats, noise, paired, args.reps, args.seed + repeats)
        print(f"| {repeats} | {r[0.0]:.1%} | " + " | ".join(f"{r[s]:.1%}" for s in SLOWDOWNS) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
