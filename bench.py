#!/usr/bin/env python3
"""bench.py: benchmark deep-learning frameworks on the same workloads, fairly.

CLI only: parse, plan trials, launch each in its own process, store, report.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import shlex
import sys
from datetime import datetime
from pathlib import Path
from typing import Callable

from adapters import ENVIRONMENTS, FRAMEWORKS, all_labels, environment_of, installed_version, label, parse_selection
from adapters.numerics import AUTOTUNE_SETTINGS, DEFAULT_PRECISION, PRECISIONS, TF32_SETTINGS
from harness import config, envs
from harness.allocator import MALLOC_POLICIES
from harness.files import BadFile, WouldOverwrite, describe_os_error, write_text
from harness.launch import Interrupted
from harness.paths import CACHE_DIR_VAR, PROGRAM, RESULTS_DIR
from harness.plan import INFER_BATCH_SIZES, RunOptions, size_problem, threads_problem, width_problem
from harness.rundir import RunDir
from harness.prepare import RunError
from harness.record import EXECUTORS, SCENARIOS
from harness.run import carry_out, interruptible, resume_command
from harness.threads import default_threads
from reports.names import FORMATS, METRICS, PLOT_FORMATS
from workloads import IMAGE_DATASETS, WORKLOADS, datasets, get_workload
from workloads.profiles import DEFAULT_PROFILE, PROFILES

log = logging.getLogger("bench")
DEFAULT_OUT = RESULTS_DIR / "runs"  # relative: under the folder the command is typed in
DEFAULT_AB_OUT = RESULTS_DIR / "ab"
DEFAULT_BASELINES = RESULTS_DIR / "baselines"


def fail(message: str, code: int = 2) -> SystemExit:
    """One line on stderr and an exit code: 2 for a usage mistake, 1 for a missing resource."""
    print(f"{PROGRAM}: error: {message}", file=sys.stderr)
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
_timeout = _number(float, "a number", lambda v: None if math.isfinite(v) and v > 0
                   else f"{v:g} is not allowed; use a finite number of seconds above 0")
_threads = _number(int, "a whole number", lambda v: None if v >= 1 and not threads_problem(v)
                   else f"{v} is not allowed; use a whole number of 1 or more" if v < 1 else threads_problem(v))


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
    if name not in METRICS:
        raise argparse.ArgumentTypeError(f"unknown metric {name!r}; choose from: {', '.join(METRICS)}")
    return name, _percent(pct) if pct else None


def _names_from(what: str, allowed, example: str) -> Callable[[str], tuple[str, ...]]:
    """A parser of 'a,b' into names, each one of `allowed` ('unknown <what> ...; choose from: ...')."""
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(part.strip() for part in text.split(",")))
        bad = [n for n in names if n not in allowed]
        if bad or not names:
            raise argparse.ArgumentTypeError(f"unknown {what} {(bad or [''])[0]!r}; choose from: "
                                             f"{', '.join(allowed)} (several as {example})")
        return names
    return parse


_scenarios = _names_from("scenario", SCENARIOS, "train,infer")
_precisions = _names_from("precision", PRECISIONS, "fp32,mixed-bf16")


def _sizes(text: str) -> tuple[int, ...]:
    """'32,128,512' -> (32, 128, 512)."""
    values = []
    for part in text.split(","):
        try:
            value = int(part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part.strip()!r} is not a whole number; give sizes as 32,128,512") from None
        if size_problem(value):
            raise argparse.ArgumentTypeError(size_problem(value))
        values.append(value)
    return tuple(dict.fromkeys(values))


def _baseline_name(text: str) -> str:
    from reports.baseline import name_problem

    problem = name_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def _plot_file(text: str) -> Path:

    path = Path(text)
    if path.suffix[1:].lower() not in PLOT_FORMATS:
        raise argparse.ArgumentTypeError(f"cannot draw into {text!r}: its name must end in "
                                         f"{', '.join('.' + f for f in PLOT_FORMATS)}")
    return path


def _environment(text: str) -> str:
    if text not in ENVIRONMENTS:
        raise argparse.ArgumentTypeError(f"unknown environment {text!r}; choose from: {', '.join(ENVIRONMENTS)}")
    return text


def build_parser() -> Parser:
    parser = Parser(prog=PROGRAM, description=__doc__.strip().splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", required=True,
                                metavar="{list,run,ab,report,env,baseline,compare,history,export}")
    config_file = argparse.ArgumentParser(add_help=False)
    config_file.add_argument("--config", type=Path, default=None, metavar="FILE",
                             help="options from a TOML file ([run], [ab], [compare] tables) or a run's manifest.json; "
                                  "flags typed here win (default: [tool.dlbench] of ./pyproject.toml, if any)")
    ci_output = argparse.ArgumentParser(add_help=False)
    ci_output.add_argument("--junit", type=Path, default=None, metavar="FILE",
                           help="also write JUnit XML: a test case per trial (run, ab) and per gate check (compare, ab); "
                                "$GITHUB_STEP_SUMMARY, where set, gets the markdown either way")
    env_dir = argparse.ArgumentParser(add_help=False)
    env_dir.add_argument("--env-dir", default=None, metavar="DIR",
                         help=f"where isolated framework environments live "
                              f"(default: envs/ in the cache root: ${CACHE_DIR_VAR}, else $XDG_CACHE_HOME/dlbench, "
                              f"else ~/.cache/dlbench)")

    sub.add_parser("list", help="frameworks and variants (installed or not), workloads, profiles")

    trial_options = argparse.ArgumentParser(add_help=False)
    trial_options.add_argument("-f", "--framework", action="append", type=_framework, default=[], metavar="NAME[:VARIANT]",
                     help=f"repeatable; default: all ({', '.join(all_labels())})")
    trial_options.add_argument("-w", "--workload", action="append", type=_workload, default=[], metavar="WORKLOAD",
                     help=f"repeatable; default: all ({', '.join(WORKLOADS)})")
    trial_options.add_argument("--dataset", choices=IMAGE_DATASETS, default="mnist", help="for the image workloads")
    trial_options.add_argument("--scenario", type=_scenarios, default=("train",), metavar="train|infer|train,infer",
                               help="train (the default) and/or time the model's inference path")
    trial_options.add_argument("--batch-size", type=_sizes, default=(), metavar="N[,N...]",
                               help="a sweep of batch sizes (default: the workload's own for training, "
                                    f"{','.join(map(str, INFER_BATCH_SIZES))} for inference)")
    trial_options.add_argument("--width", type=_sizes, default=(), metavar="N[,N...]",
                               help="a sweep of the model's width: hidden units (mnist_mlp), the second "
                                    "convolution's filters (mnist_cnn)")
    trial_options.add_argument("--precision", type=_precisions, default=(DEFAULT_PRECISION,),
                               metavar="|".join(PRECISIONS),
                               help="the numeric format(s) to train and infer in, each framework's own mechanism "
                                    "(default fp32; several as fp32,mixed-bf16)")
    trial_options.add_argument("--tf32", choices=TF32_SETTINGS, default="off",
                               help="let float32 matmuls and convolutions use TF32 on GPUs (default off: fp32 is fp32)")
    trial_options.add_argument("--autotune", choices=AUTOTUNE_SETTINGS, default="on",
                               help="convolution autotuning on GPUs, the same policy for every framework (default on)")
    trial_options.add_argument("--malloc", choices=MALLOC_POLICIES, default="default",
                               help="the C allocator for every trial: glibc as users get it (default), or steady: "
                                    "freed memory kept in the process (one arena, no trimming; see the README)")
    trial_options.add_argument("--profile", choices=tuple(PROFILES), default=DEFAULT_PROFILE,
                               help="; ".join(f"{p.name}: {p.purpose}" for p in PROFILES.values()))
    trial_options.add_argument("--budget", type=_timeout, default=None, metavar="SECONDS",
                               help="timed training seconds a trial gets before it ends without its target "
                                    "(default: the profile's: " + ", ".join(
                                        f"{p.name} {p.budget_s:g}" for p in PROFILES.values() if p.budget_s)
                                    + "; none for the others)")
    trial_options.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    trial_options.add_argument("--repeats", type=_positive_int, default=1, help="fresh processes per trial, interleaved")
    trial_options.add_argument("--threads", type=_threads, default=default_threads(),
                     help="intra-op threads for every framework (default: all cores)")
    trial_options.add_argument("--seed", type=_seed, default=0)
    trial_options.add_argument("--timeout", type=_timeout, default=None, metavar="SECONDS",
                     help="per trial (default by profile: " + ", ".join(f"{p.name} {p.timeout_s:g}"
                                                                         for p in PROFILES.values()) + ")")
    trial_options.add_argument("--data-dir", default=None, help=f"folder with the IDX files (default: ${datasets.ENV_DATA_DIR})")
    trial_options.add_argument("--no-env-setup", action="store_true",
                               help="do not create missing framework environments; their trials are skipped")

    run = sub.add_parser("run", parents=[config_file, ci_output, env_dir, trial_options],
                         help="run trials and write a run directory with records and summary.md")
    run.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where run directories are made")
    run.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                     help="finish an interrupted run: its own options, only the trials without a record")
    run.add_argument("--executor", choices=EXECUTORS, default="local",
                     help="local: here, one trial at a time (default); ray: on the nodes of a Ray cluster")
    run.add_argument("--ray-address", default=None, metavar="auto|HOST:PORT",
                     help="the Ray cluster's head (default: auto, the cluster started on this machine); with "
                          "--resume, where a Ray run's cluster is now")
    run.add_argument("--trials-per-node", type=_positive_int, default=1, metavar="N",
                     help="ray: trials at a time on one node, each on its own cores (default 1: a node to itself)")
    run.add_argument("--record-hostnames", action="store_true",
                     help="put hostnames in the records (default: an alias made from a hash of each)")

    ab = sub.add_parser("ab", parents=[config_file, ci_output, env_dir, trial_options],
                        help="A/B on this machine: two revisions' trials interleaved, then compared; exit 1 on a "
                             "regression or a failed trial")
    ab.add_argument("base_ref", metavar="BASE_REF", help="the revision to compare against (branch, tag, commit)")
    ab.add_argument("head_ref", metavar="HEAD_REF", nargs="?", default="HEAD", help="default: HEAD (committed state)")
    ab.add_argument("--out", type=Path, default=DEFAULT_AB_OUT, help="where the A/B folder is made")
    ab.add_argument("--summary", type=Path, default=None, metavar="FILE",
                    help="also append the comparison (markdown) to FILE, e.g. \"$GITHUB_STEP_SUMMARY\"")

    report = sub.add_parser("report", help="tables and report files (md, html, csv, json) of one or more runs")
    report.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR",
                        help="several runs are pooled as repeats, or compared with --side-by-side")
    report.add_argument("--format", type=_formats, default=FORMATS, metavar="md,html,csv,json",
                        help="which files to write (default: all)")
    report.add_argument("--out", type=Path, default=None,
                        help="folder for the files (default: the run directory; for several runs "
                             "results/reports/<time>)")
    report.add_argument("--force", action="store_true", help="replace report files already in --out")
    report.add_argument("--side-by-side", action="store_true",
                        help="label each run's rows by what differs between the runs (machine, commit, "
                             "versions, threads) instead of pooling them")

    baseline = sub.add_parser("baseline", help="save a run's raw samples as a committed baseline")
    baseline_sub = baseline.add_subparsers(dest="baseline_command", required=True, metavar="{save}")
    save = baseline_sub.add_parser("save", help="write results/baselines/NAME.json from one or more runs")
    save.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    save.add_argument("--name", type=_baseline_name, default=None, help="file name (default: the first run's id)")
    save.add_argument("--dir", type=Path, default=DEFAULT_BASELINES, help=f"default: {DEFAULT_BASELINES}")
    save.add_argument("--force", action="store_true", help="replace a baseline of that name")

    compare = sub.add_parser("compare", parents=[config_file, ci_output],
                             help="baseline vs current: ratios, CIs, significance; exit 1 on a regression")
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
    compare.add_argument("--force", action="store_true", help="replace the --out file if it exists")

    history = sub.add_parser("history", help="each metric over the runs under a results folder, with change points")
    history.add_argument("results_dir", type=Path, nargs="?", default=DEFAULT_OUT.parent)
    history.add_argument("--metric", choices=tuple(METRICS), default="throughput")
    history.add_argument("--format", choices=("md", "text"), default="text")
    history.add_argument("--plot", type=_plot_file, default=None, metavar="FILE", help="also draw it (.svg, .png or .pdf)")
    history.add_argument("--force", action="store_true", help="replace the --plot file if it exists")

    export = sub.add_parser("export", help="a run to MLflow, or a run (or baseline) as github-action-benchmark JSON")
    export.add_argument("source", type=Path, help="a run directory (--mlflow), or a run directory or baseline file")
    target = export.add_mutually_exclusive_group(required=True)
    target.add_argument("--mlflow", action="store_true",
                        help="one MLflow run per trial under a parent run for the run; exporting again adds only "
                             "trials not there yet")
    target.add_argument("--github-action-benchmark", type=Path, metavar="DIR", dest="gab_dir",
                        help="writes DIR/bigger_is_better.json and DIR/smaller_is_better.json")
    export.add_argument("--tracking-uri", default=None, metavar="URI",
                        help="with --mlflow: sqlite:///FILE, a folder, http://HOST:PORT (default: MLflow's own: "
                             "$MLFLOW_TRACKING_URI, else its local default)")
    export.add_argument("--experiment", default="dlbench", metavar="NAME", help="with --mlflow (default: dlbench)")
    export.add_argument("--force", action="store_true", help="replace the github-action-benchmark files if they exist")

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
        axes = (f"--batch-size (its own: {spec.batch_size})" if spec.batch_axis else "no batch axis (the batch is the data)") \
            + (f", --width (its own: {spec.width} {'hidden units' if spec.width_layers == 'dense' else 'filters'})"
               if spec.width_layers else ", no width axis")
        print(f"  {spec.name:<10} {spec.description}\n  {'':<10} epochs: {epochs}; target accuracy: {targets}"
              f"\n  {'':<10} sweeps: {axes}")
    print("\nProfiles (--profile):")
    for profile in PROFILES.values():
        print(f"  {profile.name:<11} {profile.purpose}; training ends: {profile.rule}")
    print(f"Datasets for the image workloads (--dataset): {', '.join(IMAGE_DATASETS)}")
    print(f"Scenarios (--scenario): train (default), infer (batch sizes {','.join(map(str, INFER_BATCH_SIZES))} "
          "unless --batch-size says otherwise)")
    print("Precisions (--precision, several as fp32,mixed-bf16):")
    for p in PRECISIONS.values():
        print(f"  {p.name:<11} {p.description}")
    return 0


def _availability(framework: str, variant: str, base: Path) -> str:
    env = environment_of(framework, variant)
    if env is not None:
        state = envs.status(env, base)
        version = state.versions.get(FRAMEWORKS[framework].distributions[0])
        return f"env {env.name}: ready, {version}" if state.ready else f"env {env.name}: {state.problem}"
    problem = envs.unavailable(framework, variant, base)
    return f"installed {installed_version(framework)}" if not problem else f"not installed ({problem})"


def _options(args: argparse.Namespace) -> RunOptions:
    """The run's options, with every path made absolute here: trials run in another folder."""
    data_dir = args.data_dir or os.environ.get(datasets.ENV_DATA_DIR)
    return RunOptions(frameworks=tuple(args.framework), workloads=tuple(args.workload), dataset=args.dataset,
                      profile=args.profile, device=args.device, threads=args.threads, seed=args.seed,
                      repeats=args.repeats, data_dir=os.path.abspath(os.path.expanduser(data_dir)) if data_dir else None,
                      cache_dir=None, timeout_s=args.timeout, executor=getattr(args, "executor", "local"),
                      ray_address=getattr(args, "ray_address", None),
                      trials_per_node=getattr(args, "trials_per_node", 1),
                      record_hostnames=getattr(args, "record_hostnames", False),
                      scenarios=args.scenario, batch_sizes=args.batch_size, widths=args.width,
                      precisions=args.precision, tf32=args.tf32 == "on", autotune=args.autotune == "on",
                      malloc=args.malloc, budget_s=args.budget)


