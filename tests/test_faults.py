"""Fault injection: the harness under the mistakes and accidents of unattended use. Each test puts
one fault back (a killed or signalled parent, a full disk, a read-only path, someone else's folder,
a damaged file, a concurrent resume, an out-of-memory kill) and checks that no data is lost, no
process of the run survives, and the user gets one line that names the file and what to do.

Fake adapters stand in for frameworks: what is tested is the harness, and a real framework adds only
minutes. Tests that signal or limit bench.py run it as a process of its own (tests/fake_bench.py)."""
from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import bench
from adapters import ENVIRONMENTS, FRAMEWORKS, Environment, FrameworkInfo
from harness import envs
from harness.launch import TERM_GRACE_S
from harness.measure import oom_kills
from harness.plan import RunOptions, plan
from harness.schema import load_record
from tests.conftest import ROOT

pytestmark = pytest.mark.alone  # processes must end within seconds

FAKE_BENCH = ROOT / "tests" / "fake_bench.py"
GOLDEN = ROOT / "tests" / "data" / "golden_run"
SMOKE = ["-w", "xor", "--profile", "smoke"]


def cli(*args: str) -> tuple[int, str, str]:
    """bench.main in this process: (exit code, stdout, stderr)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = bench.main(list(args))
        except SystemExit as stop:
            code = stop.code
    return code, out.getvalue(), err.getvalue()


def start(*args: str, cwd: Path | None = None, env: dict | None = None, preexec=None) -> subprocess.Popen:
    """tests/fake_bench.py ARGS as a process of its own (its own session, as a terminal's job is)."""
    return subprocess.Popen([sys.executable, str(FAKE_BENCH), *args], cwd=cwd or ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            env={**os.environ, **(env or {})}, preexec_fn=preexec)


def processes_under(folder: Path) -> list[psutil.Process]:
    """Live processes whose command line names something under `folder` (a run's parent or trial)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] != psutil.STATUS_ZOMBIE and str(folder) in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return [p for p in found if p.pid != os.getpid()]


def wait_for(condition, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def trial_measuring(out: Path) -> bool:
    """A trial process is running under `out` and has reported progress (it has timed blocks)."""
    return any("harness.trial" in " ".join(p.cmdline()) for p in processes_under(out)) \
        and any(out.glob("*/work/*.progress.json"))


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if not line.startswith("INFO ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ---- 1. someone else's folder under --env-dir ----------------------------------------------------

def test_a_foreign_folder_where_an_environment_would_go_is_never_deleted(tmp_path, monkeypatch):
    monkeypatch.setitem(ENVIRONMENTS, "oldnumpy", Environment("oldnumpy", ("numpy==1.23.5",), ("numpy",)))
    precious = tmp_path / "oldnumpy" / "thesis" / "chapter1.tex"
    precious.parent.mkdir(parents=True)
    precious.write_text("years of work")
    with pytest.raises(envs.EnvSetupError, match="holds files that the harness did not put there"):
        envs.setup(ENVIRONMENTS["oldnumpy"], tmp_path, echo=lambda line: None)
    assert precious.read_text() == "years of work"
    state = envs.status(ENVIRONMENTS["oldnumpy"], tmp_path)
    assert not state.ready and "left untouched" in state.problem


def test_env_setup_refuses_a_foreign_mxnet_folder_by_name(tmp_path):
    (tmp_path / "mxnet").mkdir()
    (tmp_path / "mxnet" / "notes.txt").write_text("mine")
    before = digest(tmp_path)
    result = subprocess.run([sys.executable, str(ROOT / "bench.py"), "env", "setup", "mxnet", "--env-dir", str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 1
    assert f"{tmp_path / 'mxnet'} holds files that the harness did not put there" in result.stderr
    assert "Traceback" not in result.stderr
    assert {k: v for k, v in digest(tmp_path).items() if k.startswith("mxnet/")} == \
        {k: v for k, v in before.items() if k.startswith("mxnet/")}


# ---- 2. a parent that dies or is stopped ---------------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stopped_run_records_the_trial_as_interrupted_and_resumes(tmp_path, signum):
    out = tmp_path / "runs"
    proc = start("run", "-f", "slow", "-f", "numpy", *SMOKE, "--out", str(out))
    wait_for(lambda: trial_measuring(out), what="the slow trial to measure")
    time.sleep(0.5)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=TERM_GRACE_S + 30)
    assert proc.returncode == 128 + signum
    line = one_line(err)
    (run_dir,) = out.iterdir()
    assert f"interrupted by {signal.Signals(signum).name}" in line
    assert f"finish the run with: bench.py run --resume {run_dir}" in line
    wait_for(lambda: not processes_under(out), timeout=5, what="no process of the run")
    record = load_record(run_dir / "records" / "xor.xor.slow.default.r0.json")
    assert record.status == "interrupted" and signal.Signals(signum).name in record.reason
    assert record.first_block is not None and record.blocks  # what it measured is kept
    assert not (run_dir / "records" / "xor.xor.numpy.default.r0.json").exists()  # the run stopped there

    resumed = start("run", "--resume", str(run_dir))
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    for trial in ("xor.xor.slow.default.r0", "xor.xor.numpy.default.r0"):
        assert load_record(run_dir / "records" / f"{trial}.json").status == "ok"
    kept = load_record(run_dir / "interrupted" / "xor.xor.slow.default.r0.0.json")
    assert kept.status == "interrupted" and kept.blocks  # set aside, not deleted


def killed_mid_trial(out: Path, env: dict | None = None) -> tuple[Path, int]:
    """A run of the slow stand-in whose bench.py is killed (SIGKILL) while its trial measures. The
    trial had seconds of training left; tied to its parent, it must end at once. Returns the run
    folder and the killed parent's pid."""
    proc = start("run", "-f", "slow", *SMOKE, "--out", str(out), env=env)
    wait_for(lambda: trial_measuring(out), what="the slow trial to measure")
    proc.kill()
    proc.wait()
    wait_for(lambda: not processes_under(out), timeout=1, what="the orphaned trial to end")
    (run_dir,) = out.iterdir()
    return run_dir, proc.pid


def test_a_killed_parent_takes_its_trial_with_it_and_the_next_run_clears_its_scratch(tmp_path):
    out, scratch = tmp_path / "runs", tmp_path / "tmp"
    scratch.mkdir()
    run_dir, pid = killed_mid_trial(out, env={"TMPDIR": str(scratch)})
    assert not (run_dir / "records").exists() or not any((run_dir / "records").iterdir())
    left = list(scratch.glob(f"dlbench-caches-{pid}-*"))
    assert left  # the dead parent could not remove its trial's cache folder
    # Nothing of the dead run writes into the folder any more: a resume measures the trial alone.
    time.sleep(1)
    resumed = start("run", "--resume", str(run_dir), env={"TMPDIR": str(scratch)})
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert load_record(run_dir / "records" / "xor.xor.slow.default.r0.json").status == "ok"
    assert not any(path.exists() for path in left)  # the next run removed the dead one's scratch
    assert not list(scratch.iterdir())  # and its own


def test_two_resumes_of_one_run_at_once_refuse_the_second(fakes, tmp_path):
    out = tmp_path / "runs"
    run_dir, _ = killed_mid_trial(out)
    resume_a = start("run", "--resume", str(run_dir))
    wait_for(lambda: trial_measuring(out), what="resume A's trial")
    code, _, err = cli("run", "--resume", str(run_dir))
    assert code == 2
    assert one_line(err) == (f"bench.py: error: {run_dir} is in use by another bench.py (pid {resume_a.pid}); wait "
                             "for it to finish, or stop it first")
    _, err = resume_a.communicate(timeout=120)
    assert resume_a.returncode == 0, err
    assert [p.name for p in (run_dir / "records").iterdir()] == ["xor.xor.slow.default.r0.json"]


def test_a_workload_named_twice_is_one_trial(fakes, tmp_path):
    options = RunOptions(frameworks=("numpy", "numpy"), workloads=("xor", "xor"), dataset="mnist", profile="smoke",
                         device="cpu", threads=1, seed=0, repeats=1, data_dir=None, cache_dir=None, timeout_s=None)
    assert [t.trial_id for t in plan(options)] == ["xor.xor.numpy.default.r0"]
    code, _, err = cli("run", "-f", "numpy", "-w", "xor", "-w", "xor", "--profile", "smoke", "--threads", "1",
                       "--out", str(tmp_path))
    assert code == 0, err


# ---- 3. relative paths, typed in another folder --------------------------------------------------

def test_relative_paths_are_those_of_the_folder_the_command_was_typed_in(tmp_path, data_dir):
    here = tmp_path / "elsewhere"
    here.mkdir()
    (here / "data").symlink_to(data_dir)
    env = {k: v for k, v in os.environ.items() if k != "BENCH_DATA_DIR"}
    for extra, environment in ((["--data-dir", "data"], {}), ([], {"BENCH_DATA_DIR": "data"})):
        result = subprocess.run([sys.executable, str(FAKE_BENCH), "run", "-f", "numpy", "-w", "mnist_mlp", "--profile",
                                 "smoke", "--out", "relout", *extra], cwd=here, capture_output=True, text=True,
                                env={**env, **environment}, timeout=300)
        assert result.returncode == 0, result.stderr
    runs = sorted((here / "relout").iterdir())
    assert len(runs) == 2
    for run_dir in runs:
        record = load_record(run_dir / "records" / "mnist_mlp.mnist.numpy.default.r0.json")
        assert record.status == "ok", record.reason


# ---- 4. damaged or foreign files -----------------------------------------------------------------

DAMAGE = {
    "truncated": lambda text: text[: len(text) // 2],
    "empty": lambda text: "",
    "binary": lambda text: bytes(range(256)).decode("latin-1"),
    "blocks is a string": lambda text: json.dumps({**json.loads(text), "blocks": "fast"}),
    "status is null": lambda text: json.dumps({**json.loads(text), "status": None}),
    "unknown schema": lambda text: json.dumps({**json.loads(text), "schema_version": 99}),
    "negative block": lambda text: json.dumps({**json.loads(text), "blocks": [{"epoch": 0, "first_step": 1, "steps": 5,
                                                                              "seconds": -1.0}]}),
}
EXPECTED = {"truncated": "is not valid JSON", "empty": "is empty", "binary": "is not valid JSON",
            "blocks is a string": "field blocks: input should be a valid array (found 'fast')",
            "status is null": "field status: input should be a valid string (found None)",
            "unknown schema": "field schema_version is 99; this version of dlbench reads 1",
            "negative block": "field blocks[0].seconds is -1.0; expected a finite number above 0"}


def _damaged_run(tmp_path: Path, how: str) -> tuple[Path, Path]:
    run = tmp_path / "run"
    shutil.copytree(GOLDEN, run)
    victim = run / "records" / "mnist_mlp.mnist.keras.torch.r0.json"
    victim.write_text(DAMAGE[how](victim.read_text()), encoding="latin-1")
    return run, victim


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_damaged_record_is_named_never_a_traceback(tmp_path, how):
    run, victim = _damaged_run(tmp_path, how)
    before = digest(run)
    # report: left out with a warning, listed in the report, the rest written
    code, out, err = cli("report", str(run), "--out", str(tmp_path / "report"))
    assert code == 0 and "Traceback" not in err
    warning = one_line(err)
    assert warning.startswith(f"bench.py: warning: {victim}: {EXPECTED[how]}")
    assert warning.endswith("; left out of the report")
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "unreadable, left out" in summary and "pytorch" in summary
    assert (tmp_path / "report" / "report.html").exists()
    # baseline save, compare, export: refused, naming the file and the field
    for args in (["baseline", "save", str(run), "--dir", str(tmp_path / "b")], ["compare", str(GOLDEN), str(run)],
                 ["export", str(run), "--github-action-benchmark", str(tmp_path / "gab")]):
        code, _, err = cli(*args)
        assert code == 2, args
        assert f"{victim}: {EXPECTED[how]}" in one_line(err)
    # history: the run is left out with a warning
    code, _, err = cli("history", str(tmp_path))
    assert f"{victim}: {EXPECTED[how]}" in err and "left out of the history" in err and "Traceback" not in err
    assert digest(run) == before and not (tmp_path / "b").exists() and not (tmp_path / "gab").exists()


def test_resume_of_a_folder_with_someone_elses_manifest(tmp_path):
    (tmp_path / "records").mkdir()
    (tmp_path / "manifest.json").write_text(json.dumps({"name": "my-app", "version": 3}))
    before = digest(tmp_path)
    code, _, err = cli("run", "--resume", str(tmp_path))
    assert code == 2
    assert one_line(err) == f"bench.py: error: cannot resume: {tmp_path / 'manifest.json'}: field run_id is missing " \
                            "(and 4 more problems)"
    assert digest(tmp_path) == before


def test_a_baseline_of_the_right_shape_with_wrong_types_is_exit_2_not_a_regression(tmp_path):
    code, _, err = cli("baseline", "save", str(GOLDEN), "--name", "good", "--dir", str(tmp_path))
    assert code == 0, err
    data = json.loads((tmp_path / "good.json").read_text())
    key = next(iter(data["trials"]))
    data["trials"][key]["samples"]["throughput"] = "fast"
    (tmp_path / "bad.json").write_text(json.dumps(data))
    code, _, err = cli("compare", str(tmp_path / "bad.json"), str(GOLDEN))
    assert code == 2
    assert f"{tmp_path / 'bad.json'}: field trials.{key}.samples.throughput: input should be a valid array" \
        in one_line(err)


# ---- 5. outputs that cannot be written -----------------------------------------------------------

def _file_size_limit(limit: int):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_full_disk_leaves_no_truncated_report(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.html").write_text("the previous report")
    result = subprocess.run([sys.executable, str(ROOT / "bench.py"), "report", str(GOLDEN), "--out", str(out),
                             "--force"], capture_output=True, text=True, cwd=ROOT, preexec_fn=_file_size_limit(20_000),
                            timeout=120)
    assert result.returncode == 2
    assert one_line(result.stderr) == (f"bench.py: error: cannot write the report to {out}: File too large; nothing "
                                       "there was replaced by a partial file")
    assert (out / "report.html").read_text() == "the previous report"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_full_disk_during_a_trial_gives_an_error_record_and_the_run_goes_on(tmp_path):
    out = tmp_path / "runs"
    proc = start("run", "-f", "numpy", "-f", "slow", *SMOKE, "--threads", "1", "--out", str(out),
                 preexec=_file_size_limit(12_000))  # a trial's record does not fit; the error record does
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    (run_dir,) = out.iterdir()
    for trial in ("numpy", "slow"):
        record = load_record(run_dir / "records" / f"xor.xor.{trial}.default.r0.json")
        assert record.status == "error"
        assert record.reason.splitlines()[-1] == (f"harness.trial: cannot write the trial's record to "
                                                  f"{run_dir / 'work' / f'xor.xor.{trial}.default.r0.result.json'}: "
                                                  "File too large")
    assert not [p for p in run_dir.rglob("*.tmp")]


def test_a_full_disk_for_the_run_directory_is_one_line(tmp_path):
    out = tmp_path / "runs"
    proc = start("run", "-f", "numpy", *SMOKE, "--out", str(out), preexec=_file_size_limit(1_000))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2
    (run_dir,) = out.iterdir()
    assert one_line(err) == f"bench.py: error: cannot write in {run_dir}: File too large"
    assert not [p for p in run_dir.rglob("*.tmp")]


@pytest.mark.parametrize("args", [
    ["report", str(GOLDEN), "--out", "/proc/dlbench-test"],
    ["compare", str(GOLDEN), str(GOLDEN), "--out", "/proc/dlbench-test.md"],
    ["history", str(ROOT / "tests" / "data"), "--plot", "/proc/dlbench-test.svg"],
    ["export", str(GOLDEN), "--github-action-benchmark", "/proc/dlbench-test"],
    ["baseline", "save", str(GOLDEN), "--dir", "/proc/dlbench-test"],
    ["run", "-f", "mxnet", "--out", "/proc/dlbench-test"],
])
def test_an_output_that_cannot_be_written_is_one_line(args, tmp_path):
    code, _, err = cli(*args, *(["--env-dir", str(tmp_path / "envs")] if args[0] == "run" else []))
    assert code == 2
    assert "/proc/dlbench-test" in one_line(err)
    assert not (tmp_path / "envs").exists()  # an unwritable --out is found before any environment is built


def test_an_interpreter_that_cannot_start_is_an_error_record_and_the_run_goes_on(fakes, tmp_path, monkeypatch):
    monkeypatch.setitem(ENVIRONMENTS, "noexec", Environment("noexec", ("numpy",), ("numpy",)))
    monkeypatch.setitem(FRAMEWORKS, "stuck", FrameworkInfo(
        name="stuck", adapter="tests.fake_adapters:NumpyAdapter", variants=("default",), modules={"default": ("numpy",)},
        distributions=("numpy",), environment={"default": "noexec"}))
    env_dir = tmp_path / "envs" / "noexec"
    (env_dir / "bin").mkdir(parents=True)
    (env_dir / "bin" / "python").write_text("not a program")  # mode 0644: not executable, even by root
    import platform
    (env_dir / envs.STAMP).write_text(json.dumps({"requirements": ["numpy"], "python": platform.python_version(),
                                                  "versions": {}}))
    code, _, err = cli("run", "-f", "stuck", "-f", "numpy", *SMOKE, "--env-dir", str(tmp_path / "envs"),
                       "--out", str(tmp_path / "runs"))
    assert code == 1
    (run_dir,) = (tmp_path / "runs").iterdir()
    stuck = load_record(run_dir / "records" / "xor.xor.stuck.default.r0.json")
    assert stuck.status == "error"
    assert stuck.reason == f"cannot start the trial's interpreter {env_dir / 'bin' / 'python'}: Permission denied"
    assert load_record(run_dir / "records" / "xor.xor.numpy.default.r0.json").status == "ok"


def test_a_process_a_framework_leaves_behind_ends_with_its_trial(tmp_path, monkeypatch):
    """The child ends without the interpreter's teardown (harness.lifeline.leave); whatever it
    started in its session (compile workers, helpers) is ended by the parent, not left running."""
    mark = f"dlbench-helper-{tmp_path.name}"
    monkeypatch.setenv("BENCH_TEST_MARK", mark)
    monkeypatch.setitem(FRAMEWORKS, "helper", FrameworkInfo(
        name="helper", adapter="tests.fake_adapters:LeavesAHelper", variants=("default",),
        modules={"default": ("numpy",)}, distributions=("numpy",)))
    code, _, _ = cli("run", "-f", "helper", *SMOKE, "--out", str(tmp_path / "runs"))
    assert code == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert load_record(run_dir / "records" / "xor.xor.helper.default.r0.json").status == "ok"
    wait_for(lambda: not [p for p in psutil.process_iter(["cmdline", "status"])
                          if p.info["status"] != psutil.STATUS_ZOMBIE and mark in (p.info["cmdline"] or [])],
             timeout=10, what="the helper to end")


# ---- 7. nothing is replaced without --force ------------------------------------------------------

@pytest.mark.parametrize("command, target", [
    (["baseline", "save", str(GOLDEN), "--name", "mine", "--dir", "{tmp}"], "mine.json"),
    (["compare", str(GOLDEN), str(GOLDEN), "--out", "{tmp}/cmp.md"], "cmp.md"),
    (["export", str(GOLDEN), "--github-action-benchmark", "{tmp}"], "bigger_is_better.json"),
    (["report", str(GOLDEN), "--out", "{tmp}"], "summary.md"),
])
def test_existing_files_are_replaced_only_with_force(tmp_path, command, target):
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    (tmp_path / target).write_text("the user's file")
    code, _, err = cli(*args)
    assert code == 2 and "use --force to replace" in one_line(err)
    assert (tmp_path / target).read_text() == "the user's file"
    code, _, err = cli(*args, "--force")
    assert code == 0, err
    assert (tmp_path / target).read_text() != "the user's file"


def test_report_of_a_run_without_records_is_an_error(tmp_path):
    (tmp_path / "records").mkdir()
    code, _, err = cli("report", str(tmp_path))
    assert code == 2 and one_line(err) == f"bench.py: error: nothing to report: no readable record in {tmp_path}"


# ---- 9. why a trial died -------------------------------------------------------------------------

def _memory_cgroup(limit_bytes: int) -> Path | None:
    """A new memory cgroup (v1 or v2) limited to `limit_bytes`, or None where one cannot be made."""
    for root, limit_file in ((Path("/sys/fs/cgroup/memory"), "memory.limit_in_bytes"), (Path("/sys/fs/cgroup"), "memory.max")):
        if (root / limit_file).exists() or (root / "cgroup.controllers").exists():
            group = root / f"dlbench-test-{os.getpid()}"
            try:
                group.mkdir()
                (group / limit_file).write_text(str(limit_bytes))
                if (root / "memory.memsw.limit_in_bytes").exists():
                    (group / "memory.memsw.limit_in_bytes").write_text(str(limit_bytes))
                return group
            except OSError:
                if group.exists():
                    group.rmdir()
    return None


def test_an_out_of_memory_kill_is_named_with_the_trials_last_output(tmp_path):
    group = _memory_cgroup(900 * 2**20)
    if group is None:
        pytest.skip("no memory cgroup can be made here (needs root and a writable /sys/fs/cgroup)")
    try:
        out = tmp_path / "runs"
        proc = start("run", "-f", "hog", *SMOKE, "--out", str(out),
                     preexec=lambda: (group / "cgroup.procs").write_text(str(os.getpid())))
        stdout, err = proc.communicate(timeout=300)
    finally:
        wait_for(lambda: not (group / "cgroup.procs").read_text().strip(), timeout=10, what="the cgroup to empty")
        group.rmdir()
    assert proc.returncode == 1, err
    (run_dir,) = out.iterdir()
    record = load_record(run_dir / "records" / "xor.xor.hog.default.r0.json")
    assert record.status == "error"
    assert record.reason.startswith("child killed by SIGKILL without a record: the kernel's out-of-memory killer "
                                    "ended it (")
    assert "taking all the memory there is" in record.reason
    # the reason's last lines, not just its first, in the console and in summary.md
    assert "taking all the memory there is" in stdout
    assert "taking all the memory there is" in (run_dir / "summary.md").read_text()


def test_a_trial_killed_by_hand_says_so_with_its_last_output(tmp_path):
    out = tmp_path / "runs"
    proc = start("run", "-f", "slow", *SMOKE, "--out", str(out))
    wait_for(lambda: trial_measuring(out), what="the slow trial to measure")
    (trial,) = [p for p in processes_under(out) if "harness.trial" in " ".join(p.cmdline())]
    trial.kill()
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    (run_dir,) = out.iterdir()
    reason = load_record(run_dir / "records" / "xor.xor.slow.default.r0.json").reason
    assert reason.startswith("child killed by SIGKILL without a record: not by the harness")
    if oom_kills() is not None:
        assert "no out-of-memory kill was counted" in reason
    assert reason.splitlines()[-1] in stdout and reason.splitlines()[-1] in (run_dir / "summary.md").read_text()


def test_markdown_escapes_what_records_say(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(GOLDEN, run)
    path = run / "records" / "mnist_mlp.mnist.keras.torch.r0.json"
    record = json.loads(path.read_text())
    record.update(label="<script>alert(1)</script>|x", reason="boom | <img src=x onerror=alert(1)>\nline two\n```\nthree")
    path.write_text(json.dumps(record))
    code, _, err = cli("report", str(run), "--format", "md")
    assert code == 0, err
    summary = (run / "summary.md").read_text()
    assert "<script>" not in summary and "<img" not in summary
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\|x" in summary
    assert "````\n" in summary and "  three" in summary  # the last lines, fenced so that ``` cannot close them


def test_scratch_of_a_live_owner_or_another_program_is_never_swept(tmp_path):
    from harness import scratch

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    orphan = tmp_path / f"dlbench-ray-{dead_pid}-xor.r0-abcd"
    live = tmp_path / f"dlbench-caches-{os.getppid()}-xor.r0-efgh"  # pytest's parent: alive
    foreign = tmp_path / f"dlbench-notes-{dead_pid}"  # not a scratch name: no '-' after the pid
    for path in (orphan, live, foreign):
        path.mkdir()
        (path / "file").write_text("x")
    made = scratch.make("caches", "t", root=tmp_path)
    assert not orphan.exists() and live.exists() and foreign.exists() and made.exists()
    assert made.name.startswith(f"dlbench-caches-{os.getpid()}-t-")
