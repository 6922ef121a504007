"""Where dlbench's own files live: the project's code, the results it writes, the caches it keeps.

- Results (runs, A/B folders, baselines, reports) go under `./results/` of the folder the command
  is typed in, never into the installed code.
- Caches (datasets, the isolated environments, the code copy below) share one root:
  `$BENCH_CACHE_DIR`, else `$XDG_CACHE_HOME/dlbench`, else `~/.cache/dlbench`.
- Children run the project's code with `PYTHONPATH` set to a folder that holds only dlbench's child
  packages. In a source tree (a clone, an editable install) that is the tree itself. In an install
  into site-packages it cannot be site-packages: that would put the main environment's NumPy in
  front of the MXNet and Theano environments' NumPy < 1.24, so the packages are copied once per
  version of their contents into the cache.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR_VAR = "BENCH_CACHE_DIR"
RESULTS_DIR = Path("results")  # relative: under the folder the command is typed in
CHILD_PACKAGES = ("adapters", "harness", "workloads")  # what a trial or probe process imports
# The command as the user typed it, for the commands messages suggest: the installed console script
# or the script in a clone.
PROGRAM = "dlbench" if Path(sys.argv[0]).name == "dlbench" else "bench.py"


def cache_root() -> Path:
    """The one root of every cache, absolute."""
    chosen = os.environ.get(CACHE_DIR_VAR)
    if chosen:
        return Path(chosen).expanduser().absolute()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser().absolute() / "dlbench"


def is_source_tree(root: Path | None = None) -> bool:
    """A clone or an editable install: the project's own folder, not a shared site-packages."""
    return ((root or PROJECT_ROOT) / "pyproject.toml").is_file()


def _child_files(root: Path) -> list[Path]:
    return sorted(p for package in CHILD_PACKAGES for p in (root / package).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


@lru_cache(maxsize=None)
def child_code_root() -> Path:
    """The folder to run children from (their cwd and PYTHONPATH); see the module's docstring."""
    if is_source_tree():
        return PROJECT_ROOT
    files = _child_files(PROJECT_ROOT)
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(PROJECT_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    target = cache_root() / "code" / digest.hexdigest()[:16]
    if (target / "adapters" / "__init__.py").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
    try:
        for path in files:
            dest = staging / path.relative_to(PROJECT_ROOT)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
        try:
            staging.rename(target)  # whole or not at all; another process may have won the race
        except OSError:
            if not (target / "adapters" / "__init__.py").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