def _interrupted(exc: Interrupted) -> str:
    run_dir = exc.run_dir
    if not isinstance(run_dir, RunDir) or not run_dir.manifest_path.exists():
        return f"interrupted by {exc.name} before any trial started; nothing was measured"
    done = len(run_dir.record_files())
    return (f"interrupted by {exc.name}; the trial in flight was stopped and recorded as interrupted "
            f"({done} records in {run_dir.records_dir}); finish the run with: {resume_command(run_dir)}")


def cmd_run(args: argparse.Namespace) -> int:
    command = shlex.join([PROGRAM] + sys.argv[1:])
    options = None if args.resume else _options(args)
    problem = width_problem(options.workloads, options.widths) if options else None
    if problem:  # the one problem of these options that no single argument shows
        raise fail(f"--width: {problem}", 2)
    try:
        outcome = carry_out(options, args.out.absolute(),
                            args.resume.absolute() if args.resume else None, envs.base_dir(args.env_dir),
                            create_envs=not args.no_env_setup, command=command,
                            ray_address=args.ray_address if args.resume else None)
    except RunError as exc:
        raise fail(str(exc), exc.code) from None
    except Interrupted as exc:
        print(f"{PROGRAM}: {_interrupted(exc)}", file=sys.stderr)
        return 128 + exc.signum
    run_dir = outcome.run_dir
    if not outcome.records:
        print(f"Nothing to do: every trial of {run_dir.path} has a record.")
    print(f"\nRecords: {run_dir.records_dir}")
    records = _report([run_dir.path], run_dir.path, FORMATS, side_by_side=False, overwrite=True)
    from reports import ci

    _publish(_read_text(run_dir.path / "summary.md"), ci.failure_annotations(records), args.junit,
             {f"dlbench run {run_dir.run_id}": ci.trial_cases(records)})
    return 1 if any(r.status in ci.FAILED for r in records) else 0


