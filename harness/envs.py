"""Isolated virtual environments for the framework variants that cannot share the main one.

Each lives in `<base>/<name>` (base: --env-dir, else `envs/` in the cache root, `harness.paths`),
is created once with the interpreter running bench.py (`python -m venv`, then `pip install` of
its pinned requirements) and reused by every later run. A stamp file written after a successful
install records the requirements and the versions installed; an environment is ready only when its
stamp matches what the registry declares now, so a changed pin rebuilds it.

The harness deletes a folder only if it made it: an owner mark is written into a new environment's
folder before anything else, and a folder of that name without the mark (someone's own `mxnet/`
under a shared --env-dir) is refused, named, and left as it was.
"""
from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import subprocess
import sys
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from adapters import Environment, environment_of, missing_modules
from harness import lifeline
from harness.files import write_json
from harness.paths import cache_root

STAMP = "dlbench-env.json"
OWNER_MARK = ".dlbench-environment"  # written first into every folder the harness creates
ERROR_TAIL_LINES = 12
PIP_PROGRESS = ("Collecting", "Downloading", "Installing", "Successfully", "ERROR")


class EnvSetupError(RuntimeError):
    """An environment could not be created; the message ends with pip's last lines."""


@dataclass
class EnvStatus:
    name: str
    path: Path
    python: Path
    ready: bool
    problem: str = ""  # why it is not ready
    versions: dict[str, str] = field(default_factory=dict)


def base_dir(override: str | Path | None = None) -> Path:
    """Absolute: a relative --env-dir means the folder where the command was typed."""
    return Path(override).expanduser().absolute() if override else cache_root() / "envs"


def _made_by_us(path: Path) -> bool:
    """The folder holds the owner mark (or, from before the mark existed, a finished install's stamp)."""
    return (path / OWNER_MARK).is_file() or (path / STAMP).is_file()


def _foreign(path: Path) -> str | None:
    """Why the harness must not touch `path` (it exists and is not one of its environments), or None."""
    if not path.exists() and not path.is_symlink():
        return None
    if path.is_symlink() or not path.is_dir():
        return f"{path} exists and is not a folder the harness made"
    if _made_by_us(path) or not any(path.iterdir()):
        return None
    return (f"{path} holds files that the harness did not put there (no {OWNER_MARK} in it); it was left "
            f"untouched: move it away, or choose another --env-dir")


def _python(path: Path) -> Path:
    return path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _read_stamp(path: Path) -> dict | None:
    try:
        stamp = json.loads((path / STAMP).read_text())
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def status(env: Environment, base: Path) -> EnvStatus:
    path = base / env.name
    python = _python(path)
    stamp = _read_stamp(path)
    foreign = _foreign(path)
    if foreign:
        problem = f"not usable: {foreign}"
    elif stamp is None:
        problem = "not created" if not path.exists() else "incomplete (no finished install)"
    elif stamp.get("requirements") != list(env.requirements):
        problem = f"made for {', '.join(stamp.get('requirements', []))}; now pinned: {', '.join(env.requirements)}"
    elif stamp.get("python") != platform.python_version():
        problem = f"made with Python {stamp.get('python')}; bench.py runs {platform.python_version()}"
    elif not python.exists():
        problem = f"its interpreter {python} is missing"
    else:
        return EnvStatus(env.name, path, python, True, versions=stamp.get("versions", {}))
    return EnvStatus(env.name, path, python, False, problem, versions=(stamp or {}).get("versions", {}))


