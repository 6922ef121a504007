#!/usr/bin/env python3
"""bench.py: benchmark deep-learning frameworks on the same workloads, fairly.

CLI only: parse, plan trials, launch each in its own process, store, report.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from adapters import (ENVIRONMENTS, FRAMEWORKS, all_labels, environment_of, installed_version, label,
                      missing_modules, parse_selection)
from harness import environment, envs
from harness.launch import launch
from harness.peak import best_of, machine_speed, matmul_peak
from harness.plan import RunOptions, plan
from harness.record import TrialRecord, write_json
from harness.threads import default_threads
from workloads import IMAGE_DATASETS, WORKLOADS, datasets, get_workload
from workloads.spec import PROFILES

log = logging.getLogger("bench")
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "runs"
FORMATS_ALL = ("md", "html", "csv", "json")  # reports.summary.FORMATS, without importing pandas here
DEFAULT_BASELINES = Path(__file__).resolve().parent / "results" / "baselines"
METRIC_NAMES = ("throughput", "test_accuracy", "time_to_target_s", "first_block_s", "peak_rss_bytes")  # reports.baseline


def fail(message: str, code: int = 2) -> SystemExit:
    """One line on stderr and an exit code: 2 for a usage mistake, 1 for a missing resource."""
    print(f"bench.py: error: {message}", file=sys.stderr)
    return SystemExit(code)


class Parser(argparse.ArgumentParser):
    """User mistakes end in one line on stderr and exit code 2, never a traceback."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _number(convert: type, what: str, problem: Callable[[float], str | None]) -> Callable[[str], float]:
    """An argparse type: `convert` the text, then `problem(value)` names what is wrong, if anything."""
    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        message = problem(value)
        if message:
            raise argparse.ArgumentTypeError(message)
        return value
    return parse


_positive_int = _number(int, "a whole number",
                        lambda v: None if v >= 1 else f"{v} is not allowed; use a whole number of 1 or more")
_seed = _number(int, "a whole number",
                lambda v: None if 0 <= v < 2**32 else f"{v} is out of range; use 0 to {2**32 - 1}")
_positive_float = _number(float, "a number",
                          lambda v: None if v > 0 else f"{v:g} is not allowed; use a number of seconds above 0")


