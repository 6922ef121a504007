"""Output in CI systems' own formats: GitHub Actions' job summary and error annotations, and JUnit
XML for any CI's test reporter (one test case per trial, or per gate check of a comparison)."""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.files import write_text
from harness.record import TrialRecord
from reports.compare import Change, Comparison

SUMMARY_VAR = "GITHUB_STEP_SUMMARY"  # a file GitHub Actions renders as the job's summary
FAILED = ("error", "timeout", "interrupted")


def in_github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true" or bool(os.environ.get(SUMMARY_VAR))


def append_step_summary(markdown: str, already: Path | None = None) -> Path | None:
    """Append to $GITHUB_STEP_SUMMARY (unless it is `already`, a file the command appended to);
    returns the file, or None where the variable is unset. Raises OSError."""
    target = os.environ.get(SUMMARY_VAR)
    if not target or (already is not None and Path(target).absolute() == already.absolute()):
        return None
    with open(target, "a") as fh:
        fh.write(markdown if markdown.endswith("\n") else markdown + "\n")
    return Path(target)


def _escape(text: str) -> str:
    """An annotation's message: GitHub's workflow-command escapes (one line on screen)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def change_text(change: Change) -> str:
    return (f"{change.label} {change.workload} ({change.dataset}) {change.metric}"
            + (f" {change.ratio:.3f}x of the baseline" if change.ratio else "")
            + (f" [95% CI {change.ci_low:.3f}-{change.ci_high:.3f}]" if change.ci_low is not None else "")
            + (f" ({change.note})" if change.note else ""))


def regression_annotations(result: Comparison) -> list[str]:
    return [f"::error title=Regression: {_escape(c.label)}::{_escape('regression: ' + change_text(c))}"
            for c in result.regressions]


def failure_annotations(records: list[TrialRecord]) -> list[str]:
    return [f"::error title=Trial {r.status}: {_escape(r.label)}::"
            f"{_escape(f'{r.trial_id} {r.status}: ' + ((r.reason.splitlines() or [''])[0]))}"
            for r in records if r.status in FAILED]


def _suite(name: str, cases: list[ET.Element]) -> ET.Element:
    suite = ET.Element("testsuite", name=name, tests=str(len(cases)),
                       failures=str(sum(c.find("failure") is not None for c in cases)),
                       skipped=str(sum(c.find("skipped") is not None for c in cases)), errors="0")
    suite.extend(cases)
    return suite


def trial_cases(records: list[TrialRecord]) -> list[ET.Element]:
    cases = []
    for r in sorted(records, key=lambda r: r.trial_id):
        case = ET.Element("testcase", classname=f"dlbench.{r.workload}.{r.dataset}", name=r.trial_id,
                          time=f"{r.wall_seconds or 0:.3f}")
        reason = (r.reason.splitlines() or [""])[0]
        if r.status in FAILED:
            ET.SubElement(case, "failure", message=f"{r.status}: {reason}", type=r.status).text = r.reason
        elif r.status == "skipped":
            ET.SubElement(case, "skipped", message=reason)
        cases.append(case)
    return cases


def check_cases(result: Comparison) -> list[ET.Element]:
    cases = []
    for c in result.changes:
        case = ET.Element("testcase", classname=f"dlbench.compare.{c.workload}.{c.dataset}",
                          name=f"{c.label} {c.metric}", time="0")
        if c.verdict == "regression":
            ET.SubElement(case, "failure", message=f"regression: {change_text(c)}", type="regression")
        elif c.verdict == "not testable":
            ET.SubElement(case, "skipped", message=c.note or "not testable")
        cases.append(case)
    return cases


def write_junit(path: Path, suites: dict[str, list[ET.Element]], overwrite: bool = True) -> None:
    root = ET.Element("testsuites")
    for name, cases in suites.items():
        root.append(_suite(name, cases))
    ET.indent(root)
    write_text(path, '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n",
               overwrite=overwrite)
