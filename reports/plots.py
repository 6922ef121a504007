"""The report's figures, drawn with matplotlib (Agg) from the summary frame and the raw records,
returned as inline SVG. Text is drawn as paths (svg.fonttype "path"), so no string from a record
reaches the SVG as markup and the figures look the same without any font installed."""
from __future__ import annotations

import io
from typing import Iterable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from harness.record import TrialRecord  # noqa: E402

plt.rcParams.update({"svg.fonttype": "path", "font.size": 9, "axes.spines.top": False,
                     "axes.spines.right": False, "figure.dpi": 96})
PALETTE = plt.get_cmap("tab10").colors + plt.get_cmap("Dark2").colors
PHASE_COLORS = plt.get_cmap("tab20").colors  # one per harness.record.PHASES entry, the same in every report


def _svg(fig: plt.Figure) -> str:
    buffer = io.StringIO()
    # No metadata block: no date (the same records give the same figure), no RDF namespaces.
    fig.savefig(buffer, format="svg", bbox_inches="tight",
                metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: the SVG is inlined in HTML


def colors(labels: Iterable[str]) -> dict[str, tuple]:
    """One stable color per framework label across every figure of a report."""
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(sorted(set(labels)))}


def _bars(group: pd.DataFrame, value: str, title: str, xlabel: str, palette: dict,
          low: str | None = None, high: str | None = None, fmt=lambda v: f"{v:,.0f}") -> str:
    rows = group[group[value].notna()].sort_values(value)
    fig, ax = plt.subplots(figsize=(7, 0.35 * max(len(rows), 2) + 0.9))
    values = rows[value].to_numpy(float)
    errors = None
    if low and high and rows[low].notna().all():
        errors = np.vstack([values - rows[low].to_numpy(float), rows[high].to_numpy(float) - values])
    ax.barh(range(len(rows)), values, xerr=errors, color=[palette[lbl] for lbl in rows["label"]],
            error_kw={"capsize": 3, "elinewidth": 1})
    ax.set_yticks(range(len(rows)), rows["label"])
    ends = values if errors is None else values + errors[1]
    for i, (v, end) in enumerate(zip(values, ends)):
        ax.text(end, i, " " + fmt(v), va="center", fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_title(title, loc="left")
    ax.set_xlim(0, ends.max() * 1.25 if len(values) else 1)
    return _svg(fig)


def throughput(group: pd.DataFrame, palette: dict, interval: str) -> str:
    """Samples/s with the interval as error bars (`interval` says which: a 95% CI or the within-run
    spread); steps/s where steps are the unit (XOR's latency workloads)."""
    scaled, unit = group, "samples/s"
    if group["latency_p50_s"].notna().any() and group["scenario"].eq("train").all():
        batch = group["throughput"] / group["steps_per_s"]
        columns = ("throughput", "throughput_low", "throughput_high")
        scaled, unit = group.assign(**{c: group[c] / batch for c in columns}), "steps/s"
    return _bars(scaled, "throughput", f"Throughput (median, bars: {interval}), higher is better", unit, palette,
                 "throughput_low", "throughput_high")


def memory(group: pd.DataFrame, palette: dict) -> str:
    """Training memory: peak RSS minus RSS once the model was built (which holds the framework,
    the dataset and the model alike for everyone), the same measure as the tables' column."""
    mib = group.assign(train=group["training_memory_bytes"] / 2**20)
    return _bars(mib, "train", "Memory used by training (peak RSS minus RSS after building the model), "
                 "lower is better", "MiB", palette)


def efficiency(group: pd.DataFrame, palette: dict) -> str:
    pct = group.assign(pct=group["peak_fraction"] * 100)
    return _bars(pct, "pct", "Achieved GFLOP/s as % of the machine's matmul peak", "% of peak", palette,
                 fmt=lambda v: f"{v:.1f}%" if v >= 0.1 else f"{v:.2g}%")


def accuracy_over_time(records: list[TrialRecord], target: float | None, palette: dict,
                       to_target: dict[str, str] | None = None) -> str:
    """Test accuracy at each evaluation against timed training seconds. A trial that did not reach
    the target says so in the legend ("not reached in 20 s (best 0.9712)", as in the tables), and
    ends in a cross; a dotted line marks the trials' training budget, where they had one."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    budgets = sorted({r.budget_s for r in records if r.budget_s})
    for record in records:
        if not record.evaluations:
            continue
        seconds = [e.train_seconds for e in record.evaluations]
        accuracy = [e.test_accuracy for e in record.evaluations]
        missed = record.steps_to_target is None and target is not None
        text = (to_target or {}).get(record.label) or ""
        label = f"{record.label}: {text}" if missed and text.startswith("not reached") else record.label
        line, = ax.plot(seconds, accuracy, marker="o", markersize=3, linewidth=1.2, color=palette[record.label],
                        label=label)
        if missed:
            ax.plot(seconds[-1:], accuracy[-1:], marker="x", markersize=8, color=line.get_color(), linestyle="")
    ax.set_xscale("log")
    if target is not None:
        ax.axhline(target, color="0.4", linestyle="--", linewidth=1)
        # The target's label sits above the plotting area's top-left corner, where no point can cover it.
        ax.annotate(f"target {target:g}", xy=(0, target), xycoords=("axes fraction", "data"), xytext=(2, 2),
                    textcoords="offset points", fontsize=8, color="0.3", va="bottom")
    for budget in budgets:
        ax.axvline(budget, color="0.55", linestyle=":", linewidth=1)
        ax.annotate(f"budget {budget:g} s", xy=(budget, 1), xycoords=("data", "axes fraction"), xytext=(-2, -2),
                    textcoords="offset points", fontsize=8, color="0.3", ha="right", va="top")
    ax.set_xlabel("timed training seconds, log scale (evaluation excluded)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Time to accuracy: further left and higher is better", loc="left")
    ax.legend(fontsize=7, ncols=2, frameon=False, loc="upper left", bbox_to_anchor=(0, -0.2))
    return _svg(fig)


def phase_breakdown(table: pd.DataFrame, phases: list[str]) -> str:
    """Stacked horizontal bars of seconds by phase (reports.phases.frame), one bar per trial row,
    one colour per phase."""
    from harness.record import PHASES

    names = [f"{row['label']} · {row['case']}" for _, row in table.iterrows()]
    fig, ax = plt.subplots(figsize=(7.5, 0.24 * len(table) + 1.6))
    left = np.zeros(len(table))
    for phase in phases:
        values = table[phase].fillna(0).to_numpy(float)
        ax.barh(range(len(table)), values, left=left, color=PHASE_COLORS[PHASES.index(phase)], label=phase,
                height=0.75)
        left += values
    ax.set_yticks(range(len(table)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title("Where each trial's time went", loc="left")
    ax.legend(fontsize=7, ncols=6, frameon=False, loc="upper left", bbox_to_anchor=(0, -0.6 / len(table) - 0.08))
    return _svg(fig)


def loss_curves(records: list[TrialRecord], palette: dict) -> str:
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for record in records:
        losses = np.asarray(record.step_losses, dtype=float)
        if losses.size == 0:
            continue
        window = max(1, losses.size // 50)
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(smooth.size) + window, smooth, linewidth=1.1, color=palette[record.label],
                label=record.label)
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (moving mean)")
    ax.set_title("Loss curves: the same start, the same batches", loc="left")
    ax.legend(fontsize=7, ncols=2, frameon=False)
    return _svg(fig)



def scaling(group: pd.DataFrame, palette: dict, title: str) -> str:
    """Two log-log panels for one workload and scenario: samples/s against batch size, and % of the
    machine's peak against FLOPs per step (a training step or an inference call: per-sample FLOPs x
    batch), which puts every point of a width or batch sweep on one axis from dispatch-bound to
    compute-bound. One line per framework (color) and width (line style), bars: the interval."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    rows = group[group["throughput"].notna()].copy()
    rows["flops_step"] = rows["flops_per_sample"].astype(float) * rows["batch_size"].astype(float)
    widths = sorted(rows["width"].dropna().unique())
    styles = dict(zip(widths, ("-", "--", ":", "-.") * 4))
    markers = dict(zip(widths, "osD^v<>p*h" * 2))
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 3.9))
    for (label, width), line in rows.groupby(["label", rows["width"].fillna(-1)], sort=True):
        line = line.sort_values("batch_size")
        tag = label if len(widths) < 2 else f"{label}, width {width:.0f}"
        style = {"color": palette[label], "linestyle": styles.get(width, "-"), "marker": markers.get(width, "o"),
                 "markersize": 3.5, "linewidth": 1.2}
        values = line["throughput"].to_numpy(float)
        errors = None
        if line["throughput_low"].notna().all():
            errors = [values - line["throughput_low"].to_numpy(float), line["throughput_high"].to_numpy(float) - values]
        left.errorbar(line["batch_size"].to_numpy(float), values, yerr=errors, capsize=2, label=tag, **style)
        efficient = line[line["peak_fraction"].notna()].sort_values("flops_step")
        if len(efficient):
            right.plot(efficient["flops_step"], efficient["peak_fraction"] * 100, **style)
    batches = sorted(rows["batch_size"].dropna().unique())
    left.set(xscale="log", yscale="log", xlabel="batch size (log)", ylabel="samples/s (log)")
    left.set_xticks(batches, [f"{b:.0f}" for b in batches])
    left.xaxis.set_minor_formatter(NullFormatter())
    left.yaxis.set_major_formatter(ScalarFormatter())
    left.set_title("Throughput against batch size (bars: interval)", loc="left")
    right.set(xscale="log", yscale="log", xlabel="FLOPs per step or call (log)", ylabel="% of matmul peak (log)")
    right.yaxis.set_major_formatter(ScalarFormatter())
    right.set_title("Efficiency against work per step", loc="left")
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncols=min(len(labels), 3), fontsize=7, frameon=False,
               bbox_to_anchor=(0.5, -0.02 - 0.045 * ((len(labels) + 2) // 3)))
    fig.suptitle(title, x=0.01, ha="left", fontsize=10)
    fig.tight_layout()
    return _svg(fig)