def _framework(text: str) -> str:
    try:
        parse_selection(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _workload(text: str) -> str:
    try:
        get_workload(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


_percent = _number(float, "a number", lambda v: None if v >= 0 else f"{v:g} is not allowed; use a percentage of 0 or more")


def _metric(text: str) -> tuple[str, float | None]:
    name, _, pct = text.partition("=")
    if name not in METRIC_NAMES:
        raise argparse.ArgumentTypeError(f"unknown metric {name!r}; choose from: {', '.join(METRIC_NAMES)}")
    return name, _percent(pct) if pct else None


def _environment(text: str) -> str:
    if text not in ENVIRONMENTS:
        raise argparse.ArgumentTypeError(f"unknown environment {text!r}; choose from: {', '.join(ENVIRONMENTS)}")
    return text


def build_parser() -> Parser:
    parser = Parser(prog="bench.py", description=__doc__.strip().splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", required=True,
                                metavar="{list,run,report,env,baseline,compare,history,export}")
    env_dir = argparse.ArgumentParser(add_help=False)
    env_dir.add_argument("--env-dir", default=None, metavar="DIR",
                         help=f"where isolated framework environments live "
                              f"(default: ${envs.ENV_DIR_VAR}, else ~/.cache/dlbench/envs)")

    sub.add_parser("list", help="frameworks and variants (installed or not), workloads, profiles")

    run = sub.add_parser("run", parents=[env_dir],
                         help="run trials and write a run directory with records and summary.md")
    run.add_argument("-f", "--framework", action="append", type=_framework, default=[], metavar="NAME[:VARIANT]",
                     help=f"repeatable; default: all ({', '.join(all_labels())})")
    run.add_argument("-w", "--workload", action="append", type=_workload, default=[], metavar="WORKLOAD",
                     help=f"repeatable; default: all ({', '.join(WORKLOADS)})")
    run.add_argument("--dataset", choices=IMAGE_DATASETS, default="mnist", help="for the image workloads")
    run.add_argument("--profile", choices=PROFILES, default="quick")
    run.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    run.add_argument("--repeats", type=_positive_int, default=1, help="fresh processes per trial, interleaved")
    run.add_argument("--threads", type=_positive_int, default=default_threads(),
                     help="intra-op threads for every framework (default: all cores)")
    run.add_argument("--seed", type=_seed, default=0)
    run.add_argument("--timeout", type=_positive_float, default=None, metavar="SECONDS",
                     help="per trial (default by profile: smoke 300, quick 900, full 14400)")
    run.add_argument("--data-dir", default=None, help=f"folder with the IDX files (default: ${datasets.ENV_DATA_DIR})")
    run.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where run directories are made")
    run.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                     help="finish an interrupted run: its own options, only the trials without a record")
    run.add_argument("--no-env-setup", action="store_true",
                     help="do not create missing framework environments; their trials are skipped")

    report = sub.add_parser("report", help="tables and report files (md, html, csv, json) of one or more runs")
    report.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR",
                        help="several runs are pooled as repeats, or compared with --side-by-side")
    report.add_argument("--format", type=_formats, default=FORMATS_ALL, metavar="md,html,csv,json",
                        help="which files to write (default: all)")
    report.add_argument("--out", type=Path, default=None,
                        help="folder for the files (default: the run directory; for several runs "
                             "results/reports/<time>)")
    report.add_argument("--side-by-side", action="store_true",
                        help="label each run's rows by what differs between the runs (machine, commit, "
                             "versions, threads) instead of pooling them")

    baseline = sub.add_parser("baseline", help="save a run's raw samples as a committed baseline")
    baseline_sub = baseline.add_subparsers(dest="baseline_command", required=True, metavar="{save}")
    save = baseline_sub.add_parser("save", help="write results/baselines/NAME.json from one or more runs")
    save.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    save.add_argument("--name", default=None, help="file name (default: the first run's id)")
    save.add_argument("--dir", type=Path, default=DEFAULT_BASELINES, help=f"default: {DEFAULT_BASELINES}")

    compare = sub.add_parser("compare", help="baseline vs current: ratios, CIs, significance; exit 1 on a regression")
    compare.add_argument("baseline", type=Path, help="a baseline file or a run directory")
    compare.add_argument("current", type=Path, help="a run directory or a baseline file")
    compare.add_argument("--threshold", type=_percent, default=None, metavar="PCT",
                         help="practical threshold for every metric, in percent (default 5)")
    compare.add_argument("--metric", action="append", type=_metric, default=[], metavar="NAME[=PCT]",
                         help="repeatable; metrics to compare, each with its own threshold if given "
                              "(default: throughput, test_accuracy, peak_rss_bytes; known: "
                              "throughput, test_accuracy, time_to_target_s, first_block_s, peak_rss_bytes)")
    compare.add_argument("--format", choices=("md", "text", "json"), default="text")
    compare.add_argument("--out", type=Path, default=None, help="also write the output to this file")

    history = sub.add_parser("history", help="each metric over the runs under a results folder, with change points")
    history.add_argument("results_dir", type=Path, nargs="?", default=DEFAULT_OUT.parent)
    history.add_argument("--metric", choices=METRIC_NAMES, default="throughput")
    history.add_argument("--format", choices=("md", "text"), default="text")
    history.add_argument("--plot", type=Path, default=None, metavar="FILE", help="also draw it (.svg or .png)")

    export = sub.add_parser("export", help="a run (or baseline) as github-action-benchmark JSON")
    export.add_argument("source", type=Path, help="a run directory or a baseline file")
    export.add_argument("--github-action-benchmark", type=Path, required=True, metavar="DIR", dest="gab_dir",
                        help="writes DIR/bigger_is_better.json and DIR/smaller_is_better.json")

    env = sub.add_parser("env", help="the isolated environments of MXNet and Theano: list, set up")
    env_sub = env.add_subparsers(dest="env_command", required=True, metavar="{list,setup}")
    env_sub.add_parser("list", parents=[env_dir], help="each environment, its interpreter, versions, readiness")
    setup = env_sub.add_parser("setup", parents=[env_dir], help="create or repair environments")
    setup.add_argument("names", nargs="*", metavar="NAME", type=_environment,
                       help=f"default: all ({', '.join(ENVIRONMENTS)})")
    return parser


