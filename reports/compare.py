"""A baseline against a current run: per (trial, metric) the ratio current / baseline with a 95%
confidence interval and a test, direction-aware, the family-wise error rate held across the
comparison's tests.

A change counts (regression or improvement) only when the data show it is practically large: the
test is of "changed by more than the threshold" (default 5%), not of "changed at all", and its
p-value, Holm-adjusted over every test of the comparison (all trials, all metrics), is below
FAMILY_ALPHA. So a comparison of 27 trials with no real change flags any of them at most 5% of the
time, not 27 chances at 1% each. Besides: a trial that was ok and now fails is a regression, and
so is a final accuracy that fell below the workload's target.

The unit of comparison is the process (a trial's repeat): on a shared machine whole processes run
faster or slower than each other (on this project's 2-core machines, by 5-20%), so blocks of one
process are not independent evidence. Each process gives one value (its median block throughput,
or its single figure for the other metrics); the test is a t-test on their logarithms with the
between-process spread pooled over all trials of the comparison (many degrees of freedom from a
few repeats each), moderated by each trial's own spread (some frameworks are much noisier than
others). When no trial has more than one process on either side, that spread cannot be seen, and
no within-run statistic can stand in for it (a process's blocks say nothing about how far the next
process lands): the metrics are then reported as "not testable" and never fail the gate; status
changes and accuracy below the target still do. Use `--repeats 3` for a gate that holds on noisy
runners (`tools/gate_power.py` measures what it detects).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import t as student_t
from tabulate import tabulate

from reports.baseline import METRICS, machine_speed, per_process
from reports.stats import Noise, moderated_sd, paired_noise, pooled_noise, process_logs

FAMILY_ALPHA = 0.05
DEFAULT_THRESHOLD_PCT = 5.0
DEFAULT_METRICS = ("throughput", "test_accuracy", "peak_rss_bytes")
ONE_PROCESS = "one process per side: run-to-run noise cannot be estimated (use --repeats 3)"


@dataclass
class Change:
    workload: str
    dataset: str
    label: str
    metric: str
    verdict: str  # regression, improvement, unchanged, not testable
    baseline: float | None = None  # per side: geometric mean over processes of each process's median
    current: float | None = None
    ratio: float | None = None  # current / baseline
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None  # of "changed by more than the threshold", this test alone
    p_adjusted: float | None = None  # the same, Holm-adjusted over the comparison's tests
    n_baseline: int = 0
    n_current: int = 0
    note: str = ""
    worse: bool = False  # the direction the estimate points to


@dataclass
class Comparison:
    changes: list[Change] = field(default_factory=list)
    only_baseline: list[str] = field(default_factory=list)
    only_current: list[str] = field(default_factory=list)
    environment: list[str] = field(default_factory=list)  # how the two environments differ
    thresholds: dict[str, float] = field(default_factory=dict)
    noise: dict[str, Noise] = field(default_factory=dict)  # per metric
    machine_gflops: tuple[float | None, float | None] = (None, None)  # baseline, current (harness.peak.machine_speed)
    tests: int = 0  # the family the adjustment covers
    paired: bool = False  # an A/B run: processes compared pair by pair

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.verdict == "regression"]


def describe_noise(metric: str, noise: Noise, paired: bool = False) -> str:
    if not noise.df:
        return f"{metric}: {ONE_PROCESS}; its changes are shown, not tested"
    if paired:
        return (f"{metric}: paired by repeat (each head process against the base process run beside it): "
                f"spread of their log ratio {noise.sd:.1%}, pooled over {noise.groups} trial(s), "
                f"{noise.df} degrees of freedom")
    return (f"{metric}: run-to-run spread {noise.sd:.1%} (log scale, pooled over {noise.groups} trial-side(s) "
            f"with repeats, {noise.df} degrees of freedom)")


def _threshold_test(estimate: float, se: float, df: int, threshold: float) -> dict:
    """The 95% interval of the ratio exp(estimate) and the p-value of "changed by more than
    `threshold`": the smaller of the two one-sided t-tests against the thresholds in either
    direction, doubled."""
    down, up = math.log(1 - threshold) if threshold < 1 else -math.inf, math.log(1 + threshold)
    if se == 0:
        ratio = math.exp(estimate)
        p_down, p_up = float(not estimate < down), float(not estimate > up)  # 0 beyond the threshold, else 1
        interval = (ratio, ratio)
    else:
        half = float(student_t.ppf(0.975, df)) * se
        interval = (math.exp(estimate - half), math.exp(estimate + half))
        p_down = float(student_t.cdf((estimate - down) / se, df))  # H0: the change is not below -threshold
        p_up = float(student_t.sf((estimate - up) / se, df))  # H0: the change is not above +threshold
    return {"ci_low": interval[0], "ci_high": interval[1], "p_value": min(1.0, 2 * min(p_down, p_up))}


def _between_processes(lb: np.ndarray, lc: np.ndarray, noise: Noise) -> tuple[float, float, int]:
    """(estimate, standard error, df) of the difference of mean log values, with the trial's own
    spread moderated by the pooled one (`reports.stats.moderated_sd`)."""
    own_squares = float(((lb - lb.mean()) ** 2).sum() + ((lc - lc.mean()) ** 2).sum())
    sd, df = moderated_sd(own_squares, lb.size - 1 + lc.size - 1, noise)
    return float(lc.mean() - lb.mean()), sd * math.sqrt(1 / lb.size + 1 / lc.size), df


def _paired(lb: np.ndarray, lc: np.ndarray, noise: Noise) -> tuple[float, float, int]:
    """The same from the per-repeat log ratios of processes that ran side by side (an A/B run): a
    slow spell of the machine that both met cancels out."""
    d = lc - lb
    sd, df = moderated_sd(float(((d - d.mean()) ** 2).sum()), d.size - 1, noise)
    return float(d.mean()), sd / math.sqrt(d.size), df


def compare_metric(base: list[list[float]], cur: list[list[float]], higher_is_better: bool, threshold: float,
                   noise: Noise, paired: bool = False) -> dict:
    """The statistics of one metric of one trial: `base` and `cur` hold each process's samples in
    time order; threshold is a fraction (0.05). The figures shown are each side's geometric mean
    over processes of the process's median, so that ratio = current / baseline. `paired`: the
    processes of both sides ran in pairs, in repeat order (an A/B run). The verdict waits for the
    family's adjustment (`holm`), except where there is nothing to test."""
    lb, lc = process_logs(base), process_logs(cur)
    out: dict = {"n_baseline": len(base), "n_current": len(cur)}
    if lb is None or lc is None:
        return {**out, "verdict": "not testable", "note": "a value is not positive"}
    out.update(baseline=float(np.exp(lb.mean())), current=float(np.exp(lc.mean())))
    out["ratio"] = out["current"] / out["baseline"]
    out["worse"] = out["ratio"] < 1 if higher_is_better else out["ratio"] > 1
    if not noise.df:
        return {**out, "verdict": "not testable", "note": ONE_PROCESS}
    if paired and lb.size != lc.size:
        return {**out, "verdict": "not testable", "note": "the sides have different numbers of processes"}
    estimate, se, df = (_paired if paired else _between_processes)(lb, lc, noise)
    return {**out, **_threshold_test(estimate, se, df, threshold), "verdict": "unchanged"}


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment: reject where the adjusted p < alpha, and the chance of any false
    rejection among all the tests stays below alpha, whatever their dependence."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


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


