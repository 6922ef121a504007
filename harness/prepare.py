"""What a run needs before its first trial, checked in the order that makes mistakes cost seconds:
the datasets, then the isolated environments; and the description of where it measured (the
manifest's environment, with the machine's matmul peak measured before and after the trials).
Every executor prepares its machines with these (the Ray executor on each node)."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from adapters import environment_of
from harness import environment, envs
from harness.paths import PROGRAM
from harness.peak import best_of, matmul_peak
from harness.plan import RunOptions
from harness.record import TrialSpec
from harness.rundir import IsolatedEnvironment, MatmulPeak, RunDir, RunEnvironment
from workloads import IMAGE_DATASETS, datasets

log = logging.getLogger("harness.prepare")


class RunError(Exception):
    """The run cannot go on: one line for the user, and the exit code (2: the request cannot be
    carried out as given; 1: a resource, such as a dataset, is missing)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def needed_datasets(trials: list[TrialSpec]) -> list[str]:
    return sorted({t.dataset for t in trials if t.dataset in IMAGE_DATASETS})


def check_data(options: RunOptions, trials: list[TrialSpec]) -> None:
    """Find (or download) every dataset the trials need before any of them starts."""
    for name in needed_datasets(trials):
        try:
            datasets.load(name, data_dir=options.data_dir, cache_dir=options.cache_dir)
        except datasets.DatasetError as exc:
            raise RunError(str(exc), code=1) from None


def prepare_environments(trials: list[TrialSpec], base: Path, create: bool) -> dict[str, str]:
    """Make sure the isolated environments the trials need exist. Returns, per environment that is
    not usable, the reason its trials are skipped (the rest of the run goes on)."""
    problems = {}
    for env in envs.needed([(t.framework, t.variant) for t in trials]):
        state = envs.status(env, base)
        if state.ready:
            continue
        command = f"{PROGRAM} env setup {env.name}" + (f" --env-dir {base}" if base != envs.base_dir(None) else "")
        if not create:
            problems[env.name] = f"environment {env.name} is not set up ({state.problem}); run: {command}"
            continue
        log.info("environment %s is %s; creating it in %s (`%s` does this alone)", env.name, state.problem,
                 state.path, command)
        try:
            envs.setup(env, base, echo=lambda line: log.info("  %s", line))
        except (envs.EnvSetupError, OSError) as exc:
            log.error("environment %s could not be set up; its trials are skipped:\n%s", env.name, exc)
            problems[env.name] = f"environment {env.name} could not be set up: {exc}"
    return problems


def isolated_environments(trials: list[TrialSpec], base: Path) -> dict[str, IsolatedEnvironment]:
    states = {}
    for env in envs.needed([(t.framework, t.variant) for t in trials]):
        state = envs.status(env, base)
        states[env.name] = IsolatedEnvironment(ready=state.ready, python=str(state.python), versions=state.versions,
                                               requirements=list(env.requirements))
    return states


def unavailable(trial: TrialSpec, env_problems: dict[str, str], base: Path) -> str | None:
    """Why this trial cannot start here (it becomes a `skipped` record), or None."""
    env = environment_of(trial.framework, trial.variant)
    if env is not None:
        return env_problems.get(env.name)
    return envs.unavailable(trial.framework, trial.variant, base)


def describe(options: RunOptions, trials: list[TrialSpec], base: Path) -> RunEnvironment:
    """This machine, its matmul peak on the run's threads and the trials' isolated environments."""
    log.info("measuring the machine's matrix-multiply rate")
    described = environment.describe(options.threads)
    return dataclasses.replace(described, matmul_peak=MatmulPeak(**matmul_peak(options.threads)),
                               isolated_environments=isolated_environments(trials, base))


def better_peak(start: MatmulPeak | None, again: dict, threads: int, cores: int | None) -> MatmulPeak:
    """`again` (a matmul_peak measured after the trials) or `start` if that was higher (a busy
    moment at the start would otherwise inflate every fraction of peak); both are kept."""
    earlier = [dataclasses.asdict(start)] if start and start.applies_to(threads, cores) else []
    return MatmulPeak(**best_of(*earlier, again))


def remeasure_peak(run_dir: RunDir) -> None:
    """Measure the matmul peak again after the trials and keep the better of the two in the manifest."""
    manifest = run_dir.read_manifest()
    env = manifest.environment
    threads = manifest.options.threads
    peak = better_peak(env.matmul_peak, matmul_peak(threads), threads, env.cpu_cores)
    run_dir.write_manifest(dataclasses.replace(manifest, environment=dataclasses.replace(env, matmul_peak=peak)))