def cmd_list() -> int:
    print("Frameworks (select with -f NAME or -f NAME:VARIANT):")
    base = envs.base_dir(None)
    for info in FRAMEWORKS.values():
        for variant in info.variants:
            print(f"  {label(info.name, variant):<20} {_availability(info.name, variant, base):<36} {info.description}")
    print("\nWorkloads (select with -w):")
    for spec in WORKLOADS.values():
        epochs = ", ".join(f"{p} {spec.epochs[p]}" for p in PROFILES)
        targets = ", ".join(f"{d} {t:g}" for d, t in spec.target_accuracy.items())
        print(f"  {spec.name:<10} {spec.description}\n  {'':<10} epochs: {epochs}; target accuracy: {targets}")
    print("\nProfiles: smoke (a few hundred samples, for tests), quick (default: reaches the targets), "
          "full (published-style epochs)")
    print(f"Datasets for the image workloads (--dataset): {', '.join(IMAGE_DATASETS)}")
    return 0


def _availability(framework: str, variant: str, base: Path) -> str:
    env = environment_of(framework, variant)
    if env is not None:
        state = envs.status(env, base)
        version = state.versions.get(FRAMEWORKS[framework].distributions[0])
        return f"env {env.name}: ready, {version}" if state.ready else f"env {env.name}: {state.problem}"
    missing = missing_modules(framework, variant)
    return f"installed {installed_version(framework)}" if not missing else f"not installed (missing: {', '.join(missing)})"