def machine_move(base: list[str], cur: list[str]) -> str | None:
    """How a trial's machines differ between the sides ("machine kind a1b2c3 -> d4e5f6"), when
    both sides know theirs (harness.node fingerprints) and they differ."""
    if not base or not cur or set(base) == set(cur):
        return None
    return f"another kind of machine: {', '.join(sorted(base))} -> {', '.join(sorted(cur))}"


def compare(baseline: dict, current: dict, metrics: tuple[str, ...] = DEFAULT_METRICS,
            thresholds_pct: dict[str, float] | None = None, paired: bool = False) -> Comparison:
    """Every common trial's metrics, tested as a family. `paired`: the two sides are an A/B run,
    whose processes ran side by side in repeat order, so they are compared pair by pair."""
    thresholds = {m: (thresholds_pct or {}).get(m, DEFAULT_THRESHOLD_PCT) for m in metrics}
    result = Comparison(thresholds=thresholds, machine_gflops=(machine_speed(baseline), machine_speed(current)),
                        paired=paired)
    result.environment = environment_differences(baseline.get("environment", {}), current.get("environment", {}))
    base_trials, cur_trials = baseline["trials"], current["trials"]
    result.only_baseline = sorted(set(base_trials) - set(cur_trials))
    result.only_current = sorted(set(cur_trials) - set(base_trials))
    common = sorted(set(base_trials) & set(cur_trials))
    samples = {(key, side, name): per_process(trials[key]["samples"].get(name, []))
               for key in common for side, trials in (("b", base_trials), ("c", cur_trials)) for name in metrics}
    for name in metrics:
        if paired:
            result.noise[name] = paired_noise([(process_logs(samples[key, "b", name]), process_logs(samples[key, "c", name]))
                                               for key in common])
        else:
            result.noise[name] = pooled_noise([v for (_, _, m), v in samples.items() if m == name])
    for key in common:
        b, c = base_trials[key], cur_trials[key]
        moved = machine_move(b.get("fingerprints") or [], c.get("fingerprints") or [])
        if moved:
            result.environment.append(f"{key} ran on {moved}")
        where = {"workload": b["workload"], "dataset": b["dataset"], "label": b["label"]}
        base_ok, cur_ok = "ok" in b["statuses"], all(s == "ok" for s in c["statuses"])
        if base_ok and not cur_ok:
            bad = sorted(set(s for s in c["statuses"] if s != "ok"))
            why = c.get("reasons") or []
            result.changes.append(Change(**where, metric="status", verdict="regression",
                                         note=f"ok in the baseline, now {', '.join(bad)}"
                                              + (f": {why[0]}" if why else "")))
            if "ok" not in c["statuses"]:
                continue
        for name in metrics:
            bs, cs = samples[key, "b", name], samples[key, "c", name]
            if not bs or not cs:
                continue
            stats = compare_metric(bs, cs, METRICS[name].higher_is_better, thresholds[name] / 100, result.noise[name],
                                   paired)
            change = Change(**where, metric=name, **stats)
            target = c.get("target_accuracy")
            if name == "test_accuracy" and target is not None and change.current is not None \
                    and change.current < target <= change.baseline:
                change.verdict, change.note = "regression", f"fell below the target {target:g}"
            result.changes.append(change)
    tested = [c for c in result.changes if c.p_value is not None]
    result.tests = len(tested)
    for change, adjusted in zip(tested, holm([c.p_value for c in tested])):
        change.p_adjusted = adjusted
        if adjusted < FAMILY_ALPHA and change.verdict == "unchanged":
            change.verdict = "regression" if change.worse else "improvement"
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
        p = "–" if c.p_adjusted is None else f"{c.p_adjusted:.2g}"
        rows.append([f"{c.workload} ({c.dataset})", c.label, c.metric, _value(c.metric, c.baseline),
                     _value(c.metric, c.current), ratio, ci, p, f"{c.n_baseline}/{c.n_current}", c.note])
    return rows