def cmd_ab(args: argparse.Namespace) -> int:
    from harness.ab import run_ab
    from reports.baseline import load_side
    from reports.compare import compare, render

    command = shlex.join([PROGRAM] + sys.argv[1:])
    try:
        outcome = run_ab(args.base_ref, args.head_ref, _options(args), args.out.absolute(),
                         envs.base_dir(args.env_dir), create_envs=not args.no_env_setup, command=command)
    except RunError as exc:
        raise fail(str(exc), exc.code) from None
    for side in (outcome.base, outcome.head):
        print(f"\n{side.name}: {side.ref} ({side.commit[:10]}), run directory {side.run_dir.path}")
        _report([side.run_dir.path], side.run_dir.path, FORMATS, side_by_side=False, overwrite=True)
    result = compare(load_side(outcome.base.run_dir.path), load_side(outcome.head.run_dir.path), paired=True)
    text = render(result, "md")
    failed = [r for r in outcome.records["head"] if r.status in ("error", "timeout")]
    if failed:
        text += f"\n### Trials that failed in {args.head_ref} ({len(failed)})\n\n" + "\n".join(
            f"- {r.workload} ({r.dataset}) {r.label}: {r.status}: {(r.reason.splitlines() or [''])[0]}"
            for r in failed) + "\n"
    text = (f"A/B on this machine: {args.head_ref} ({outcome.head.commit[:10]}) against {args.base_ref} "
            f"({outcome.base.commit[:10]}), trials interleaved; {outcome.folder}\n\n") + text
    _write_output(lambda: write_text(outcome.folder / "comparison.md", text), "the comparison", outcome.folder)
    print("\n" + text)
    if args.summary:
        try:
            with open(args.summary, "a") as summary:
                summary.write(text)
        except OSError as exc:
            raise fail(f"cannot append to --summary {args.summary}: {describe_os_error(exc)}", 1) from None
    from reports import ci

    _publish(text, ci.failure_annotations(outcome.records["head"]) + ci.regression_annotations(result), args.junit,
             {f"dlbench ab {args.head_ref}": ci.trial_cases(outcome.records["head"]),
              f"dlbench ab {args.head_ref} against {args.base_ref}": ci.check_cases(result)}, already=args.summary)
    for r in failed:
        print(f"{PROGRAM} ab: {r.label} {r.workload} ({r.dataset}) {r.status} in {args.head_ref}", file=sys.stderr)
    for change in result.regressions:
        print(f"{PROGRAM} ab: regression: {ci.change_text(change)}", file=sys.stderr)
    return 1 if failed or result.regressions else 0


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _publish(markdown: str, annotations: list[str], junit: Path | None, suites: dict, already: Path | None = None) -> None:
    """CI-native output after the command's own files are written: the markdown appended to
    $GITHUB_STEP_SUMMARY, error annotations on GitHub Actions, the JUnit file."""
    from reports import ci

    try:
        if markdown:
            ci.append_step_summary(markdown, already)
    except OSError as exc:
        raise fail(f"cannot append to ${ci.SUMMARY_VAR}: {describe_os_error(exc)}", 1) from None
    if ci.in_github_actions() and annotations:
        print("\n".join(annotations))
    if junit:
        _write_output(lambda: ci.write_junit(junit, suites, overwrite=False), "the JUnit file", junit)


