#!/usr/bin/env python3
"""Is the first timed block after an evaluation slower than the others? (An evaluation runs another
batch shape through the model: a static-shape graph, MXNet's hybridized one say, could re-plan
inside the next timed block, which the median would then hide and the sustained rate would not.)

For each ok record of the runs: the median throughput of the blocks that directly follow an
evaluation, against the median of the other steady-state blocks.

    .venv/bin/python tools/block_check.py RUN_DIR...
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.record import TrialRecord  # noqa: E402
from reports.load import load_records  # noqa: E402


def after_evaluation_ratio(record: TrialRecord) -> tuple[float, int, int] | None:
    """(median rate of the blocks right after an evaluation / median rate of the others, how many
    of each), or None when either kind is missing."""
    evaluated = {e.step for e in record.evaluations}
    after, others = [], []
    for block in record.blocks:
        rate = block.steps / block.seconds
        (after if block.first_step in evaluated else others).append(rate)
    if not after or not others:
        return None
    return float(np.median(after) / np.median(others)), len(after), len(others)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    print(f"{'variant':<24} {'workload':<10} {'after eval / others':>20}  blocks (after, others)")
    for run_dir in argv:
        for record in sorted(load_records(run_dir), key=lambda r: (r.workload, r.label)):
            ratio = after_evaluation_ratio(record) if record.status == "ok" else None
            if ratio:
                print(f"{record.label:<24} {record.workload:<10} {ratio[0]:>20.3f}  {ratio[1]}, {ratio[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
