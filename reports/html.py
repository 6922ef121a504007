"""report.html: one self-contained page (inline CSS, SVG figures, a few lines of JavaScript to
sort tables; nothing fetched from anywhere), with a verdict, a table and figures per workload,
then the failures and the environment. Every string taken from a record or a manifest is escaped."""
from __future__ import annotations

import html
import math
import re
from datetime import datetime, timezone

import pandas as pd

from harness.files import BadFile
from harness.record import TrialRecord
from reports import phases, plots, precision, scaling
from reports.aggregate import CI_95, record_case
from reports.tables import SORT_COLUMNS, interval_header, table_headers, table_keys, table_rows

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1f24;background:#fff}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 6px;border-bottom:1px solid #d8dee4;padding-bottom:4px}
.meta{color:#57606a;margin:0 0 12px}nav a{margin-right:14px}
.verdict{background:#f6f8fa;border-left:4px solid #2da44e;padding:8px 12px;margin:8px 0 12px}
.verdict.warn{border-left-color:#bf8700}
table{border-collapse:collapse;width:100%;font-size:12.5px;margin:6px 0 14px}
th,td{padding:4px 7px;border-bottom:1px solid #eaeef2;text-align:right;white-space:nowrap}
th:first-child,td:first-child,th:nth-child(2),td:nth-child(2),th:nth-child(3),td:nth-child(3){text-align:left}
th{background:#f6f8fa;cursor:pointer;user-select:none;position:sticky;top:0}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
tr.failed td{color:#cf222e}tr.skipped td{color:#6e7781}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:8px 18px}
.figs svg{max-width:100%;height:auto}
pre{background:#f6f8fa;padding:8px;overflow-x:auto;white-space:pre-wrap;font-size:12px}
ul.settings li{margin:2px 0}
table.sweep th:nth-child(n+2),table.sweep td:nth-child(n+2){text-align:right}h3{font-size:15px;margin:14px 0 4px}
"""

# Click a header to sort by its data-sort values (numbers numerically, empty cells last).
SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute("data-sort"), y = b.cells[col].getAttribute("data-sort");
        if (x === "") return 1; if (y === "") return -1;
        var nx = parseFloat(x), ny = parseFloat(y);
        var d = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? d : -d;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
document.body.setAttribute("data-ready", "1");
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _sort_value(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return _e(value)


def _verdict(group: pd.DataFrame) -> tuple[str, bool]:
    """One sentence for a glance: who is fastest, by how much, how sure, accuracy, memory."""
    ok = group[group["throughput"].notna()].sort_values("throughput", ascending=False)
    if ok.empty:
        return "No trial of this workload finished.", True
    best = ok.iloc[0]
    infer = bool(group["scenario"].eq("infer").all())
    unit = "steps/s" if group["latency_p50_s"].notna().any() and not infer else "samples/s"
    rate = best["steps_per_s"] if unit == "steps/s" else best["throughput"]
    text = f"Fastest: <b>{_e(best['label'])}</b> at {rate:,.0f} {unit}"
    warn = False
    if len(ok) > 1:
        second = ok.iloc[1]
        ratio = best["throughput"] / second["throughput"]
        text += f", {ratio:.2f}× the next, <b>{_e(second['label'])}</b>"
        if not (best["throughput_interval"] == second["throughput_interval"] == CI_95):
            # One process each: the spread inside a run says nothing of how far another run lands.
            text += (" (one process each, so this run cannot tell whether the difference holds in another: "
                     "--repeats 3 would resolve it)")
            warn = True
        elif best["throughput_low"] <= second["throughput_high"]:
            text += " (their 95% confidence intervals overlap: not a clear win; more --repeats would resolve it)"
            warn = True
        else:
            text += " (95% confidence intervals apart)"
    if infer:
        lean = ok.dropna(subset=["peak_rss_bytes"]).sort_values("peak_rss_bytes")
        fastest_call = ok.dropna(subset=["latency_p50_s"]).sort_values("latency_p50_s")
        if len(fastest_call):
            text += (f". Shortest call: <b>{_e(fastest_call.iloc[0]['label'])}</b>, "
                     f"p50 {fastest_call.iloc[0]['latency_p50_s'] * 1e3:,.3g} ms")
        if len(lean):
            text += (f". Least memory: <b>{_e(lean.iloc[0]['label'])}</b>, "
                     f"{lean.iloc[0]['peak_rss_bytes'] / 2**20:,.0f} MiB peak RSS")
    else:
        text += ". "
        with_target = ok[ok["target_accuracy"].notna()]
        missed = with_target[with_target["time_to_target_s"].isna()]
        text += f"Target accuracy reached by {len(with_target) - len(missed)} of {len(with_target)}"
        if len(missed):
            text += " (" + "; ".join(f"{_e(r['label'])}: {_e(r['to_target'])}" for _, r in missed.iterrows()) + ")"
            warn = True
        lean = ok.dropna(subset=["training_memory_bytes"]).sort_values("training_memory_bytes")
        if len(lean):
            text += (f". Least memory in training: <b>{_e(lean.iloc[0]['label'])}</b>, "
                     f"{lean.iloc[0]['training_memory_bytes'] / 2**20:,.0f} MiB above the built model")
    failed = group[group["throughput"].isna()]
    if len(failed):
        text += f". {len(failed)} not measured (see below)"
        warn = True
    return text + ".", warn


def _table(group: pd.DataFrame) -> str:
    with_latency = bool(group["latency_p50_s"].notna().any())
    keys = table_keys(group, with_latency)
    head = "".join(f"<th scope=col>{_e(h)}</th>" for h in table_headers(group, with_latency))
    body = []
    for (_, row), cells in zip(group.iterrows(), table_rows(group, with_latency)):
        status = str(row["status"])
        css = "" if status.startswith("ok") else (" class=skipped" if status == "skipped" else " class=failed")
        tds = "".join(f"<td data-sort=\"{_sort_value(row[SORT_COLUMNS[h]])}\">{_e(c)}</td>"
                      for h, c in zip(keys, cells))
        body.append(f"<tr{css}>{tds}</tr>")
    return f"<table class=sortable><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figures(group: pd.DataFrame, records: list[TrialRecord], palette: dict) -> str:
    measured = group[group["throughput"].notna()]
    if measured.empty:
        return ""
    ok = [r for r in records if r.status == "ok"]
    # One record per label for the curves (the first repeat); the bars pool all repeats.
    curves = list({r.label: r for r in sorted(ok, key=lambda r: -r.repeat)}.values())
    figs = [plots.throughput(measured, palette, interval_header(measured))]
    target = measured["target_accuracy"].dropna()
    if any(r.evaluations for r in curves):
        figs.append(plots.accuracy_over_time(curves, float(target.iloc[0]) if len(target) else None, palette,
                                             dict(zip(measured["label"], measured["to_target"]))))
    if any(r.step_losses for r in curves):
        figs.append(plots.loss_curves(curves, palette))
    if measured["training_memory_bytes"].notna().any() and measured["scenario"].eq("train").all():
        figs.append(plots.memory(measured, palette))
    if measured["peak_fraction"].notna().any():
        figs.append(plots.efficiency(measured, palette))
    return "<div class=figs>" + "".join(f"<figure>{svg}</figure>" for svg in figs) + "</div>"


def _time_section(records: list[TrialRecord]) -> str:
    """Each trial's seconds by phase: the stacked bars, the table, the run's total by phase."""
    table = phases.frame(records)
    if table.empty:
        return ""
    columns = [phases.TOTAL, *phases.phase_columns(table)]
    head = "".join(f"<th scope=col>{_e(h)}</th>" for h in ["case", "framework", *columns])
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>" for cells in phases.cells(table))
    return (f"<section><h2 id=time>Where each trial's time went</h2><p class=meta>{_e(phases.total_line(records))}"
            f"</p><div class=figs><figure>{plots.phase_breakdown(table, phases.phase_columns(table))}</figure></div>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>")


def _problems(frame: pd.DataFrame, unreadable: list[BadFile]) -> str:
    bad = frame[frame["status"] != "ok"]
    if bad.empty and not unreadable:
        return ""
    items = "".join(f"<li><b>{_e(r['label'])}</b> / {_e(r['case'])} ({_e(r['dataset'])}): "
                    f"<b>{_e(r['status'])}</b><pre>{_e(r['reason'] or 'no reason recorded')}</pre></li>"
                    for _, r in bad.iterrows())
    items += "".join(f"<li><b>unreadable, left out</b>: {_e(exc.path)}<pre>{_e(exc.problem)}</pre></li>"
                     for exc in unreadable)
    return f"<h2 id=problems>Skipped or failed</h2><ul>{items}</ul>"


def _scaling_sections(frame: pd.DataFrame, palette: dict) -> tuple[list[str], list[str]]:
    """Per workload, dataset and scenario with a sweep: where the fastest framework changes, the
    scaling figure, and one table per sweep. Returns (nav links, sections)."""
    found = scaling.sweeps(frame)
    links, sections = [], []
    for key in scaling.groups(found):
        mine = [s for s in found if s.key == key]
        title = scaling.figure_title(*key)  # "Scaling: mnist_mlp training on mnist"
        anchor = _e("s-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", title.removeprefix("Scaling: ")))
        verdict = " ".join(f"<b>{_e(s.title)}</b>: {_e(scaling.verdict(s))}" for s in mine)
        tables = "".join(f"<h3>{_e(s.title)}</h3>{_sweep_table(s)}" for s in mine)
        links.append(f"<a href=\"#{anchor}\">{_e(title.replace('Scaling', 'scaling', 1))}</a>")
        sections.append(f"<section class=scaling><h2 id=\"{anchor}\">{_e(title)}</h2>"
                        f"<p class=verdict>{verdict}</p><div class=figs><figure>"
                        f"{scaling.figure(frame, key, palette)}</figure></div>{tables}</section>")
    return links, sections


def _sweep_table(sweep: scaling.Sweep) -> str:
    points = sweep.points
    head = "<th scope=col>framework</th>" + "".join(
        f"<th scope=col>{_e(scaling.point_header(sweep, p))}</th>" for p in points)
    body = []
    for label, line in sweep.rows.groupby("label", sort=True):
        by_point = {int(r[sweep.axis]): r for _, r in line.iterrows()}
        cells = "".join(f"<td>{_e(scaling.cell(by_point.get(p)))}</td>" for p in points)
        body.append(f"<tr><td>{_e(label)}</td>{cells}</tr>")
    return f"<table class=sweep><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render(frame: pd.DataFrame, records: list[TrialRecord], settings: list[str], title: str,
           subtitle: str, unreadable: list[BadFile] = ()) -> str:
    """The page. `settings`: plain-text lines about the environment and the fairness settings."""
    palette = plots.colors(frame["label"])
    sections, links = [], []
    for (case, dataset), group in frame.groupby(["case", "dataset"], sort=False):
        anchor = _e("w-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{case}-{dataset}"))
        verdict, warn = _verdict(group)
        chosen = [r for r in records if record_case(r) == case and r.dataset == dataset]
        links.append(f"<a href=\"#{anchor}\">{_e(case)} on {_e(dataset)}</a>")
        sections.append(f"<section><h2 id=\"{anchor}\">{_e(case)} on {_e(dataset)}</h2>"
                        f"<p class=\"verdict{' warn' if warn else ''}\">{verdict}</p>{_table(group)}"
                        f"{_figures(group, chosen, palette)}</section>")
    scaling_links, scaling_sections = _scaling_sections(frame, palette)
    links += scaling_links
    sections += scaling_sections
    precision_section = precision.html_section(frame, _e)
    if precision_section:
        links.append("<a href=\"#precision\">precision</a>")
        sections.append(precision_section)
    time_section = _time_section(records)
    if time_section:
        links.append("<a href=\"#time\">where the time went</a>")
        sections.append(time_section)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content=\"width=device-width,initial-scale=1\">"
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{_e(title)}</h1><p class=meta>{_e(subtitle)} · generated {generated}</p>"
        f"<nav>{''.join(links)}<a href=\"#settings\">environment</a></nav>"
        + "".join(sections) + _problems(frame, list(unreadable))
        + "<h2 id=settings>Environment and fairness settings</h2><ul class=settings>"
        + "".join(f"<li>{_e(line)}</li>" for line in settings) + "</ul>"
        f"</main><script>{SORT_JS}</script></body></html>\n"
    )