def _warn(message: str) -> None:
    print(f"{PROGRAM}: warning: {message}", file=sys.stderr)


def _report(run_dirs: list[Path], out_dir: Path, formats: tuple[str, ...], side_by_side: bool,
            overwrite: bool) -> list:
    """Print the tables and write the report files; returns the records reported. A record or
    manifest that cannot be read is left out with a warning and listed in the report."""
    from reports.load import load_runs
    from reports.summary import write_reports
    from reports import phases, precision, scaling
    from reports.tables import problems, workload_tables

    unreadable: list[BadFile] = []
    loaded = load_runs(run_dirs, side_by_side, unreadable)
    frame, records = loaded[0], loaded[1]
    for exc in unreadable:
        _warn(f"{exc}; left out of the report")
    if not records:
        raise fail(f"nothing to report: no readable record in {', '.join(map(str, run_dirs))}")
    print("\n" + workload_tables(frame, markdown=False))
    for section in (scaling.text_section(frame), precision.text_section(frame)):
        if section:
            print("\n" + section)
    trouble = problems(frame, markdown=False, unreadable=unreadable)
    if trouble:
        print("\nSkipped or failed:\n" + trouble)
    spent = phases.total_line(records)
    if spent:
        print(f"\n{spent} (each trial's: summary.md, report.html)")
    try:
        written = write_reports(run_dirs, out_dir, formats, side_by_side, loaded=loaded, unreadable=unreadable,
                                overwrite=overwrite)
    except WouldOverwrite as exc:
        raise fail(f"{exc}; use --force to replace the report files in {out_dir}") from None
    except OSError as exc:
        raise fail(f"cannot write the report to {out_dir}: {describe_os_error(exc)}; nothing there was "
                   "replaced by a partial file") from None
    print("\nReport: " + ", ".join(str(p) for p in written.values()))
    return records


