"""Reading back the JSON files the harness and its users keep (trial records, run manifests,
baselines), validated.

A file on disk may be truncated, edited by hand, written by another version or not ours at all.
Each is parsed against the type hints of the dataclass (or TypedDict) it holds, strictly (pydantic:
no "3" for 3, no null for a string, no "fast" for a list of blocks), and then checked for values
that make no sense (an unknown status, a block of 0 seconds). A bad file is answered by one
`BadFile` naming the file and the field, never by a traceback further on.
Parent side only: pydantic is not installed in the isolated framework environments.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, TypeVar

from harness.files import BadFile, describe_os_error
from harness.record import SCHEMA_VERSION, TrialRecord

T = TypeVar("T")
SHOWN_INPUT_CHARS = 40


@lru_cache(maxsize=None)
def _adapter(kind: Any) -> Any:
    # Imported here: modules that import this one also run in the isolated environments (as part of
    # tools that import the harness there), which have no pydantic and never read a file back.
    from pydantic import TypeAdapter

    return TypeAdapter(kind)


def field_path(loc: tuple) -> str:
    """('blocks', 0, 'steps') -> 'blocks[0].steps'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_INPUT_CHARS else text[:SHOWN_INPUT_CHARS - 3] + "..."


def _describe(exc: Any, what: str) -> str:
    """One line from a pydantic ValidationError: the first problem, its field and what was found."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    if first["type"] == "json_invalid":
        detail = first.get("ctx", {}).get("error", first["msg"])
        return "is empty" if not first.get("input") else f"is not valid JSON ({detail})"
    if not first["loc"]:
        return f"is not {what}: expected a JSON object, found {_shown(first.get('input'))}"
    where = field_path(first["loc"])
    if first["type"] == "missing":
        return f"field {where} is missing{more}"
    return f"field {where}: {first['msg'].lower()} (found {_shown(first.get('input'))}){more}"


def _version_problem(raw: bytes, field: str, expected: int) -> str | None:
    """Why a file that failed validation is of another schema version, if that is why."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(data, dict) and field in data and data[field] != expected:
        return f"field {field} is {_shown(data[field])}; this version of dlbench reads {expected}"
    return None


def load(path: str | Path, kind: type[T], what: str, check: Callable[[T], str | None] | None = None,
         version: tuple[str, int] | None = None, raw: bytes | None = None) -> T:
    """The file at `path` (or its contents `raw`) as a `kind`; raises BadFile. `what`: how the
    file is called in messages ("a trial record"); `check(value)` names a value that makes no sense;
    `version`: (field, the version this code reads), reported first when it differs."""
    if raw is None:
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise BadFile(path, f"cannot be read ({describe_os_error(exc)})") from None
    from pydantic import ValidationError

    try:
        value = _adapter(kind).validate_json(raw, strict=True)
    except ValidationError as exc:
        problem = _version_problem(raw, *version) if version else None
        raise BadFile(path, problem or _describe(exc, what)) from None
    problem = check(value) if check else None
    if problem:
        raise BadFile(path, problem)
    return value


def load_record(path: str | Path) -> TrialRecord:
    """A trial record; raises BadFile naming the file and the field."""
    return load(path, TrialRecord, "a trial record", TrialRecord.problem, ("schema_version", SCHEMA_VERSION))
