"""The names the CLI and the reports share: report formats and their files, the metrics a baseline
keeps and a comparison tests. Standard library only, so that `bench.py` can check its arguments
without importing pandas."""
from __future__ import annotations

from dataclasses import dataclass

FORMATS = ("md", "html", "csv", "json")
FILENAMES = {"md": "summary.md", "html": "report.html", "csv": "summary.csv", "json": "summary.json"}
SCALING_CSV = "scaling.csv"  # beside summary.csv when the runs hold a sweep
PLOT_FORMATS = ("svg", "png", "pdf")  # history --plot


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    higher_is_better: bool
    description: str


# The metrics a comparison knows. Throughput has a sample per timed block (many per process, kept
# per process in the order they ran: a list of lists); the others one per process, so their spread
# comes from --repeats.
METRICS = {m.name: m for m in (
    Metric("throughput", "samples/s", True, "median of the timed blocks' samples/s"),
    Metric("test_accuracy", "", True, "final test accuracy"),
    Metric("time_to_target_s", "s", False, "timed training seconds until the target accuracy"),
    Metric("first_block_s", "s", False, "the first step (tracing, compilation, allocation)"),
    Metric("peak_rss_bytes", "bytes", False, "peak RSS of the trial process"),
)}