def _formats(text: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(f.strip() for f in text.split(",") if f.strip()))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"unknown format {', '.join(map(repr, unknown)) or repr(text)}; "
                                         f"choose one or more of: {', '.join(FORMATS)} (comma-separated)")
    return chosen


def _run_dirs(paths: list[Path]) -> list[Path]:
    for path in paths:
        if not RunDir(path).is_run():
            raise fail(f"{path} is not a run directory (no manifest.json or records/ folder)")
    return [p.absolute() for p in paths]


def cmd_report(args: argparse.Namespace) -> int:
    run_dirs = _run_dirs(args.run_dirs)
    out = args.out
    if out is None:
        out = run_dirs[0] if len(run_dirs) == 1 else \
            DEFAULT_OUT.parent / "reports" / datetime.now().strftime("%Y%m%d-%H%M%S")
    # A run's own report files are regenerated freely; anywhere else, existing files are the user's.
    overwrite = args.force or out.absolute() in run_dirs
    _report(run_dirs, out, args.format, args.side_by_side, overwrite)
    return 0


def _side(path: Path) -> dict:
    from reports.baseline import load_side

    try:
        return load_side(path)
    except BadFile as exc:
        raise fail(str(exc)) from None


def _write_output(action: Callable[[], object], what: str, where: Path) -> object:
    """Run a writer; a refused overwrite or a failed write ends in one line (exit 2)."""
    try:
        return action()
    except WouldOverwrite as exc:
        raise fail(f"{exc}; use --force to replace it") from None
    except OSError as exc:
        raise fail(f"cannot write {what} to {where}: {describe_os_error(exc)}") from None


