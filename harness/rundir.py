"""A run directory and its manifest: the one owner of where everything of a run lives.

    <run>/manifest.json                  what was asked and where it ran (Manifest)
    <run>/records/<trial>.json           one TrialRecord per trial, never replaced
    <run>/interrupted/<trial>.<n>.json   interrupted (or node-lost) attempts, set aside when --resume reruns them
    <run>/logs/<trial>.log               each trial's own output
    <run>/work/                          files of the trial in flight
    <run>/.lock                          held by the bench.py process working on the run
    <run>/summary.md, report.html, summary.csv, summary.json

Parent side only.
"""
from __future__ import annotations

import dataclasses
import fcntl
import os
import re
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterator

from harness import schema
from harness.files import BadFile, write_json
from harness.plan import RunOptions, options_problem, plan
from harness.record import NodeIdentity, TrialRecord
from workloads.profiles import Profile

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class MatmulPeak:
    """The machine's float32 matmul rate on `threads` BLAS threads (the run's thread count; None in
    manifests from before it was measured per thread count: then on every core)."""
    gflops: float
    method: str = ""
    measurements_gflops: list[float] = field(default_factory=list)
    threads: int | None = None

    def applies_to(self, threads: int, cores: int | None) -> bool:
        """Whether a trial on `threads` threads may be divided by this peak."""
        return threads == (self.threads if self.threads is not None else cores)


@dataclass(frozen=True)
class GitState:
    commit: str | None = None
    dirty: bool | None = None


@dataclass(frozen=True)
class IsolatedEnvironment:
    ready: bool = False
    python: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    requirements: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NodeEnvironment:
    """A node of a Ray run, as its preparation found it: who it is, its own matmul peak (the
    yardstick of the trials it ran), the project's commit there, and which isolated environments
    it could not provide (name -> why)."""
    identity: NodeIdentity
    matmul_peak: MatmulPeak | None = None
    commit: str | None = None
    problems: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunEnvironment:
    """Where a run measured (harness.environment.describe), and its yardstick."""
    python: str = "?"
    python_executable: str = ""
    os: str = "?"
    cpu_model: str = "?"
    cpu_cores: int | None = None
    memory_bytes: int | None = None
    gpus: list[str] = field(default_factory=list)
    numpy: str = "?"
    frameworks: dict[str, str | None] = field(default_factory=dict)  # main environment's versions
    git: GitState = field(default_factory=GitState)
    threads: int | None = None
    thread_env: dict[str, str] = field(default_factory=dict)
    matmul_peak: MatmulPeak | None = None
    isolated_environments: dict[str, IsolatedEnvironment] = field(default_factory=dict)
    nodes: dict[str, NodeEnvironment] = field(default_factory=dict)  # Ray runs: by node id


@dataclass(frozen=True)
class Manifest:
    run_id: str
    command: str
    created_at: str
    options: RunOptions
    trials: list[str]
    environment: RunEnvironment = field(default_factory=RunEnvironment)
    # The profile's rules as this run applied them (its budget: --budget, else the profile's); None
    # in manifests written before profiles were recorded.
    profile: Profile | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def plan_problem(self) -> str | None:
        """Why its options cannot be planned here, or plan other trials than it lists (a run made by
        another version of dlbench, an edited manifest), or None. Only resuming needs this."""
        wrong = options_problem(self.options)
        if wrong:
            return f"field options.{wrong}"
        planned = [t.trial_id for t in plan(self.options)]
        if self.trials == planned:
            return None
        extra = sorted(set(self.trials) - set(planned)) or sorted(set(planned) - set(self.trials)) or ["(their order)"]
        return (f"field trials lists {len(self.trials)} trials, but its options plan {len(planned)} here; they "
                f"differ in {extra[0]}")

    def problem(self) -> str | None:
        """What in a manifest that parsed makes no sense for reading it (its types are checked on
        reading; whether its options can run here is `plan_problem`'s question)."""
        if self.options.threads < 1 or self.options.repeats < 1:
            return f"field options.{'threads' if self.options.threads < 1 else 'repeats'} is below 1"
        peak = self.environment.matmul_peak
        if peak is not None and not (peak.gflops > 0 and peak.gflops != float("inf")):
            return f"field environment.matmul_peak.gflops is {peak.gflops!r}; expected a finite number above 0"
        return None


class RunDirBusy(RuntimeError):
    """Another bench.py process is working on this run directory."""


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).absolute()

    @classmethod
    def create(cls, out: Path) -> "RunDir":
        """A new, empty run directory under `out`, named by the time and a random suffix."""
        run_id = datetime.now().strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        run = cls(out / run_id)
        run.path.mkdir(parents=True)
        return run

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def records_dir(self) -> Path:
        return self.path / "records"

    @property
    def work_dir(self) -> Path:
        return self.path / "work"

    def log_path(self, trial_id: str) -> Path:
        return self.path / "logs" / f"{trial_id}.log"

    def record_path(self, trial_id: str) -> Path:
        return self.records_dir / f"{trial_id}.json"

    def record_files(self) -> list[Path]:
        return sorted(self.records_dir.glob("*.json"))

    def is_run(self) -> bool:
        return self.manifest_path.is_file() or self.records_dir.is_dir()

    def read_manifest(self) -> Manifest:
        if not self.manifest_path.exists():
            raise BadFile(self.path, f"is not a run directory (no {MANIFEST})")
        return schema.load(self.manifest_path, Manifest, "a run manifest", Manifest.problem)

    def write_manifest(self, manifest: Manifest, overwrite: bool = True) -> None:
        write_json(self.manifest_path, manifest.to_dict(), overwrite=overwrite)

    def write_record(self, record: TrialRecord) -> Path:
        """Store a trial's record; an existing one is never replaced (WouldOverwrite)."""
        return write_json(self.record_path(record.trial_id), record.to_dict(), overwrite=False)

    def to_do(self, trial_ids: list[str]) -> list[str]:
        """The trials still to run: those without a record, and those whose record says they were
        interrupted or lost with their node (set aside into interrupted/, never deleted). Raises BadFile for a record that
        cannot be read: resuming must not guess whether that trial ran."""
        todo = []
        for trial_id in trial_ids:
            path = self.record_path(trial_id)
            if not path.exists():
                todo.append(trial_id)
            elif schema.load_record(path).to_measure_again:
                self._set_aside(path)
                todo.append(trial_id)
        return todo

    def attempt(self, trial_id: str) -> int:
        """The attempt a new record of this trial is: 1 + the attempts set aside before it."""
        pattern = re.compile(re.escape(trial_id) + r"\.\d+\.json")
        folder = self.path / "interrupted"
        return 1 + (sum(1 for p in folder.iterdir() if pattern.fullmatch(p.name)) if folder.is_dir() else 0)

    def _set_aside(self, record: Path) -> Path:
        folder = self.path / "interrupted"
        folder.mkdir(exist_ok=True)
        n = 0
        while (target := folder / f"{record.stem}.{n}.json").exists():
            n += 1
        os.rename(record, target)
        return target

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run directory for this process; RunDirBusy if another one holds it."""
        path = self.path / ".lock"
        with open(path, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "?"
                raise RunDirBusy(f"{self.path} is in use by another bench.py (pid {holder}); wait for it to "
                                 "finish, or stop it first") from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
