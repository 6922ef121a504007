"""Executors place a run's trials: `local` runs them here, one at a time, in the plan's order
(today's loop); `ray` (harness.ray_executor) runs them on the nodes of a Ray cluster. Both write
the same run directory: a record per trial, stamped with where it ran (`Placement`)."""
from __future__ import annotations

import importlib.util
import logging
import sys
import time
from abc import ABC, abstractmethod
from pathlib import Path

from harness import envs, prepare
from harness.launch import ProgressCallback, launch
from harness.node import identify
from harness.peak import machine_speed
from harness.plan import RunOptions
from harness.record import Placement, TrialRecord, TrialSpec
from harness.rundir import RunDir, RunEnvironment

log = logging.getLogger("harness.executor")


class Executor(ABC):
    """What a run asks of whatever places its trials. `problems` (from `prepare`) name, per
    isolated environment, why its trials cannot run; such trials become `skipped` records."""

    name = ""

    @abstractmethod
    def prepare(self, options: RunOptions, trials: list[TrialSpec], base: Path, create_envs: bool) -> dict[str, str]:
        """Ready the machines (datasets, isolated environments) before any run directory is made."""

    @abstractmethod
    def describe(self, options: RunOptions, trials: list[TrialSpec], base: Path) -> RunEnvironment:
        """Where the run measures, for its manifest."""

    @abstractmethod
    def execute(self, run_dir: RunDir, trials: list[TrialSpec], problems: dict[str, str], base: Path) -> list[TrialRecord]:
        """Run the trials; every one ends with a record in `run_dir`."""

    @abstractmethod
    def finish(self, run_dir: RunDir) -> None:
        """After the trials: measure the machines' peaks again (the better one stays)."""

    def close(self) -> None:
        """Let go of whatever `prepare` took hold of."""


class LocalExecutor(Executor):
    """Each trial in its own process on this machine, in order, the machine's speed probed before each."""

    name = "local"

    def __init__(self, options: RunOptions) -> None:
        self.record_hostnames = options.record_hostnames

    def prepare(self, options: RunOptions, trials: list[TrialSpec], base: Path, create_envs: bool) -> dict[str, str]:
        prepare.check_data(options, trials)
        return prepare.prepare_environments(trials, base, create_envs)

    def describe(self, options: RunOptions, trials: list[TrialSpec], base: Path) -> RunEnvironment:
        return prepare.describe(options, trials, base)

    def execute(self, run_dir: RunDir, trials: list[TrialSpec], problems: dict[str, str], base: Path) -> list[TrialRecord]:
        from tqdm import tqdm

        log.info("run %s: %d trials to do -> %s", run_dir.run_id, len(trials), run_dir.path)
        node = identify(record_hostname=self.record_hostnames)
        records: list[TrialRecord] = []
        with tqdm(total=len(trials), unit="trial", dynamic_ncols=True, disable=None, file=sys.stderr) as bar:
            for trial in trials:
                bar.set_description(f"{trial.label} {trial.point}")

                def show(state: dict) -> None:
                    acc = state.get("accuracy")
                    bar.set_postfix_str(f"epoch {state.get('epoch', 0):.2f}/{state.get('epochs', '?')}"
                                        + (f" acc {acc:.4f}" if isinstance(acc, float) else ""))

                record = run_one(run_dir, trial, prepare.unavailable(trial, problems, base),
                                 envs.interpreter(trial.framework, trial.variant, base), on_progress=show,
                                 placement=Placement("local", node, run_dir.attempt(trial.trial_id)))
                records.append(record)
                if bar.disable:
                    log.info("%s %s %s: %s", trial.label, trial.point, trial.dataset, record.status)
                bar.set_postfix_str(record.status)
                bar.update()
        return records

    def finish(self, run_dir: RunDir) -> None:
        prepare.remeasure_peak(run_dir)


def run_one(run_dir: RunDir, trial: TrialSpec, reason: str | None, python: str,
            on_progress: ProgressCallback | None = None, root: Path | None = None,
            placement: Placement = Placement()) -> TrialRecord:
    """One trial: a `skipped` record when it cannot start (`reason`), else its own process running
    the code at `root` with `python`, the machine's speed probed just before."""
    if reason:
        record = TrialRecord.not_run(trial, run_dir.run_id, "skipped", reason).place(placement)
        run_dir.write_record(record)
        return record
    probe_start = time.perf_counter()
    gflops = machine_speed(trial.threads)
    return launch(trial, run_dir.path, run_dir.run_id, python=python, on_progress=on_progress, machine_gflops=gflops,
                  root=root, placement=placement, probe_s=time.perf_counter() - probe_start)


def executor_for(options: RunOptions) -> Executor:
    if options.executor == "ray":
        if importlib.util.find_spec("ray") is None:
            raise prepare.RunError("--executor ray needs Ray, which is not installed here: "
                                   "pip install 'dlbench[ray]' (or -r requirements-ray.txt)")
        from harness.ray_executor import RayExecutor

        return RayExecutor(options)
    return LocalExecutor(options)
