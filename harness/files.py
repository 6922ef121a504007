"""Writing files so that nothing already there is lost: every output is written to a temporary
file beside its target and renamed into place (a full disk or a kill leaves the old file, never a
truncated one), and a write that must not replace anything refuses instead.

Standard library only: this runs in every child environment.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


_UMASK = os.umask(0o022)
os.umask(_UMASK)


class BadFile(ValueError):
    """A file the harness read is not what it should be; the message names the file and the field."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = Path(path), problem


class WouldOverwrite(FileExistsError):
    """The target exists and the caller did not allow replacing it."""

    def __init__(self, path: str | Path, hint: str = "") -> None:
        super().__init__(f"{path} already exists" + (f"; {hint}" if hint else ""))
        self.path = Path(path)


def write_atomic(path: str | Path, fill: Callable[[Any], None], overwrite: bool = True, binary: bool = False) -> Path:
    """Create `path` with what `fill(file object)` writes, atomically. With overwrite=False an
    existing file is never replaced (WouldOverwrite), even by a writer racing this one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite and path.exists():
        raise WouldOverwrite(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # as open() would make it, not mkstemp's private 0600
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
            fill(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if the target appeared meanwhile
            except FileExistsError:
                raise WouldOverwrite(path) from None
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text(path: str | Path, text: str, overwrite: bool = True) -> Path:
    return write_atomic(path, lambda fh: fh.write(text), overwrite)


def write_bytes(path: str | Path, data: bytes, overwrite: bool = True) -> Path:
    return write_atomic(path, lambda fh: fh.write(data), overwrite, binary=True)


def write_json(path: str | Path, data: Any, overwrite: bool = True) -> Path:
    """JSON, atomically; a value that is not finite is written as null (strict JSON for every reader)."""
    text = json.dumps(_finite(data), indent=1, allow_nan=False) + "\n"
    return write_text(path, text, overwrite)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def check_writable(folder: str | Path) -> None:
    """Make `folder` (and its parents) and prove a file can be created in it; raises OSError.
    Called before any slow preparation, so that an unwritable output is found in a second."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".write-test-")
    os.close(fd)
    os.unlink(tmp)


def describe_os_error(exc: OSError) -> str:
    """`No space left on device` rather than `[Errno 28] ...: '/path'` (the caller names the path)."""
    return exc.strerror or str(exc)