def cmd_baseline(args: argparse.Namespace) -> int:
    from reports.baseline import name_problem, save_baseline

    run_dirs = _run_dirs(args.run_dirs)
    name = args.name or run_dirs[0].name
    if name_problem(name):
        raise fail(f"{name_problem(name)}; give one with --name")
    try:
        path = _write_output(lambda: save_baseline(run_dirs, name, args.dir, overwrite=args.force), "the baseline",
                             args.dir)
    except BadFile as exc:
        raise fail(f"{exc}; no baseline was written") from None
    print(f"Baseline: {path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from reports.compare import DEFAULT_METRICS, compare, render

    metrics = tuple(dict.fromkeys(name for name, _ in args.metric)) or DEFAULT_METRICS
    thresholds = {m: args.threshold for m in metrics if args.threshold is not None}
    thresholds.update({name: pct for name, pct in args.metric if pct is not None})
    if args.out and args.out.exists() and not args.force:
        raise fail(f"{args.out} already exists; use --force to replace it")
    result = compare(_side(args.baseline), _side(args.current), metrics, thresholds)
    text = render(result, args.format)
    if args.out:
        _write_output(lambda: write_text(args.out, text), "the comparison", args.out)
    print(text, end="")
    from reports import ci

    _publish(render(result, "md"), ci.regression_annotations(result), args.junit,
             {f"dlbench compare {args.baseline} {args.current}": ci.check_cases(result)})
    return 1 if result.regressions else 0


def cmd_history(args: argparse.Namespace) -> int:
    from reports import history

    if not args.results_dir.is_dir():
        raise fail(f"{args.results_dir} is not a folder")
    if args.plot and args.plot.exists() and not args.force:
        raise fail(f"{args.plot} already exists; use --force to replace it")
    sides, skipped = history.collect(args.results_dir)
    for exc in skipped:
        _warn(f"{exc}; left out of the history")
    frame = history.series(sides, args.metric)
    if frame.empty:
        raise fail(f"no runs or baselines with {args.metric} under {args.results_dir}", code=1)
    print(f"{args.metric} by run ('*': a change point starts there)\n")
    print(history.table(frame, args.metric, markdown=args.format == "md"))
    if args.plot:
        _write_output(lambda: history.plot(frame, args.metric, args.plot, overwrite=args.force), "the plot", args.plot)
        print(f"\nPlot: {args.plot}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from reports import gab

    if args.mlflow:
        return _export_mlflow(args)
    side = _side(args.source)
    for path in _write_output(lambda: gab.export(side, args.gab_dir, overwrite=args.force), "the export",
                              args.gab_dir):
        print(path)
    return 0


def _export_mlflow(args: argparse.Namespace) -> int:
    from reports import mlflow_export

    if not RunDir(args.source).is_run():
        raise fail(f"{args.source} is not a run directory; --mlflow exports runs (results/runs/<run>)")
    try:
        done = mlflow_export.export(args.source, args.tracking_uri, args.experiment)
    except mlflow_export.ExportError as exc:
        raise fail(str(exc), 1) from None
    except BadFile as exc:
        raise fail(f"{exc}; nothing more was exported", 1) from None
    print(f"MLflow experiment {args.experiment!r} (id {done.experiment_id}), parent run {done.parent_run_id}: "
          f"{len(done.added)} trials exported" + (f", {len(done.kept)} already there" if done.kept else ""))
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    base = envs.base_dir(args.env_dir)
    if args.env_command == "list":
        print(f"Environments in {base} (set with --env-dir, or the cache root with ${CACHE_DIR_VAR}):")
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
            print(f"{PROGRAM}: error: environment {name} could not be set up: {exc}", file=sys.stderr)
            failed.append(name)
    return 1 if failed else 0


def _apply_config(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str]) -> None:
    """Options from --config or ./pyproject.toml's [tool.dlbench], under the flags typed (harness.config)."""
    try:
        tables, source = config.load(args.config, Path.cwd())
        if tables.get(args.command):
            config.apply(args, config.command_parser(parser, args.command), tables[args.command],
                         config.typed_options(build_parser, argv), source, args.command)
    except config.ConfigError as exc:
        raise fail(str(exc), 2) from None


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line, with a config file's options under the flags typed (exit 2 on a mistake)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in config.COMMANDS:
        _apply_config(parser, args, argv)
    if getattr(args, "junit", None) and args.junit.exists():  # found out before anything runs
        raise fail(f"--junit {args.junit} already exists; give a new file name or remove it")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    commands = {"list": lambda _: cmd_list(), "run": cmd_run, "ab": cmd_ab, "report": cmd_report, "env": cmd_env,
                "baseline": cmd_baseline, "compare": cmd_compare, "history": cmd_history, "export": cmd_export}
    try:
        with interruptible():
            return commands[args.command](args)
    except (Interrupted, KeyboardInterrupt) as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else 2
        what = exc.name if isinstance(exc, Interrupted) else "Ctrl-C"
        print(f"{PROGRAM}: interrupted by {what}; files are written whole or not at all", file=sys.stderr)
        return 128 + signum
    except BrokenPipeError:  # `bench.py report RUN | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
