"""The reports of one or more runs: summary.md (GitHub markdown), report.html, summary.csv and
summary.json, from the same frame. Reads records and manifests, never the adapters."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from adapters.numerics import PRECISIONS
from harness.allocator import MALLOC_DESCRIPTIONS
from harness.files import BadFile, write_text
from harness.record import TrialRecord
from harness.rundir import Manifest
from reports import export, html, phases, plots, precision, scaling
from reports.aggregate import BUSY_FRACTION, busy_machine
from reports.load import load_runs, run_labels
from reports.names import FILENAMES, FORMATS, SCALING_CSV
from reports.tables import md_text, problems, workload_tables



def settings_lines(manifest: Manifest) -> list[str]:
    """The environment and fairness settings of a run, as plain sentences."""
    env, options = manifest.environment, manifest.options
    profile = manifest.profile
    peak = env.matmul_peak
    frameworks = ", ".join(f"{k} {v}" for k, v in env.frameworks.items() if v) or "none"
    return [
        f"run {manifest.run_id}: {manifest.command}",
        f"machine: {env.cpu_model}, {env.cpu_cores or '?'} cores, GPUs: {', '.join(env.gpus) or 'none'}; {env.os}",
        f"profile {options.profile}, device {options.device}, threads {options.threads} (intra-op; inter-op 1; "
        f"OpenMP wait policy {env.thread_env.get('OMP_WAIT_POLICY', 'not recorded')}), seed {options.seed}, "
        f"repeats {options.repeats}",
        (f"training ends {profile.rule} (the {profile.name} profile)" if profile else
         "training ends: not recorded (a manifest of an earlier dlbench)")
        + "; 'to target': timed training seconds (the first "
        "step included, evaluations excluded) to the first evaluation at or above the workload's target accuracy, "
        "or 'not reached in N s' with the trial's own timed training seconds and the best accuracy of its "
        "evaluations; 'test acc': the accuracy when training ended",
        f"C allocator: {MALLOC_DESCRIPTIONS[options.malloc]} for every trial (--malloc {options.malloc}; each record's "
        "settings.malloc lists the MALLOC_ variables its process started with)",
        "precision " + ", ".join(f"{p} ({PRECISIONS[p].description})" for p in options.precisions)
        + f"; TF32 for float32 matmuls on GPUs {'on' if options.tf32 else 'off'}; convolution autotuning on GPUs "
          f"{'on' if options.autotune else 'off'} (the same for every framework; each record says how its framework "
          "applied them)",
        "same initial weights (NumPy, from the seed) and the same batch order in every framework; "
        "batches staged on the device per epoch, untimed; throughput is the median over timed blocks "
        "of steps after the first step (which is reported apart as 'first block')",
        ("95% CI: block bootstrap of the median (neighbouring blocks drawn together; processes drawn first), "
         "widened to the Student-t interval of the per-process medians, their spread pooled over the run's "
         "trials, so it includes the spread between repeats" if options.repeats > 1 else
         "within-run spread (not a confidence interval): block bootstrap of the median over one process's "
         "blocks; whole processes on a shared machine differ by more, so another run may land outside it: "
         "--repeats 3 gives a 95% CI"),
        "sustained: all timed samples over all timed seconds (below the median when some blocks stall)",
        "train mem: peak RSS minus RSS after the model was built (which holds the framework, the dataset "
        "and the model), the memory training itself took; the memory bars show it, the peak is in parentheses",
        "efficiency: analytic training FLOPs per sample x median throughput, against " + (
            "the measured matmul rate of the node each trial ran on (below)" if env.nodes else
            f"the machine's measured matmul rate of {peak.gflops if peak else float('nan'):,.0f} GFLOP/s "
            f"({peak.method if peak else 'not measured'})"),
        f"Python {env.python}, NumPy {env.numpy}; {frameworks}",
        *[f"isolated environment {name}: " + ", ".join(f"{k} {v}" for k, v in state.versions.items())
          for name, state in env.isolated_environments.items()],
        f"git {env.git.commit or 'unknown'}{' (uncommitted changes)' if env.git.dirty else ''}",
    ]


def machine_line(records: list[TrialRecord]) -> list[str]:
    """How the machine's own speed varied from trial to trial (harness.peak.machine_speed), and
    which trials started while something else held the machine."""
    probed = [r for r in records if r.machine_gflops]
    if not probed:
        return []
    speeds = np.array([r.machine_gflops for r in probed])
    median, low, high = np.median(speeds), speeds.min(), speeds.max()
    lines = [f"machine speed before each trial (NumPy 512x512 float32 matmul on the trial's threads, median "
             f"of 0.3 s): median {median:,.0f} GFLOP/s, from {low:,.0f} to {high:,.0f} "
             f"({low / median - 1:+.0%} to {high / median - 1:+.0%})"]
    busy = busy_machine(probed)
    if busy:
        lines.append(f"the machine was busy (under {BUSY_FRACTION:.0%} of its median speed) before " + ", ".join(
            f"{r.label} {r.workload} repeat {r.repeat} ({r.machine_gflops:,.0f} GFLOP/s)" for r in busy)
            + ": their figures may be disturbed (kept out of the pooled noise of the 95% CI); to measure them "
              "again, delete their records and `bench.py run --resume` the run")
    return lines


def node_lines(manifest: Manifest, records: list[TrialRecord]) -> list[str]:
    """A Ray run's nodes, by kind of machine, with their own matmul peaks."""
    nodes = manifest.environment.nodes
    if not nodes:
        return []
    ran = {}
    for r in records:
        if r.node:
            ran[r.node.node_id] = ran.get(r.node.node_id, 0) + 1
    kinds: dict[str, list] = {}
    for node in nodes.values():
        kinds.setdefault(node.identity.fingerprint, []).append(node)
    lines = [f"executor ray: {len(nodes)} node(s), {manifest.options.trials_per_node} trial(s) at a time per node"]
    for fingerprint, group in kinds.items():
        first = group[0].identity
        lines.append(f"machine [{fingerprint[:6]}]: {first.cpu_model}, {first.cpu_cores or '?'} cores, GPUs: "
                     f"{', '.join(first.gpus) or 'none'}; nodes: " + ", ".join(
                         f"{n.identity.alias} ({ran.get(n.identity.node_id, 0)} trials, peak "
                         f"{n.matmul_peak.gflops if n.matmul_peak else float('nan'):,.0f} GFLOP/s)" for n in group))
    return lines


