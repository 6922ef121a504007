"""Scratch folders (a trial's cold caches, a Ray node's trial folder, a probe's files) that never pile up.

Each is removed by its owner when the work ends. An owner killed outright (SIGKILL, a Ray worker
taken down with its node, an out-of-memory kill) cannot remove its folder, so the folder's name
carries the owner's pid, and making a new scratch folder first removes those of owners that are
gone. Only this user's folders with this prefix are touched.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

PREFIX = "dlbench-"
_NAME = re.compile(rf"^{PREFIX}[a-z]+-(\d+)-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        pass
    return True


def sweep(root: Path | None = None) -> list[Path]:
    """Remove the scratch folders under `root` (the temp dir) whose owner process is gone; returns them."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for path in entries:
        match = _NAME.match(path.name)
        if not match or int(match.group(1)) == os.getpid() or _alive(int(match.group(1))):
            continue
        try:
            if path.is_dir() and not path.is_symlink() and path.stat().st_uid == os.getuid():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        except OSError:
            continue
    return removed


def make(kind: str, label: str = "", root: Path | None = None) -> Path:
    """A new scratch folder `dlbench-<kind>-<pid>-<label>-<random suffix from mkdtemp>`, after
    sweeping the orphaned ones."""
    sweep(root)
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-{os.getpid()}-{label + '-' if label else ''}",
                                 dir=root))


@contextlib.contextmanager
def folder(kind: str, label: str = "") -> Iterator[Path]:
    """`make`, removed when the block ends."""
    path = make(kind, label)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