def _stream(cmd: list[str], log: Path, echo: Callable[[str], None]) -> tuple[int, list[str]]:
    """Run cmd, append its output to `log`, echo pip's progress lines, return (code, last lines)."""
    tail: deque[str] = deque(maxlen=ERROR_TAIL_LINES)
    with open(log, "a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        # Tied to this process: pip must not go on writing into an environment nobody waits for.
        proc = subprocess.Popen(lifeline.command(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                stdin=subprocess.DEVNULL)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                fh.write(line)
                line = line.rstrip()
                if not line:
                    continue
                tail.append(line)
                if line.lstrip().startswith(PIP_PROGRESS):
                    echo(line.strip())
            return proc.wait(), list(tail)
        finally:
            if proc.poll() is None:  # interrupted while pip ran
                proc.kill()
                proc.wait()


class _Lock:
    """An exclusive lock on `<base>/<name>.lock`, so that two runs never build one environment at once."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> "_Lock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "w")
        fcntl.flock(self.fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def setup(env: Environment, base: Path, echo: Callable[[str], None] = print) -> EnvStatus:
    """Create (or rebuild) the environment unless it is ready. Raises EnvSetupError."""
    with _Lock(base / f"{env.name}.lock"):
        current = status(env, base)
        if current.ready:
            return current
        foreign = _foreign(current.path)
        if foreign:
            raise EnvSetupError(foreign)
        log = base / f"{env.name}.install.log"
        log.write_text(f"# {datetime.now(timezone.utc).isoformat(timespec='seconds')} {env.name}: "
                       f"{current.problem}\n")
        if current.path.exists() and _made_by_us(current.path):
            echo(f"{env.name}: removing the old environment ({current.problem})")
            shutil.rmtree(current.path)
        current.path.mkdir(parents=True, exist_ok=True)
        (current.path / OWNER_MARK).write_text("made by dlbench (harness/envs.py); the harness may delete this folder\n")
        echo(f"{env.name}: creating {current.path} ({', '.join(env.requirements)}); log: {log}")
        steps = [
            [sys.executable, "-m", "venv", str(current.path)],
            [str(current.python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
             *env.requirements],
        ]
        for cmd in steps:
            code, tail = _stream(cmd, log, echo)
            if code != 0:
                raise EnvSetupError(f"{' '.join(cmd[:4])} ... failed with exit code {code}; last lines:\n"
                                    + "\n".join(tail))
        versions = installed_versions(current.python, env.key_packages)
        write_json(current.path / STAMP, {
            "name": env.name, "requirements": list(env.requirements), "python": platform.python_version(),
            "versions": versions, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        })
        echo(f"{env.name}: ready ({', '.join(f'{k} {v}' for k, v in versions.items())})")
        return status(env, base)


def installed_versions(python: Path, distributions: tuple[str, ...]) -> dict[str, str]:
    code = ("import importlib.metadata as m, json, sys\n"
            "out = {}\n"
            "for d in sys.argv[1:]:\n"
            "    try: out[d] = m.version(d)\n"
            "    except m.PackageNotFoundError: pass\n"
            "print(json.dumps(out))")
    result = subprocess.run([str(python), "-c", code, *distributions], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise EnvSetupError(f"{python} cannot report its packages: {result.stderr.strip()[-500:]}")
    return json.loads(result.stdout)


def needed(pairs: Iterator[tuple[str, str]] | list[tuple[str, str]]) -> list[Environment]:
    """The isolated environments these (framework, variant) pairs run in, each once, in order."""
    seen: dict[str, Environment] = {}
    for framework, variant in pairs:
        env = environment_of(framework, variant)
        if env is not None:
            seen.setdefault(env.name, env)
    return list(seen.values())


def interpreter(framework: str, variant: str, base: Path) -> str:
    """The Python that runs this variant's trials: its environment's, or the one running now."""
    env = environment_of(framework, variant)
    return sys.executable if env is None else str(_python(base / env.name))


def unavailable(framework: str, variant: str, base: Path) -> str | None:
    """Why this variant cannot run here (its isolated environment is not ready, or the main
    environment lacks its modules), or None."""
    env = environment_of(framework, variant)
    if env is not None:
        state = status(env, base)
        return None if state.ready else \
            f"environment {env.name} is {state.problem} in {state.path} (bench.py env setup {env.name})"
    missing = missing_modules(framework, variant)
    return f"{', '.join(missing)} not installed for {sys.executable}" if missing else None