def overlap_line(records: list[TrialRecord]) -> list[str]:
    """A warning when trials ran at the same time on one physical host (simulated Ray nodes, or
    several trials per node): they shared its cores and memory bandwidth."""
    spans: dict[str, list[tuple[datetime, datetime, TrialRecord]]] = {}
    for r in records:
        if r.node and r.started_at and r.finished_at and r.status == "ok":
            spans.setdefault(r.node.host_id, []).append((datetime.fromisoformat(r.started_at),
                                                         datetime.fromisoformat(r.finished_at), r))
    overlapping: dict[str, TrialRecord] = {}
    for group in spans.values():
        for i, (start, end, a) in enumerate(group):
            for start2, end2, b in group[i + 1:]:
                if start < end2 and start2 < end:
                    overlapping.update({a.trial_id: a, b.trial_id: b})
    if not overlapping:
        return []
    return [f"warning: {len(overlapping)} trials ran at the same time as another on the same physical host "
            "(simulated Ray nodes or several trials per node share its cores, caches and memory bandwidth): "
            "their speed figures are lower than each would get alone and are not comparable with a run of one "
            "trial at a time: " + ", ".join(f"{r.label} {r.workload} repeat {r.repeat}"
                                            for r in sorted(overlapping.values(), key=lambda r: r.trial_id))]


def _all_settings(manifests: list[Manifest | None], records: list[TrialRecord]) -> list[str]:
    labels = run_labels(manifests)
    if len(manifests) == 1:
        return (settings_lines(manifests[0]) + node_lines(manifests[0], records) if manifests[0] else
                ["the run's manifest is missing or unreadable: its settings are unknown"]) \
            + machine_line(records) + overlap_line(records)
    return [f"[{label}] {line}" for label, m in zip(labels, manifests)
            for line in (settings_lines(m) if m else ["manifest missing or unreadable"])]


def render_markdown(frame: pd.DataFrame, records: list[TrialRecord], manifests: list[Manifest | None],
                    unreadable: list[BadFile] = ()) -> str:
    parts = ["# Benchmark summary", workload_tables(frame, markdown=True)]
    parts += [section for section in (scaling.markdown_section(frame), precision.markdown_section(frame),
                                       phases.section(records, markdown=True)) if section]
    trouble = problems(frame, markdown=True, unreadable=unreadable)
    if trouble:
        parts += ["## Skipped or failed", trouble + "\n\nFull output of each trial: `logs/<trial>.log`."]
    parts += ["## Environment and fairness settings",
              "\n".join(f"- {md_text(line)}" for line in _all_settings(manifests, records))]
    return "\n\n".join(parts) + "\n"


def render_html(frame: pd.DataFrame, records: list[TrialRecord], manifests: list[Manifest | None],
                unreadable: list[BadFile] = ()) -> str:
    ids = ", ".join(m.run_id if m else "?" for m in manifests)
    return html.render(frame, records, _all_settings(manifests, records), "Framework benchmark report",
                       f"run{'s' if len(manifests) > 1 else ''} {ids}", unreadable)


def write_reports(run_dirs: list[Path], out_dir: Path, formats: tuple[str, ...] = FORMATS,
                  side_by_side: bool = False, loaded: tuple | None = None, unreadable: list[BadFile] = (),
                  overwrite: bool = True) -> dict[str, Path]:
    """Write the chosen formats into out_dir, each atomically (a full disk leaves the previous file,
    never a truncated one); with overwrite=False an existing file is refused (WouldOverwrite).
    `loaded`: load_runs' result when the caller has it; `unreadable`: the files it left out."""
    frame, records, manifests = loaded or load_runs(run_dirs, side_by_side)
    render = {"md": lambda: render_markdown(frame, records, manifests, unreadable),
              "html": lambda: render_html(frame, records, manifests, unreadable),
              "csv": lambda: export.csv_text(frame), "json": lambda: export.json_text(frame)}
    written = {}
    for fmt in formats:
        written[fmt] = write_text(out_dir / FILENAMES[fmt], render[fmt](), overwrite=overwrite)
    found = scaling.sweeps(frame)
    if "csv" in formats and found:  # one long table of every sweep's points
        written["scaling csv"] = write_text(out_dir / SCALING_CSV, scaling.csv_text(frame), overwrite=overwrite)
    if "md" in formats:  # the figures summary.md shows (report.html has them inline)
        palette = plots.colors(frame["label"])
        for key in scaling.groups(found):
            written[f"figure {key}"] = write_text(out_dir / scaling.figure_name(*key),
                                                  scaling.figure(frame, key, palette), overwrite=overwrite)
    return written
