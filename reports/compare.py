"""A baseline against a current run: per (trial, metric) the ratio of medians with a bootstrap 95%
confidence interval and a Mann-Whitney U test on the raw samples, direction-aware.

A change counts (regression or improvement) only when it is both significant (p < ALPHA) and
practically large: the whole confidence interval of the ratio lies beyond the threshold (default
5%). Requiring the interval, not just the point estimate, beyond the threshold keeps run-to-run
noise on shared machines from raising false alarms. Besides: a trial that was ok and now fails is a
regression, and so is a final accuracy that fell below the workload's target.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import mannwhitneyu
from tabulate import tabulate

from reports.baseline import METRICS

ALPHA = 0.01
DEFAULT_THRESHOLD_PCT = 5.0
DEFAULT_METRICS = ("throughput", "test_accuracy", "peak_rss_bytes")
RESAMPLES = 2000


@dataclass
class Change:
    workload: str
    dataset: str
    label: str
    metric: str
    verdict: str  # regression, improvement, unchanged, not testable
    baseline: float | None = None  # medians
    current: float | None = None
    ratio: float | None = None  # current / baseline
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    n_baseline: int = 0
    n_current: int = 0
    note: str = ""


@dataclass
class Comparison:
    changes: list[Change] = field(default_factory=list)
    only_baseline: list[str] = field(default_factory=list)
    only_current: list[str] = field(default_factory=list)
    environment: list[str] = field(default_factory=list)  # how the two environments differ
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.verdict == "regression"]


def ratio_ci(base: np.ndarray, cur: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap 95% interval of median(cur) / median(base), each side resampled."""
    rng = np.random.default_rng(seed)
    b = np.median(rng.choice(base, size=(RESAMPLES, base.size)), axis=1)
    c = np.median(rng.choice(cur, size=(RESAMPLES, cur.size)), axis=1)
    low, high = np.quantile(c / b, [0.025, 0.975])
    return float(low), float(high)


def compare_metric(base: list[float], cur: list[float], higher_is_better: bool, threshold: float) -> dict:
    """The statistics and verdict of one metric of one trial; threshold is a fraction (0.05)."""
    b, c = np.asarray(base, float), np.asarray(cur, float)
    out = {"baseline": float(np.median(b)), "current": float(np.median(c)), "n_baseline": b.size, "n_current": c.size}
    if out["baseline"] == 0:
        return {**out, "verdict": "not testable", "note": "baseline median is 0"}
    out["ratio"] = out["current"] / out["baseline"]
    worse = (lambda r: r < 1 - threshold) if higher_is_better else (lambda r: r > 1 + threshold)
    better = (lambda r: r > 1 + threshold) if higher_is_better else (lambda r: r < 1 - threshold)
    if b.size < 2 or c.size < 2:
        beyond = worse(out["ratio"]) or better(out["ratio"])
        return {**out, "verdict": "not testable" if beyond else "unchanged",
                "note": "one sample per side (use --repeats)" if beyond else ""}
    out["ci_low"], out["ci_high"] = ratio_ci(b, c)
    out["p_value"] = float(mannwhitneyu(b, c, alternative="two-sided").pvalue) if not np.array_equal(b, c) else 1.0
    significant = out["p_value"] < ALPHA
    if significant and worse(out["ci_low"]) and worse(out["ci_high"]):
        verdict = "regression"
    elif significant and better(out["ci_low"]) and better(out["ci_high"]):
        verdict = "improvement"
    else:
        verdict = "unchanged"
    return {**out, "verdict": verdict}


