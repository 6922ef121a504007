"""Each metric over time: every run directory (and baseline file) found under a results folder,
in the order the runs were made, with change points found by ruptures (PELT on the log of the
series, so a step of a given percentage counts the same at any scale)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from harness.files import BadFile, write_atomic
from harness.rundir import MANIFEST, RunDir
from reports.baseline import load_side, pooled
from reports.names import METRICS

MIN_RUNS_FOR_CHANGE_POINTS = 4
MIN_NOISE = 0.01  # run-to-run noise is taken as at least 1%, so tiny steps in quiet series are no change




def collect(results_dir: Path) -> tuple[list[dict], list[BadFile]]:
    """Every run directory and baseline file under results_dir read as a baseline, oldest first,
    and the files that could not be read (each leaves its run or baseline out)."""
    sides, skipped = [], []
    for manifest in sorted(results_dir.rglob(MANIFEST)):
        run = RunDir(manifest.parent)
        if run.records_dir.is_dir():
            try:
                side = load_side(run.path)
                side["when"] = run.read_manifest().created_at
            except BadFile as exc:
                skipped.append(exc)
                continue
            sides.append(side)
    for path in sorted(results_dir.rglob("baselines/*.json")):
        try:
            side = load_side(path)
        except BadFile as exc:
            skipped.append(exc)
            continue
        side["when"] = side.get("created_from") or side["created_at"]
        sides.append(side)
    return sorted(sides, key=lambda s: s["when"]), skipped


def series(sides: list[dict], metric: str) -> pd.DataFrame:
    """One row per (run, trial): when, commit, the metric's median."""
    rows = []
    for side in sides:
        commit = (side.get("git") or {}).get("commit") or ""
        for key, trial in side["trials"].items():
            samples = pooled(trial["samples"].get(metric) or [])
            if samples.size:
                rows.append({"when": side["when"], "run": ", ".join(filter(None, side.get("runs", []))) or side["name"],
                             "commit": commit[:8], "trial": key, "value": float(np.median(samples))})
    return pd.DataFrame(rows, columns=["when", "run", "commit", "trial", "value"])


def change_points(values: np.ndarray) -> list[int]:
    """Indices where a new level starts: ruptures PELT with an L2 cost on log values and a
    BIC-style penalty from the series' own noise (robust scale of run-to-run differences)."""
    import ruptures

    if len(values) < MIN_RUNS_FOR_CHANGE_POINTS or np.any(values <= 0):
        return []
    logs = np.log(values)
    diffs = np.diff(logs)
    noise = max(MIN_NOISE, 1.4826 * float(np.median(np.abs(diffs - np.median(diffs)))) / np.sqrt(2))
    penalty = 4 * noise ** 2 * np.log(len(values))
    breaks = ruptures.Pelt(model="l2", min_size=2, jump=1).fit(logs.reshape(-1, 1)).predict(pen=penalty)
    return [b for b in breaks if b < len(values)]


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def table(frame: pd.DataFrame, metric: str, markdown: bool) -> str:
    """Runs as rows, trials as columns; a value that starts a new level is marked with '*'."""
    wide = frame.pivot_table(index=["when", "run", "commit"], columns="trial", values="value", aggfunc="first")
    marked = wide.astype(object)
    for trial in wide.columns:
        column = wide[trial].dropna()
        for index in change_points(column.to_numpy()):
            marked.loc[column.index[index], trial] = f"*{_fmt(column.iloc[index])}"
    cells = marked.map(lambda v: v if isinstance(v, str) else ("–" if pd.isna(v) else _fmt(v)))
    cells = cells.reset_index()
    cells["when"] = cells["when"].str.slice(0, 16)
    return tabulate(cells.values.tolist(), headers=list(cells.columns), tablefmt="github" if markdown else "simple",
                    disable_numparse=True)


def plot(frame: pd.DataFrame, metric: str, path: Path, overwrite: bool = False) -> Path:
    """Draw the series into `path` (.svg, .png or .pdf); an existing file is kept unless `overwrite`."""
    from reports import plots

    plt = plots.plt
    palette = plots.colors(frame["trial"])
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for trial, group in frame.groupby("trial"):
        values = group["value"].to_numpy()
        x = pd.to_datetime(group["when"], utc=True)
        ax.plot(x, values, marker="o", markersize=3, linewidth=1.2, color=palette[trial], label=trial)
        for index in change_points(values):
            ax.axvline(x.iloc[index], color=palette[trial], linestyle=":", linewidth=1)
    info = METRICS[metric]
    ax.set_ylabel(f"{metric} ({info.unit})" if info.unit else metric)
    ax.set_title(f"{metric} over time ({'higher' if info.higher_is_better else 'lower'} is better; "
                 "dotted: change points)", loc="left")
    ax.legend(fontsize=6, ncols=2, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.autofmt_xdate()
    try:
        write_atomic(path, lambda fh: fig.savefig(fh, format=path.suffix[1:], bbox_inches="tight"),
                     overwrite=overwrite, binary=True)
    finally:
        plt.close(fig)
    return path