def _prepare_run_dir(out: Path) -> tuple[str, Path]:
    run_id = datetime.now().strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
    run_dir = out / run_id
    try:
        run_dir.mkdir(parents=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise fail(f"cannot write to output directory {out}: {exc.strerror or exc}") from None
    return run_id, run_dir


def _options(args: argparse.Namespace) -> RunOptions:
    return RunOptions(frameworks=tuple(args.framework), workloads=tuple(args.workload), dataset=args.dataset,
                      profile=args.profile, device=args.device, threads=args.threads, seed=args.seed,
                      repeats=args.repeats, data_dir=args.data_dir or os.environ.get(datasets.ENV_DATA_DIR),
                      cache_dir=None, timeout_s=args.timeout)


def _resume(run_dir: Path) -> tuple[str, RunOptions]:
    from reports.load import load_manifest

    manifest = load_manifest(run_dir)
    if not manifest:
        raise fail(f"{run_dir} is not a run directory (no manifest.json)")
    saved = manifest["options"]
    saved["frameworks"], saved["workloads"] = tuple(saved["frameworks"]), tuple(saved["workloads"])
    return manifest["run_id"], RunOptions(**saved)


def _check_data(options: RunOptions, trials: list) -> None:
    """Find (or download) every dataset the run needs before any trial starts."""
    for name in sorted({t.dataset for t in trials if t.dataset in IMAGE_DATASETS}):
        try:
            datasets.load(name, data_dir=options.data_dir, cache_dir=options.cache_dir)
        except datasets.DatasetError as exc:
            raise fail(str(exc), code=1) from None


def _prepare_environments(trials: list, base: Path, create: bool) -> dict[str, str]:
    """Make sure the isolated environments the trials need exist. Returns, per environment that is
    not usable, the reason its trials are skipped (the rest of the run goes on)."""
    problems = {}
    for env in envs.needed([(t.framework, t.variant) for t in trials]):
        state = envs.status(env, base)
        if state.ready:
            continue
        command = f"bench.py env setup {env.name}" + (f" --env-dir {base}" if base != envs.base_dir(None) else "")
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


def _environment_states(trials: list, base: Path) -> dict[str, dict]:
    states = {}
    for env in envs.needed([(t.framework, t.variant) for t in trials]):
        state = envs.status(env, base)
        states[env.name] = {"ready": state.ready, "python": str(state.python), "versions": state.versions,
                            "requirements": list(env.requirements)}
    return states


def _unavailable(trial, env_problems: dict[str, str]) -> str | None:
    """Why this trial cannot start (it becomes a `skipped` record), or None."""
    env = environment_of(trial.framework, trial.variant)
    if env is not None:
        return env_problems.get(env.name)
    missing = missing_modules(trial.framework, trial.variant)
    return f"{', '.join(missing)} not installed for {sys.executable}" if missing else None


def cmd_run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if args.resume:
        run_dir = args.resume
        run_id, options = _resume(run_dir)
    else:
        options = _options(args)
    trials = plan(options)
    _check_data(options, trials)
    base = envs.base_dir(args.env_dir)
    env_problems = _prepare_environments(trials, base, create=not args.no_env_setup)
    if not args.resume:
        run_id, run_dir = _prepare_run_dir(args.out)
        log.info("measuring the machine's matrix-multiply rate")
        write_json(run_dir / "manifest.json", {
            "run_id": run_id, "command": shlex.join(["bench.py"] + sys.argv[1:]),
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "options": options.__dict__, "trials": [t.trial_id for t in trials],
            "environment": {**environment.describe(options.threads), "matmul_peak": matmul_peak(),
                            "isolated_environments": _environment_states(trials, base)},
        }, overwrite=False)
    todo = [t for t in trials if not (run_dir / "records" / f"{t.trial_id}.json").exists()]
    log.info("run %s: %d trials (%d to do) -> %s", run_id, len(trials), len(todo), run_dir)

    records: list[TrialRecord] = []
    # The bar draws only on a terminal; elsewhere (CI logs) each trial's end is logged instead.
    with tqdm(total=len(todo), unit="trial", dynamic_ncols=True, disable=None) as bar:
        for trial in todo:
            bar.set_description(f"{trial.label} {trial.workload}")

            def show(state: dict) -> None:
                acc = state.get("accuracy")
                bar.set_postfix_str(f"epoch {state['epoch']:.2f}/{state['epochs']}"
                                    + (f" acc {acc:.4f}" if acc is not None else ""))

            reason = _unavailable(trial, env_problems)
            if reason:
                record = TrialRecord.not_run(trial, run_id, "skipped", reason)
                write_json(run_dir / "records" / f"{trial.trial_id}.json", record.to_dict(), overwrite=False)
            else:
                record = launch(trial, run_dir, run_id, python=envs.interpreter(trial.framework, trial.variant, base),
                                on_progress=show, machine_gflops=machine_speed(trial.threads))
            records.append(record)
            if bar.disable:
                log.info("%s %s %s: %s", trial.label, trial.workload, trial.dataset, record.status)
            bar.set_postfix_str(record.status)
            bar.update()

    _remeasure_peak(run_dir)
    print(f"\nRecords: {run_dir / 'records'}")
    _report([run_dir], run_dir, FORMATS_ALL, side_by_side=False)
    return 1 if any(r.status in ("error", "timeout") for r in records) else 0


def _remeasure_peak(run_dir: Path) -> None:
    """Measure the matmul peak again after the trials and keep the better of the two in the
    manifest (a busy moment at the start would otherwise inflate every fraction of peak)."""
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    start = manifest["environment"].get("matmul_peak") or {}
    manifest["environment"]["matmul_peak"] = best_of(*([start] if "gflops" in start else []), matmul_peak())
    write_json(path, manifest)


def _report(run_dirs: list[Path], out_dir: Path, formats: tuple[str, ...], side_by_side: bool) -> None:
    """Print the tables and write the report files."""
    from reports.load import load_runs
    from reports.summary import write_reports
    from reports.tables import problems, workload_tables

    loaded = load_runs(run_dirs, side_by_side)
    frame = loaded[0]
    print("\n" + workload_tables(frame, markdown=False))
    trouble = problems(frame, markdown=False)
    if trouble:
        print("\nSkipped or failed:\n" + trouble)
    try:
        written = write_reports(run_dirs, out_dir, formats, side_by_side, loaded=loaded)
    except OSError as exc:
        raise fail(f"cannot write the report to {out_dir}: {exc.strerror or exc}", code=1) from None
    print("\nReport: " + ", ".join(str(p) for p in written.values()))


def _formats(text: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(f.strip() for f in text.split(",") if f.strip()))
    unknown = [f for f in chosen if f not in FORMATS_ALL]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"unknown format {', '.join(map(repr, unknown)) or repr(text)}; "
                                         f"choose one or more of: {', '.join(FORMATS_ALL)} (comma-separated)")
    return chosen