HEADERS = ["workload", "framework", "metric", "baseline", "current", "ratio", "95% CI", "p (Holm)", "n", "note"]
SECTIONS = (("regression", "Regressions"), ("improvement", "Improvements"),
            ("not testable", "Not testable"), ("unchanged", "Unchanged"))


def render(result: Comparison, fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"regressions": len(result.regressions), **asdict(result)}, indent=1)
    markdown = fmt == "md"
    verdict = (f"**{len(result.regressions)} regression(s)**" if result.regressions else "**No regression**") \
        if markdown else (f"{len(result.regressions)} regression(s)" if result.regressions else "No regression")
    thresholds = ", ".join(f"{m} {t:g}%" for m, t in result.thresholds.items())
    parts = [("## Benchmark comparison\n\n" if markdown else "") + f"{verdict} "
             f"(a change counts when the test that it exceeds the threshold ({thresholds}) has a p-value below "
             f"{FAMILY_ALPHA:g} after Holm's adjustment over this comparison's {result.tests} test(s); "
             f"ratio = current / baseline)."]
    if result.noise:
        lines = "\n".join(("- " if markdown else "  ") + describe_noise(m, n, result.paired)
                          for m, n in result.noise.items())
        parts.append(f"Noise model (the unit is the process; ratios are of per-process medians):\n{lines}")
    base_speed, cur_speed = result.machine_gflops
    if base_speed and cur_speed:
        parts.append(f"Machine speed (median of a reference matmul taken before each trial): baseline "
                     f"{base_speed:,.0f}, current {cur_speed:,.0f} GFLOP/s, ratio {cur_speed / base_speed:.3f}. "
                     f"The machine itself changing speed moves every trial's throughput alike; a throughput "
                     f"ratio near this one is the machine's, not the code's.")
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
