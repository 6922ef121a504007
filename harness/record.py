"""What a trial is (TrialSpec) and what it produced (TrialRecord), as versioned JSON.

Records keep raw figures only; statistics are computed by `reports`. Files are written atomically
(temporary file + rename), and `write_json(..., overwrite=False)` refuses to replace a result.
Standard library only: this runs in every child environment.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
STATUSES = ("ok", "skipped", "error", "timeout")


@dataclass(frozen=True)
class TrialSpec:
    """One trial: a framework variant training one workload once, in its own process."""

    trial_id: str
    framework: str
    variant: str
    label: str  # "pytorch", "keras:torch"
    adapter: str  # "module:Class", imported in the child
    workload: str
    dataset: str
    profile: str
    device: str  # "cpu", "cuda" or "auto"
    threads: int
    seed: int
    repeat: int
    data_dir: str | None = None
    cache_dir: str | None = None
    timeout_s: float = 900.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrialSpec":
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


@dataclass
class Block:
    """A run of consecutive training steps timed as one: device barrier, clock, steps, barrier, clock."""

    epoch: int
    first_step: int  # global index of the block's first step
    steps: int
    seconds: float


@dataclass
class Evaluation:
    """Test accuracy after `step` steps; `train_seconds` is the timed training time up to then
    (first block included, evaluation excluded)."""

    step: int
    epoch: float
    train_seconds: float
    test_accuracy: float


@dataclass
class TrialRecord:
    """Everything one trial measured. Sizes are bytes, times seconds, throughput is derived by
    reports from `blocks` (samples = steps x batch_size)."""

    schema_version: int
    trial_id: str
    run_id: str
    framework: str
    variant: str
    label: str
    workload: str
    dataset: str
    profile: str
    device: str  # the device actually used ("auto" resolved) or the one asked for, if not run
    threads: int
    seed: int
    repeat: int
    status: str  # one of STATUSES
    reason: str = ""  # why a trial was skipped or failed; empty when ok
    versions: dict[str, str] = field(default_factory=dict)  # framework packages, numpy, python
    settings: dict[str, Any] = field(default_factory=dict)  # as applied: threads, mode, jit, backend
    param_count: int | None = None  # as the framework counts its trainable parameters
    spec_param_count: int | None = None  # the spec's analytic count
    batch_size: int | None = None
    train_samples: int | None = None
    test_samples: int | None = None
    steps_per_epoch: int | None = None
    epochs: int | None = None
    first_block: Block | None = None  # the first step alone: tracing, compilation, allocation
    blocks: list[Block] = field(default_factory=list)  # steady-state blocks, in order
    step_losses: list[float] = field(default_factory=list)  # training loss of every step
    latencies_s: list[float] = field(default_factory=list)  # steps timed one by one, after training
    train_flops_per_sample: int | None = None  # analytic, from the spec (see WorkloadSpec.train_flops)
    evaluations: list[Evaluation] = field(default_factory=list)
    target_accuracy: float | None = None
    final_test_accuracy: float | None = None
    steps_to_target: int | None = None  # first evaluated step with accuracy >= target
    time_to_target_s: float | None = None  # timed training seconds until then
    rss_after_import_bytes: int | None = None
    rss_after_build_bytes: int | None = None
    peak_rss_bytes: int | None = None  # the child process's own high-water mark
    device_peak_bytes: int | None = None  # framework's device allocator peak (GPU only)
    machine_gflops: float | None = None  # the parent's reference matmul just before the trial (harness.peak.machine_speed)
    data_feeding: str = ("device-resident batches, staged per epoch in the harness's order, "
                         "staging untimed; trailing partial batch dropped")
    started_at: str = ""
    finished_at: str = ""
    wall_seconds: float | None = None  # whole child, including imports and evaluation

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrialRecord":
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"record schema_version {version!r} is not supported (expected {SCHEMA_VERSION})")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("first_block"):
            values["first_block"] = Block(**values["first_block"])
        values["blocks"] = [Block(**b) for b in values.get("blocks", [])]
        values["evaluations"] = [Evaluation(**e) for e in values.get("evaluations", [])]
        return cls(**values)

    @classmethod
    def not_run(cls, trial: TrialSpec, run_id: str, status: str, reason: str) -> "TrialRecord":
        """A record for a trial that produced none itself: skipped, crashed or timed out."""
        return cls(schema_version=SCHEMA_VERSION, trial_id=trial.trial_id, run_id=run_id,
                   framework=trial.framework, variant=trial.variant, label=trial.label,
                   workload=trial.workload, dataset=trial.dataset, profile=trial.profile,
                   device=trial.device, threads=trial.threads, seed=trial.seed, repeat=trial.repeat,
                   status=status, reason=reason)


def write_json(path: str | Path, data: Any, overwrite: bool = True) -> None:
    """Write JSON atomically. With overwrite=False an existing file is an error, never replaced."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, allow_nan=True)
            fh.write("\n")
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails with FileExistsError if a result is already there
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_record(path: str | Path) -> TrialRecord:
    with open(path) as fh:
        return TrialRecord.from_dict(json.load(fh))
