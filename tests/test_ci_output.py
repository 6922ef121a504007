"""CI-native output: the markdown appended to $GITHUB_STEP_SUMMARY by run and compare themselves,
`::error::` annotations naming each regressed or failed trial on GitHub Actions, and JUnit XML
(one test case per trial and per gate check) that a CI test reporter can read."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

import bench
from tests.test_compare import synthetic_run


@pytest.fixture
def github(tmp_path, monkeypatch):
    summary = tmp_path / "step_summary.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    return summary


def test_compare_appends_its_markdown_annotates_regressions_and_writes_junit(tmp_path, github, capsys):
    base = synthetic_run(tmp_path, "base", seed=1, repeats=3, process_noise=0.02)
    slow = synthetic_run(tmp_path, "slow", speed=0.7, seed=2, repeats=3, process_noise=0.02, status="error")
    junit = tmp_path / "gate.xml"
    assert bench.main(["compare", str(base), str(slow), "--junit", str(junit)]) == 1
    out = capsys.readouterr().out
    text = github.read_text()
    assert text.startswith("# earlier step\n") and "regression(s)**" in text and "| workload" in text and "tensorflow" in text
    errors = [line for line in out.splitlines() if line.startswith("::error ")]
    assert any("tensorflow mnist_mlp (mnist) throughput 0.6" in line for line in errors), errors
    assert any("pytorch mnist_mlp (mnist) status" in line and "RuntimeError: boom" in line for line in errors)
    suite = ET.parse(junit).getroot().find("testsuite")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["tensorflow throughput"].find("failure") is not None
    assert "regression: tensorflow mnist_mlp (mnist) throughput" in cases["tensorflow throughput"].find("failure").get("message")
    assert int(suite.get("failures")) == sum(c.find("failure") is not None for c in cases.values()) >= 2
    assert int(suite.get("tests")) == len(cases)


def test_no_annotations_outside_github_actions_and_no_summary_without_the_variable(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    base = synthetic_run(tmp_path, "base", seed=1, repeats=3, process_noise=0.02)
    slow = synthetic_run(tmp_path, "slow", speed=0.7, seed=2, repeats=3, process_noise=0.02)
    assert bench.main(["compare", str(base), str(slow)]) == 1
    assert "::error" not in capsys.readouterr().out


def test_an_existing_junit_file_is_refused_before_anything_runs(tmp_path, capsys):
    kept = tmp_path / "mine.xml"
    kept.write_text("<mine/>")
    with pytest.raises(SystemExit) as exc:
        bench.main(["run", "-f", "pytorch", "-w", "xor", "--profile", "smoke", "--junit", str(kept),
                    "--out", str(tmp_path / "runs")])
    assert exc.value.code == 2 and "already exists" in capsys.readouterr().err
    assert kept.read_text() == "<mine/>" and not (tmp_path / "runs").exists()


def test_run_writes_a_test_case_per_trial_and_its_summary(tmp_path, github, fakes, capsys, monkeypatch):
    from adapters import FRAMEWORKS, FrameworkInfo

    monkeypatch.setitem(FRAMEWORKS, "crash", FrameworkInfo(
        name="crash", adapter="tests.fake_adapters:CrashAfterSteps", variants=("default",),
        modules={"default": ("numpy",)}, distributions=("numpy",)))
    junit = tmp_path / "trials.xml"
    code = bench.main(["run", "-f", "numpy", "-f", "crash", "-w", "xor", "--profile", "smoke",
                       "--out", str(tmp_path / "runs"), "--junit", str(junit)])
    assert code == 1  # the crashing stand-in framework
    out = capsys.readouterr().out
    assert any(line.startswith("::error title=Trial error: crash") for line in out.splitlines()), out[-2000:]
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert set(cases) == {"xor.xor.numpy.default.r0", "xor.xor.crash.default.r0"}
    assert cases["xor.xor.numpy.default.r0"].find("failure") is None
    assert cases["xor.xor.crash.default.r0"].find("failure").get("type") == "error"
    assert "xor" in github.read_text() and github.read_text().startswith("# earlier step\n")
