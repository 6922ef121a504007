"""summary.md of a run: the comparison tables, what failed and why, and the fairness settings."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from reports.load import load_manifest, run_frame
from reports.tables import problems, workload_tables


def _settings(manifest: dict) -> str:
    env = manifest.get("environment", {})
    options = manifest.get("options", {})
    git = env.get("git", {})
    peak = env.get("matmul_peak", {})
    frameworks = ", ".join(f"{k} {v}" for k, v in env.get("frameworks", {}).items() if v) or "none"
    lines = [
        f"- run `{manifest.get('run_id', '?')}`: `{manifest.get('command', '')}`",
        f"- machine: {env.get('cpu_model', '?')}, {env.get('cpu_cores', '?')} cores, "
        f"GPUs: {', '.join(env.get('gpus') or []) or 'none'}; {env.get('os', '?')}",
        f"- profile `{options.get('profile')}`, device `{options.get('device')}`, threads {options.get('threads')} "
        f"(intra-op; inter-op 1), seed {options.get('seed')}, repeats {options.get('repeats')}, float32",
        "- same initial weights (NumPy, from the seed) and the same batch order in every framework; "
        "batches staged on the device per epoch, untimed; throughput is the median over timed blocks "
        "of steps after the first step (which is reported apart as 'first block')",
        f"- efficiency: analytic training FLOPs per sample x median throughput, against the machine's "
        f"measured matmul rate of {peak.get('gflops', float('nan')):,.0f} GFLOP/s ({peak.get('method', 'not measured')})",
        f"- Python {env.get('python', '?')}, NumPy {env.get('numpy', '?')}; {frameworks}",
        *[f"- isolated environment `{name}`: " + ", ".join(f"{k} {v}" for k, v in state.get("versions", {}).items())
          for name, state in env.get("isolated_environments", {}).items()],
        f"- git {git.get('commit') or 'unknown'}{' (uncommitted changes)' if git.get('dirty') else ''}",
    ]
    return "\n".join(lines)


def render(run_dir: str | Path, frame: pd.DataFrame | None = None) -> str:
    """summary.md of a run; pass the run's `frame` when the caller already built it."""
    manifest = load_manifest(run_dir)
    frame = run_frame(run_dir) if frame is None else frame
    parts = ["# Benchmark summary", workload_tables(frame, markdown=True)]
    trouble = problems(frame, markdown=True)
    if trouble:
        parts += ["## Skipped or failed", trouble + "\n\nFull output of each trial: `logs/<trial>.log`."]
    parts += ["## Environment and fairness settings", _settings(manifest)]
    return "\n\n".join(parts) + "\n"


def write_summary(run_dir: str | Path, frame: pd.DataFrame | None = None) -> Path:
    path = Path(run_dir) / "summary.md"
    path.write_text(render(run_dir, frame))
    return path
