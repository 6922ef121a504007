"""Scaling: how each framework's speed changes along a sweep of batch size or model width, and
where the fastest framework changes (a crossover). From the summary frame only."""
from __future__ import annotations

import io
import re
from dataclasses import dataclass

import pandas as pd
from tabulate import tabulate

from adapters.numerics import DEFAULT_PRECISION
from reports.aggregate import CI_95
from reports.tables import md_text

AXES = {"batch_size": "batch", "width": "width"}
OTHER_AXIS = {"batch_size": "width", "width": "batch_size"}
SCENARIO_NAMES = {"train": "training", "infer": "inference"}


def _subject(workload: str, dataset: str, scenario: str, precision: str) -> str:
    """'mnist_mlp training on mnist', 'mnist_mlp inference in mixed-bf16 on mnist'."""
    return (f"{workload} {SCENARIO_NAMES.get(scenario, scenario)}"
            f"{'' if precision == DEFAULT_PRECISION else ' in ' + precision} on {dataset}")


@dataclass(frozen=True)
class Sweep:
    """The measured points of one workload along one axis, the other axis held at `fixed`."""

    workload: str
    dataset: str
    scenario: str
    precision: str
    axis: str  # "batch_size" or "width"
    fixed: int | None  # the other axis's value
    rows: pd.DataFrame  # one row per (point, framework label), measured ones only

    @property
    def other(self) -> str:
        return OTHER_AXIS[self.axis]

    @property
    def key(self) -> tuple[str, str, str, str]:
        """(workload, dataset, scenario, precision): the sweeps drawn in one figure."""
        return self.workload, self.dataset, self.scenario, self.precision

    @property
    def title(self) -> str:
        held = f", {AXES[self.other]} {self.fixed}" if self.fixed is not None else ""
        return f"{_subject(*self.key)}{held}: {AXES[self.axis]} sweep"

    @property
    def points(self) -> list[int]:
        return sorted(int(p) for p in self.rows[self.axis].unique())

    def fastest(self, point: int) -> pd.Series:
        at = self.rows[self.rows[self.axis] == point]
        return at.loc[at["throughput"].idxmax()]


def sweeps(frame: pd.DataFrame) -> list[Sweep]:
    """Every line of two or more measured points along batch size or width, per workload, dataset,
    scenario and precision (a grid of widths x batch sizes gives a batch sweep per width and a width
    sweep per batch size)."""
    measured = frame[frame["throughput"].notna()]
    found = []
    for key, group in measured.groupby(["workload", "dataset", "scenario", "precision"], sort=False):
        for axis, other in OTHER_AXIS.items():
            for fixed, line in group.groupby(group[other].fillna(-1), sort=True):
                if line[axis].nunique() >= 2:
                    found.append(Sweep(*key, axis, None if fixed == -1 else int(fixed),
                                       line.sort_values([axis, "label"])))
    return found


def crossovers(sweep: Sweep) -> str:
    """One sentence: which framework is fastest where along the sweep, naming the points where
    the fastest changes, and whether the lead there is within the intervals."""
    name = AXES[sweep.axis]
    leaders = [(p, sweep.fastest(p)) for p in sweep.points]
    runs: list[list] = []  # [label, first point, last point]
    for point, row in leaders:
        if runs and runs[-1][0] == row["label"]:
            runs[-1][2] = point
        else:
            runs.append([row["label"], point, point])
    if len(runs) == 1:
        label, first, last = runs[0]
        return f"{label} is the fastest at every {name} measured ({first} to {last}): no crossover."
    spans = []
    for label, first, last in runs:
        spans.append(f"{label} at {name} {first}" if first == last else f"{label} from {name} {first} to {last}")
    close = []
    for (point, row) in leaders[1:]:
        at = sweep.rows[(sweep.rows[sweep.axis] == point) & (sweep.rows["label"] != row["label"])]
        if at.empty or pd.isna(row["throughput_low"]):
            continue
        second = at.loc[at["throughput"].idxmax()]
        if not pd.isna(second["throughput_high"]) and second["throughput_high"] >= row["throughput_low"]:
            close.append(f"{name} {point} ({row['label']} and {second['label']} within their intervals)")
    changes = ", ".join(f"{name} {b[1]}" for a, b in zip(runs, runs[1:]))
    text = f"The fastest framework changes at {changes}: " + "; ".join(spans) + "."
    text += " Not resolved at " + "; ".join(close) + "." if close else ""
    if (sweep.rows["throughput_interval"] != CI_95).any():
        text += (" One process per point: its interval is the spread within that run, so whether a crossover "
                 "holds in another run needs --repeats 3.")
    return text


def missed_targets(sweep: Sweep) -> str:
    """Training points whose final accuracy is below the workload's target (the recipe is the same
    at every batch size and width, the learning rate too, so a point may need more epochs): '' if none."""
    rows = sweep.rows[(sweep.rows["scenario"] == "train") & sweep.rows["target_accuracy"].notna()
                      & (sweep.rows["test_accuracy"] < sweep.rows["target_accuracy"])]
    if rows.empty:
        return ""
    points = {}
    for _, r in rows.iterrows():
        points.setdefault(int(r[sweep.axis]), []).append(f"{r['label']} {r['test_accuracy']:.4f}")
    target = float(rows["target_accuracy"].iloc[0])
    return (f"Below the target accuracy ({target:g}) where training stopped, with the same recipe (learning rate "
            f"included) at every point: " + "; ".join(f"{AXES[sweep.axis]} {p}: {', '.join(v)}"
                                                       for p, v in sorted(points.items())) + ".")