def cmd_report(args: argparse.Namespace) -> int:
    for run_dir in args.run_dirs:
        if not (run_dir / "records").is_dir():
            raise fail(f"{run_dir} is not a run directory (no records/ folder)")
    out = args.out
    if out is None:
        out = args.run_dirs[0] if len(args.run_dirs) == 1 else \
            DEFAULT_OUT.parent / "reports" / datetime.now().strftime("%Y%m%d-%H%M%S")
    _report(args.run_dirs, out, args.format, args.side_by_side)
    return 0


def _side(path: Path) -> dict:
    from reports.baseline import load_side

    try:
        return load_side(path)
    except ValueError as exc:
        raise fail(str(exc)) from None


def cmd_baseline(args: argparse.Namespace) -> int:
    from reports.baseline import save_baseline

    for run_dir in args.run_dirs:
        if not (run_dir / "records").is_dir():
            raise fail(f"{run_dir} is not a run directory (no records/ folder)")
    name = args.name or args.run_dirs[0].resolve().name
    try:
        path = save_baseline(args.run_dirs, name, args.dir)
    except OSError as exc:
        raise fail(f"cannot write the baseline into {args.dir}: {exc.strerror or exc}", code=1) from None
    print(f"Baseline: {path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from reports.compare import DEFAULT_METRICS, compare, render

    metrics = tuple(dict.fromkeys(name for name, _ in args.metric)) or DEFAULT_METRICS
    thresholds = {m: args.threshold for m in metrics if args.threshold is not None}
    thresholds.update({name: pct for name, pct in args.metric if pct is not None})
    result = compare(_side(args.baseline), _side(args.current), metrics, thresholds)
    text = render(result, args.format)
    print(text, end="")
    if args.out:
        args.out.write_text(text)
    return 1 if result.regressions else 0


def cmd_history(args: argparse.Namespace) -> int:
    from reports import history

    if not args.results_dir.is_dir():
        raise fail(f"{args.results_dir} is not a folder")
    frame = history.series(history.collect(args.results_dir), args.metric)
    if frame.empty:
        raise fail(f"no runs or baselines with {args.metric} under {args.results_dir}", code=1)
    print(f"{args.metric} by run ('*': a change point starts there)\n")
    print(history.table(frame, args.metric, markdown=args.format == "md"))
    if args.plot:
        print(f"\nPlot: {history.plot(frame, args.metric, args.plot)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from reports import gab

    for path in gab.export(_side(args.source), args.gab_dir):
        print(path)
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    base = envs.base_dir(args.env_dir)
    if args.env_command == "list":
        print(f"Environments in {base} (set with --env-dir or ${envs.ENV_DIR_VAR}):")
        print(f"  {'main':<8} ready       {sys.executable}\n  {'':<8} runs: "
              + ", ".join(label(f.name, v) for f in FRAMEWORKS.values() for v in f.variants
                          if environment_of(f.name, v) is None))
        for env in ENVIRONMENTS.values():
            state = envs.status(env, base)
            print(f"  {env.name:<8} {'ready' if state.ready else 'NOT READY':<11} {state.python}")
            if state.ready:
                print(f"  {'':<8} versions: {', '.join(f'{k} {v}' for k, v in state.versions.items())}")
            else:
                print(f"  {'':<8} {state.problem}; set up with: bench.py env setup {env.name}")
            print(f"  {'':<8} pins: {', '.join(env.requirements)}")
        return 0
    failed = []
    for name in args.names or list(ENVIRONMENTS):
        try:
            state = envs.setup(ENVIRONMENTS[name], base)
            print(f"{name}: ready at {state.path}")
        except (envs.EnvSetupError, OSError) as exc:
            print(f"bench.py: error: environment {name} could not be set up: {exc}", file=sys.stderr)
            failed.append(name)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command == "list":
        return cmd_list()
    if args.command == "run":
        return cmd_run(args)
    commands = {"env": cmd_env, "baseline": cmd_baseline, "compare": cmd_compare, "history": cmd_history,
                "export": cmd_export}
    if args.command in commands:
        return commands[args.command](args)
    return cmd_report(args)


if __name__ == "__main__":
    sys.exit(main())
