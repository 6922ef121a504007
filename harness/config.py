"""Command options from a file: `--config FILE` (TOML, or a run's manifest.json), else a
`[tool.dlbench]` table in ./pyproject.toml.

A file holds one table per command (`[run]`, `[ab]`, `[compare]`; in pyproject.toml
`[tool.dlbench.run]` ...), its keys the command's long options (`batch-size` or `batch_size`),
its values what the flag takes (a list where the flag repeats or takes a comma list, true/false
for a switch). Each value goes through the flag's own checks, so a bad one reads like the flag's
message. Precedence: a flag typed on the command line > an environment variable that sets the same
thing (`BENCH_DATA_DIR` for data-dir) > the file > the default.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Any, Callable

from harness import schema
from harness.files import BadFile
from harness.rundir import Manifest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

COMMANDS = ("run", "ab", "compare")  # the commands a file can configure
ENVIRONMENT = {"data-dir": "BENCH_DATA_DIR"}  # keys an environment variable also sets (it wins over the file)
NOT_IN_FILES = ("config", "help", "resume")
# A run's manifest stores its resolved options (harness.plan.RunOptions) under these names.
MANIFEST_KEYS = {"frameworks": "framework", "workloads": "workload", "dataset": "dataset", "profile": "profile",
                 "device": "device", "threads": "threads", "seed": "seed", "repeats": "repeats",
                 "data_dir": "data-dir", "timeout_s": "timeout", "executor": "executor",
                 "ray_address": "ray-address", "trials_per_node": "trials-per-node",
                 "record_hostnames": "record-hostnames", "scenarios": "scenario", "batch_sizes": "batch-size",
                 "widths": "width", "precisions": "precision", "tf32": "tf32", "autotune": "autotune",
                 "malloc": "malloc", "budget_s": "budget"}


class ConfigError(Exception):
    """One line that names the file, the key and what is allowed."""


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def _from_manifest(path: Path) -> dict[str, dict]:
    """The run table of a manifest's resolved options, read through the manifest's own schema."""
    try:
        manifest = schema.load(path, Manifest, "a run manifest", Manifest.problem)
    except BadFile as exc:
        raise ConfigError(f"{exc}; give a TOML file or a run directory's manifest.json") from None
    options = dataclasses.asdict(manifest.options)
    return {"run": {MANIFEST_KEYS[k]: list(v) if isinstance(v, tuple) else v for k, v in options.items()
                    if k in MANIFEST_KEYS and v is not None and v != ()}}


def load(path: Path | None, cwd: Path) -> tuple[dict[str, dict], str]:
    """The tables of `path` (or of ./pyproject.toml's [tool.dlbench]) and the name to quote in errors."""
    if path is None:
        project = cwd / "pyproject.toml"
        if not project.is_file():
            return {}, ""
        tables = _read_toml(project).get("tool", {}).get("dlbench")
        if tables is None:
            return {}, ""
        source, where = str(project), "[tool.dlbench]"
    elif path.is_dir() and (path / "manifest.json").is_file():
        return _from_manifest(path / "manifest.json"), str(path / "manifest.json")
    elif path.suffix == ".json":
        return _from_manifest(path), str(path)
    else:
        tables, source, where = _read_toml(path), str(path), "the file"
    if not isinstance(tables, dict):
        raise ConfigError(f"{source}: {where} must be a table of commands ({', '.join(COMMANDS)})")
    for name, table in tables.items():
        if name not in COMMANDS or not isinstance(table, dict):
            raise ConfigError(f"{source}: unknown {'table' if isinstance(table, dict) else 'key'} {name!r} in "
                              f"{where}; it holds one table per command: {', '.join(COMMANDS)}")
    return tables, source


def _flag_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The command's long options by name, without the leading dashes."""
    return {opt[2:]: action for action in parser._actions for opt in action.option_strings
            if opt.startswith("--") and opt[2:] not in NOT_IN_FILES}


def _convert(action: argparse.Action, key: str, value: Any, where: str) -> Any:
    def one(item: Any) -> Any:
        if isinstance(item, bool) and action.choices and set(action.choices) >= {"on", "off"}:
            item = "on" if item else "off"
        if isinstance(item, (list, dict, bool)) or item is None:
            raise ConfigError(f"{where}: {key} = {value!r} is not a value of --{key}")
        text = str(item)
        try:
            converted = action.type(text) if callable(action.type) else text
        except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
            raise ConfigError(f"{where}: {key}: {exc}") from None
        if action.choices is not None and converted not in action.choices:
            raise ConfigError(f"{where}: {key} = {item!r} is not allowed; choose from: "
                              f"{', '.join(map(str, action.choices))}")
        return converted

    if action.nargs == 0:  # a switch: store_true
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {key} = {value!r}: a switch takes true or false")
        return value
    if isinstance(action, argparse._AppendAction):
        return [one(item) for item in (value if isinstance(value, list) else [value])]
    if isinstance(value, list):  # a comma list: --batch-size 32,64, --precision fp32,bf16
        value = ",".join(str(item) for item in value)
    return one(value)


def apply(args: argparse.Namespace, command_parser: argparse.ArgumentParser, table: dict, typed: set[str],
          source: str, command: str) -> dict[str, str]:
    """Set on `args` each option of `table` that was not typed (`typed`: dests given as flags) and
    that no environment variable sets. Returns where each option set from the file came from."""
    where = f"{source} [{command}]"
    actions = _flag_actions(command_parser)
    applied = {}
    for raw_key, value in table.items():
        key = raw_key.replace("_", "-")
        action = actions.get(key)
        if action is None:
            raise ConfigError(f"{where}: unknown key {raw_key!r}; allowed: {', '.join(sorted(actions))}")
        converted = _convert(action, key, value, where)
        if action.dest in typed or os.environ.get(ENVIRONMENT.get(key, "")):
            continue
        setattr(args, action.dest, converted)
        applied[key] = source
    return applied


def typed_options(build_parser: Callable[[], argparse.ArgumentParser], argv: list[str]) -> set[str]:
    """The dests given on the command line: `argv` parsed by a parser whose defaults are all
    suppressed, so only typed options land in the namespace."""
    parser = build_parser()
    stack = [parser]
    while stack:
        current = stack.pop()
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
            elif action.dest != "help":
                action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def command_parser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[command]
    raise KeyError(command)