def verdict(sweep: Sweep) -> str:
    """What a sweep's reader needs in one go: the crossovers, then any point below the target."""
    return " ".join(part for part in (crossovers(sweep), missed_targets(sweep)) if part)


def cell(row: pd.Series | None) -> str:
    if row is None or pd.isna(row["throughput"]):
        return "–"
    share = "" if pd.isna(row["peak_fraction"]) else f" ({row['peak_fraction']:.1%})"
    return f"{row['throughput']:,.0f}{share}"


def point_header(sweep: Sweep, point: int) -> str:
    """'batch 32', or 'width 2048 (6.3M params)': what a width costs in parameters."""
    text = f"{AXES[sweep.axis]} {point}"
    if sweep.axis == "width":
        params = sweep.rows.loc[sweep.rows["width"] == point, "param_count"].dropna()
        if len(params):
            count = float(params.iloc[0])
            text += f" ({count / 1e6:.3g}M params)" if count >= 1e6 else f" ({count / 1e3:.3g}k params)"
    return text


def sweep_table(sweep: Sweep, markdown: bool) -> str:
    """Frameworks down, the sweep's points across: samples/s (and % of the machine's peak)."""
    headers = ["framework"] + [point_header(sweep, p) for p in sweep.points]
    rows = []
    for label, line in sweep.rows.groupby("label", sort=True):
        by_point = {int(r[sweep.axis]): r for _, r in line.iterrows()}
        rows.append([md_text(label) if markdown else label] + [cell(by_point.get(p)) for p in sweep.points])
    return tabulate(rows, headers=headers, tablefmt="github" if markdown else "simple", disable_numparse=True,
                    colalign=("left",) + ("right",) * len(sweep.points))


def groups(found: list[Sweep]) -> list[tuple[str, str, str, str]]:
    """`Sweep.key`s of these sweeps, in order: one scaling figure each."""
    return list(dict.fromkeys(s.key for s in found))


def figure(frame: pd.DataFrame, key: tuple[str, str, str, str], palette: dict) -> str:
    """The scaling figure (SVG) of one (workload, dataset, scenario, precision)."""
    from reports import plots

    group = frame[(frame[["workload", "dataset", "scenario", "precision"]] == key).all(axis=1)]
    return plots.scaling(group, palette, figure_title(*key))


def figure_name(workload: str, dataset: str, scenario: str, precision: str = DEFAULT_PRECISION) -> str:
    """The scaling figure's file beside summary.md."""
    suffix = "" if precision == DEFAULT_PRECISION else f"-{precision}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"scaling-{workload}-{scenario}-{dataset}{suffix}") + ".svg"


def figure_title(workload: str, dataset: str, scenario: str, precision: str = DEFAULT_PRECISION) -> str:
    return f"Scaling: {_subject(workload, dataset, scenario, precision)}"


def markdown_section(frame: pd.DataFrame) -> str:
    """'## Scaling': per workload and scenario its figure (a file beside summary.md, `figure_name`),
    then per sweep its table (samples/s, % of peak) and its crossovers; '' without sweeps."""
    found = sweeps(frame)
    if not found:
        return ""
    parts = ["## Scaling", "samples/s (median; % of the machine's matmul peak) at each point of a sweep; "
             "every point is a trial of its own"]
    for key in groups(found):
        parts.append(f"![{md_text(figure_title(*key))}]({figure_name(*key)})")
        for sweep in (s for s in found if s.key == key):
            parts += [f"### {md_text(sweep.title)}", sweep_table(sweep, markdown=True), md_text(verdict(sweep))]
    return "\n\n".join(parts)


def text_section(frame: pd.DataFrame) -> str:
    """The sweeps for the terminal: each one's table and crossovers; '' without sweeps."""
    return "\n\n".join(f"{s.title}\n{sweep_table(s, markdown=False)}\n{verdict(s)}" for s in sweeps(frame))


CSV_COLUMNS = ["sweep", "workload", "dataset", "scenario", "precision", "axis", "point", "fixed_axis", "fixed", "label",
               "throughput", "throughput_low", "throughput_high", "flops_per_step", "peak_fraction", "fastest"]


def csv_text(frame: pd.DataFrame) -> str:
    """Every sweep's points as one long table (a `sweep` column names the table each row belongs to)."""
    rows = []
    for sweep in sweeps(frame):
        leaders = {p: sweep.fastest(p)["label"] for p in sweep.points}
        for _, r in sweep.rows.iterrows():
            rows.append({"sweep": sweep.title, "workload": sweep.workload, "dataset": sweep.dataset,
                         "scenario": sweep.scenario, "precision": sweep.precision, "axis": sweep.axis,
                         "point": int(r[sweep.axis]),
                         "fixed_axis": sweep.other, "fixed": sweep.fixed, "label": r["label"],
                         "throughput": r["throughput"], "throughput_low": r["throughput_low"],
                         "throughput_high": r["throughput_high"],
                         "flops_per_step": flops_per_step(r), "peak_fraction": r["peak_fraction"],
                         "fastest": leaders[int(r[sweep.axis])] == r["label"]})
    buffer = io.StringIO()
    pd.DataFrame(rows, columns=CSV_COLUMNS).to_csv(buffer, index=False)
    return buffer.getvalue()


def flops_per_step(row: pd.Series) -> float | None:
    """FLOPs of one timed step or call: per sample times the batch."""
    if pd.isna(row["flops_per_sample"]) or pd.isna(row["batch_size"]):
        return None
    return float(row["flops_per_sample"]) * float(row["batch_size"])
