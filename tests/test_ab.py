"""`bench.py ab`: two revisions of a real git repository, their trials interleaved on this machine.

The repository is a copy of this project's working tree with two commits: the second slows the
NumPy stand-in framework's training step by half on the MLP and breaks it on XOR. The A/B run must
find the slowdown, report the broken trial with its reason, exit 1 and name both. (That identical
revisions pass is the synthetic family-wise test in test_compare.py: a real
run without a change passes with a probability of 95% by design, which no test may leave to chance.)
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.alone  # an A/B run's ratio is a timing

SLOWDOWN = '''
    _real_train_step = train_step

    def train_step(self, i: int) -> float:  # half the throughput: each step takes twice as long
        import time
        if self.spec.name == "xor":
            raise RuntimeError("broken in this commit")
        start = time.perf_counter()
        loss = self._real_train_step(i)
        wait_until = time.perf_counter() + (time.perf_counter() - start)
        while time.perf_counter() < wait_until:
            pass
        return loss
'''


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def project_repository(folder: Path) -> Path:
    """This working tree (not only what is committed) as a fresh repository of one commit."""
    repo = folder / "repo"
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(".venv", ".git", "results", "__pycache__",
                                                               ".pytest_cache", ".hypothesis"))
    git(repo, "init", "--quiet")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "base")
    return repo


def test_ab_run_finds_a_halved_throughput_and_names_the_trial(tmp_path, data_dir):
    repo = project_repository(tmp_path)
    adapters = repo / "tests" / "fake_adapters.py"
    text = adapters.read_text()
    marker = "    def stage(self, x: np.ndarray, y: np.ndarray) -> None:\n        self.batches = split_batches"
    assert text.count(marker) == 1
    end = text.index("\n\n\n", text.index("    def train_step(self, i: int) -> float:", text.index(marker)))
    adapters.write_text(text[:end] + "\n" + SLOWDOWN + text[end:])
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-am", "slow the numpy step")

    summary = tmp_path / "summary.md"
    out = subprocess.run([sys.executable, str(repo / "tests" / "fake_bench.py"), "ab", "HEAD~1", "HEAD",
                          "-f", "numpy", "-w", "xor", "-w", "mnist_mlp", "--profile", "ci", "--repeats", "3",
                          "--threads", "1",
                          "--out", str(tmp_path / "ab"), "--summary", str(summary)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "BENCH_DATA_DIR": str(data_dir)})
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    assert "bench.py ab: regression: numpy mnist_mlp (mnist) throughput" in out.stderr
    assert "bench.py ab: numpy xor (xor) error in HEAD" in out.stderr
    ratio = float(re.search(r"numpy mnist_mlp \(mnist\) throughput ([0-9.]+)x", out.stderr).group(1))
    # 0.5 by construction. (A 30% slowdown of XOR, whose 35 us steps vary by 40% between processes
    # on a shared runner, came out anywhere from 0.59 to 0.79 and was sometimes not significant.)
    assert 0.35 < ratio < 0.65, out.stderr
    text = summary.read_text()
    assert text.startswith("A/B on this machine: HEAD (")
    # The slowdown and the status. (The ci profile trains the MLP for a time budget, so half the
    # steps may also cost accuracy: a third regression that noise can leave unproven.)
    regressions = text[text.index("### Regressions"):text.index("### Unchanged")]
    assert re.search(r"\| mnist_mlp \(mnist\) \| numpy +\| throughput", regressions)
    assert re.search(r"\| xor \(xor\) +\| numpy +\| status", regressions)
    assert "### Trials that failed in HEAD (3)" in text and "broken in this commit" in text
    folder = next((tmp_path / "ab").iterdir())
    assert (folder / "comparison.md").read_text() == text
    runs = {side: next((folder / side).iterdir()) for side in ("base", "head")}
    for side, run in runs.items():
        assert len(list((run / "records").glob("*.json"))) == 6 and (run / "report.html").exists()
    # The trials alternated: base, head, then head, base, ...
    started = sorted((p.stat().st_mtime_ns, side) for side, run in runs.items()
                     for p in (run / "records").glob("*.json"))
    assert [side for _, side in started] == ["base", "head", "head", "base"] * 3
    assert not (folder / "worktrees").exists() and "worktrees" not in git(repo, "worktree", "list")


@pytest.mark.parametrize("ref, message", [("nosuchbranch", "unknown revision 'nosuchbranch'")])
def test_ab_names_an_unknown_revision(ref, message):
    out = subprocess.run([sys.executable, str(ROOT / "bench.py"), "ab", ref, "--profile", "ci", "-f", "pytorch",
                          "-w", "xor"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_a_revision_without_precision_support_skips_reduced_precision_trials(fakes, tmp_path):
    """Its harness would drop the precision it does not know and measure float32 under the label."""
    from dataclasses import replace

    from harness.ab import Side, _problem
    from tests.conftest import make_trial

    old = tmp_path / "old"
    (old / "adapters").mkdir(parents=True)
    side = Side("base", "v0.1", "0" * 40, old, sys.executable, tmp_path / "envs")
    trial = make_trial("tests.fake_adapters:NumpyAdapter", framework="numpy")
    assert _problem(side, trial, {}, tmp_path / "envs") is None  # float32 runs as it always did
    for changed in (replace(trial, precision="mixed-bf16"), replace(trial, tf32=True), replace(trial, autotune=False)):
        assert "predates --precision, --tf32 and --autotune" in _problem(side, changed, {}, tmp_path / "envs")
    (old / "adapters" / "numerics.py").write_text("")
    assert _problem(side, replace(trial, precision="mixed-bf16"), {}, tmp_path / "envs") is None
