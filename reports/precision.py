"""Precision: each framework's speed and accuracy in every precision measured, against its own
float32 figure of the same case, and the mechanism it applied (from its records). From the
summary frame only; a run in float32 alone has no such section."""
from __future__ import annotations

import pandas as pd
from tabulate import tabulate

from adapters.numerics import DEFAULT_PRECISION
from reports.aggregate import case_name
from reports.tables import accuracy_cell, md_text

HEADERS = ["framework", "precision", "status", "samples/s", "vs own fp32", "test acc", "applied"]
KEYS = ["workload", "scenario", "batch_size", "width", "dataset"]


def comparisons(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(title, rows) per case and dataset measured in a precision other than fp32: one row per
    framework and precision, float32 first."""
    if frame.empty or frame["precision"].eq(DEFAULT_PRECISION).all():
        return []
    out = []
    for key, group in frame.groupby(KEYS, sort=False, dropna=False):
        if group["precision"].eq(DEFAULT_PRECISION).all():
            continue
        workload, scenario, batch, width, dataset = key
        batch, width = (None if pd.isna(v) else int(v) for v in (batch, width))
        title = f"{case_name(workload, scenario, batch, width)} on {dataset}"
        out.append((title, group.sort_values(["label"], kind="stable")))
    return out


def _cells(group: pd.DataFrame) -> list[list[str]]:
    fp32 = {r["label"]: r["throughput"] for _, r in group.iterrows() if r["precision"] == DEFAULT_PRECISION}
    rows = []
    for _, r in group.iterrows():
        speed, base = r["throughput"], fp32.get(r["label"])
        measured = pd.notna(speed)
        ratio = f"{speed / base:.2f}×" if measured and base and pd.notna(base) else "–"
        applied = r["precision_applied"] or (r["reason"].splitlines()[0] if r["reason"] else "–")
        applied = applied.removeprefix(f"{r['precision']}: ")
        rows.append([r["label"], r["precision"], r["status"], f"{speed:,.0f}" if measured else "–", ratio,
                     accuracy_cell(r), applied])
    return rows


def markdown_section(frame: pd.DataFrame) -> str:
    found = comparisons(frame)
    if not found:
        return ""
    parts = ["## Precision", "Each framework in its own mechanism for each precision (the `applied` column, from its "
             "records); `vs own fp32`: samples/s against the same framework's float32 trial of this run. The "
             "accuracy target applies in every precision."]
    for title, group in found:
        rows = [[md_text(c) for c in row] for row in _cells(group)]
        parts += [f"### {md_text(title)}", tabulate(rows, headers=HEADERS, tablefmt="github", disable_numparse=True)]
    return "\n\n".join(parts)


def text_section(frame: pd.DataFrame) -> str:
    return "\n\n".join(f"Precision: {title}\n" + tabulate(_cells(group), headers=HEADERS, disable_numparse=True,
                                                         maxcolwidths=[None] * 6 + [60])
                       for title, group in comparisons(frame))


def html_section(frame: pd.DataFrame, escape) -> str:
    """The same tables for report.html (`escape`: its HTML escaping)."""
    found = comparisons(frame)
    if not found:
        return ""
    parts = ["<section class=precision><h2 id=precision>Precision</h2><p>Each framework in its own mechanism for "
             "each precision (from its records); <i>vs own fp32</i>: samples/s against the same framework's float32 "
             "trial of this run. The accuracy target applies in every precision.</p>"]
    head = "".join(f"<th scope=col>{escape(h)}</th>" for h in HEADERS)
    for title, group in found:
        body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in _cells(group))
        parts.append(f"<h3>{escape(title)}</h3><table class=sweep><thead><tr>{head}</tr></thead>"
                     f"<tbody>{body}</tbody></table>")
    return "".join(parts) + "</section>"
