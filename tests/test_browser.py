"""report.html in a real browser: headless Chromium, a file URL, the network off. The page must
render, log nothing to the console, look like something, and never run a record's markup."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from reports.summary import write_reports
from tests.test_reports import GOLDEN

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
INJECTED = "<script>document.title='PWNED';document.body.setAttribute('data-pwned','1')</script>"


def chromium(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             # The network off: every request would go to a proxy that is not there.
             "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
             "--hide-scrollbars", "--window-size=1280,2400", "--virtual-time-budget=5000"]
    return subprocess.run([CHROMIUM, *flags, *extra, url], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """The golden run plus a record whose framework name holds a script."""
    run = tmp_path_factory.mktemp("browser") / "run"
    shutil.copytree(GOLDEN, run)
    source = run / "records" / "mnist_mlp.mnist.pytorch.default.r0.json"
    record = json.loads(source.read_text())
    record.update(framework=INJECTED, label=INJECTED, trial_id="mnist_mlp.mnist.evil.default.r0")
    (run / "records" / "mnist_mlp.mnist.evil.default.r0.json").write_text(json.dumps(record))
    return write_reports([run], run, ("html",))["html"]


def test_page_renders_without_console_messages_and_runs_no_record_markup(report, tmp_path):
    result = chromium(tmp_path, report.as_uri(), "--dump-dom")
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, "\n".join(console)
    dom = result.stdout
    assert 'data-ready="1"' in dom, "the page's own script did not run"
    assert "<title>Framework benchmark report</title>" in dom and "PWNED</title>" not in dom
    assert "data-pwned" not in dom.split("&lt;script&gt;")[0] and 'data-pwned="1"' not in dom
    assert "&lt;script&gt;document.title=" in dom  # shown as text
    assert len(re.findall(r"<svg", dom)) >= 4


def test_screenshot_is_not_blank(report, tmp_path):
    shot = tmp_path / "report.png"
    result = chromium(tmp_path, report.as_uri(), f"--screenshot={shot}")
    assert shot.exists(), result.stderr[-2000:]
    from matplotlib import image

    pixels = image.imread(shot)[..., :3]
    assert pixels.shape[0] >= 2000 and pixels.shape[1] >= 1200
    not_white = (pixels < 0.95).any(axis=2).mean()
    assert not_white > 0.03, f"only {not_white:.1%} of the page is not white"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # text, bars and lines in several colors


def test_the_scaling_section_renders_its_figure_and_tables(tmp_path):
    from tests.test_inference import _sweep_records

    run = tmp_path / "run"
    (run / "records").mkdir(parents=True)
    for record in _sweep_records():
        (run / "records" / f"{record.trial_id}.json").write_text(json.dumps(record.to_dict()))
    page = write_reports([run], run, ("html",))["html"]
    result = chromium(tmp_path, page.as_uri(), "--dump-dom")
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, "\n".join(console)
    dom = result.stdout
    assert 'data-ready="1"' in dom
    section = dom[dom.index("Scaling: mnist_mlp inference on mnist</h2>"):]
    assert "The fastest framework changes at batch 32" in section
    assert section.index("<svg") < section.index('<table class="sweep">')  # the figure, then the sweep's table
    assert len(re.findall(r"<path", section.split("</figure>")[0])) > 20  # lines, markers and axes drawn
