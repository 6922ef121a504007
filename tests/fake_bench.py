"""bench.py with stand-in frameworks registered, for tests that must run it as a process of its own
(signals, resource limits, another working directory): `python tests/fake_bench.py ARGS...`.

numpy: trains for real in NumPy; slow: the same at 30 ms a step (its first 200); hog: takes memory until stopped;
probs: numpy whose inference path returns probabilities instead of logits.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters import FRAMEWORKS, FrameworkInfo  # noqa: E402

FAKES = {"numpy": "NumpyAdapter", "slow": "SlowSteps", "hog": "MemoryHog", "probs": "ProbabilitiesInference"}


def register() -> None:
    for name, cls in FAKES.items():
        FRAMEWORKS[name] = FrameworkInfo(name=name, adapter=f"tests.fake_adapters:{cls}", variants=("default",),
                                         modules={"default": ("numpy",)}, distributions=("numpy",))


if __name__ == "__main__":
    register()
    import bench

    sys.exit(bench.main())