def _flatten(prefix: str, value: object) -> dict[str, object]:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            out.update(_flatten(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    return {prefix: value}


def environment_differences(base: dict, cur: dict) -> list[str]:
    a, b = _flatten("", base), _flatten("", cur)
    return [f"{k}: {a.get(k)} -> {b.get(k)}" for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k) and k != "matmul_peak_gflops"]


def compare(baseline: dict, current: dict, metrics: tuple[str, ...] = DEFAULT_METRICS,
            thresholds_pct: dict[str, float] | None = None) -> Comparison:
    thresholds = {m: (thresholds_pct or {}).get(m, DEFAULT_THRESHOLD_PCT) for m in metrics}
    result = Comparison(thresholds=thresholds)
    result.environment = environment_differences(baseline.get("environment", {}), current.get("environment", {}))
    base_trials, cur_trials = baseline["trials"], current["trials"]
    result.only_baseline = sorted(set(base_trials) - set(cur_trials))
    result.only_current = sorted(set(cur_trials) - set(base_trials))
    for key in sorted(set(base_trials) & set(cur_trials)):
        b, c = base_trials[key], cur_trials[key]
        where = {"workload": b["workload"], "dataset": b["dataset"], "label": b["label"]}
        base_ok, cur_ok = "ok" in b["statuses"], all(s == "ok" for s in c["statuses"])
        if base_ok and not cur_ok:
            bad = sorted(set(s for s in c["statuses"] if s != "ok"))
            result.changes.append(Change(**where, metric="status", verdict="regression",
                                         note=f"ok in the baseline, now {', '.join(bad)}"))
            if "ok" not in c["statuses"]:
                continue
        for name in metrics:
            bs, cs = b["samples"].get(name, []), c["samples"].get(name, [])
            if not bs or not cs:
                continue
            stats = compare_metric(bs, cs, METRICS[name].higher_is_better, thresholds[name] / 100)
            change = Change(**where, metric=name, **stats)
            target = c.get("target_accuracy")
            if name == "test_accuracy" and target is not None and change.current < target <= change.baseline:
                change.verdict, change.note = "regression", f"fell below the target {target:g}"
            result.changes.append(change)
    return result


# ---- output -------------------------------------------------------------------------------------

def _value(metric: str, value: float | None) -> str:
    if value is None:
        return "–"
    if metric == "peak_rss_bytes":
        return f"{value / 2**20:,.0f} MiB"
    if metric == "test_accuracy":
        return f"{value:.4f}"
    if metric.endswith("_s"):
        return f"{value:.3g} s"
    return f"{value:,.0f}"


def _rows(changes: list[Change]) -> list[list[str]]:
    rows = []
    for c in changes:
        ratio = "–" if c.ratio is None else f"{c.ratio:.3f}"
        ci = "–" if c.ci_low is None else f"{c.ci_low:.3f}–{c.ci_high:.3f}"
        p = "–" if c.p_value is None else f"{c.p_value:.2g}"
        rows.append([f"{c.workload} ({c.dataset})", c.label, c.metric, _value(c.metric, c.baseline),
                     _value(c.metric, c.current), ratio, ci, p, f"{c.n_baseline}/{c.n_current}", c.note])
    return rows


HEADERS = ["workload", "framework", "metric", "baseline", "current", "ratio", "95% CI", "p", "n", "note"]
SECTIONS = (("regression", "Regressions"), ("improvement", "Improvements"),
            ("not testable", "Changed beyond the threshold, not testable"), ("unchanged", "Unchanged"))


def render(result: Comparison, fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"regressions": len(result.regressions), **asdict(result)}, indent=1)
    markdown = fmt == "md"
    verdict = (f"**{len(result.regressions)} regression(s)**" if result.regressions else "**No regression**") \
        if markdown else (f"{len(result.regressions)} regression(s)" if result.regressions else "No regression")
    thresholds = ", ".join(f"{m} {t:g}%" for m, t in result.thresholds.items())
    parts = [("## Benchmark comparison\n\n" if markdown else "") + f"{verdict} "
             f"(a change counts when p < {ALPHA:g} and its whole 95% CI is beyond the threshold: {thresholds}; "
             f"ratio = current / baseline)."]
    if result.environment:
        lines = "\n".join(("- " if markdown else "  ") + d for d in result.environment)
        parts.append(("**Warning: the environments differ**" if markdown else "Warning: the environments differ")
                     + f" (figures may not be comparable):\n{lines}")
    for key, title in SECTIONS:
        chosen = [c for c in result.changes if c.verdict == key]
        if chosen:
            table = tabulate(_rows(chosen), headers=HEADERS, tablefmt="github" if markdown else "simple",
                             disable_numparse=True)
            parts.append((f"### {title} ({len(chosen)})" if markdown else f"{title} ({len(chosen)}):") + "\n\n" + table)
    for names, title in ((result.only_baseline, "Only in the baseline"), (result.only_current, "Only in the current run")):
        if names:
            parts.append((f"### {title}\n\n" if markdown else f"{title}:\n") +
                         "\n".join(("- " if markdown else "  ") + n for n in names))
    return "\n\n".join(parts) + "\n"
