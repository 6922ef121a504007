"""Property: whatever a record, a manifest or a baseline on disk holds (truncated, garbage, a value
of the wrong type, a missing field, a number that makes no sense), every command that reads it
answers without a traceback: exit 0 (reading around it, with a warning naming it), 1 (a verdict)
or 2 (one line naming the file), and no file that was there before is changed or lost.

Hypothesis mutates real files: a key path into the JSON is given another value of its type (which
the type checks pass), any JSON value, or deleted, or the bytes are cut short or replaced by noise."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_faults import GOLDEN, SMOKE, cli, digest

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6)
EXAMPLES = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
                derandomize=True)


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every key path into a JSON value (the value itself included)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, prefix + (key,))
    elif isinstance(value, list):
        for index, inner in enumerate(value[:4]):
            found += _paths(inner, prefix + (index,))
    return found


def _same_type(value: object) -> st.SearchStrategy:
    """Another value of the same JSON type: what passes the type checks and must still make sense."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers(-10, 10**13) | st.sampled_from([0, -1, 1])
    if isinstance(value, float):
        return st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, -1.0, 1e-300, 1e300])
    if isinstance(value, str):
        return st.text(max_size=12) | st.sampled_from(["", "ok", "error", "interrupted", "<b>x</b>|y\n`z`"])
    if isinstance(value, list):
        return st.just(value[:1]) | st.just([]) | st.just(value + value)
    return st.just({})


@st.composite
def mutated(draw, original: bytes) -> bytes:
    how = draw(st.sampled_from(["tweak", "tweak", "tweak", "replace", "replace", "delete", "cut", "noise"]))
    if how == "cut":
        return original[:draw(st.integers(0, len(original) - 1))]
    if how == "noise":
        return draw(st.binary(max_size=64))
    data = json.loads(original)
    path = draw(st.sampled_from(_paths(data)[1:]))
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if how == "delete":
        del parent[path[-1]]
    elif how == "tweak":
        parent[path[-1]] = draw(_same_type(parent[path[-1]]))
    else:
        parent[path[-1]] = draw(JSON_VALUES)
    return json.dumps(data, allow_nan=True).encode()


def _assert_answered(code: int, err: str, files: list[Path]) -> None:
    assert code in (0, 1, 2), (code, err)
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("bench.py: error:")]
    assert len(errors) <= 1, err
    if code == 2:
        assert len(errors) == 1, err
        assert any(str(f) in errors[0] for f in files) or "nothing to report" in errors[0], errors[0]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A run (the golden one) and a baseline saved from it, to be copied and damaged."""
    root = tmp_path_factory.mktemp("hostile")
    shutil.copytree(GOLDEN, root / "run")
    code, _, err = cli("baseline", "save", str(root / "run"), "--name", "base", "--dir", str(root / "baselines"))
    assert code == 0, err
    return root


FILES = ["run/records/mnist_mlp.mnist.pytorch.default.r0.json", "run/records/mnist_mlp.mnist.keras.torch.r0.json",
         "run/manifest.json", "baselines/base.json"]


@settings(max_examples=1500, **EXAMPLES)
@given(data=st.data())
def test_every_reader_answers_any_damaged_file_in_one_line(workspace, tmp_path_factory, data):
    work = tmp_path_factory.mktemp("case")
    shutil.copytree(workspace, work, dirs_exist_ok=True)
    target = work / data.draw(st.sampled_from(FILES), label="file")
    target.write_bytes(data.draw(mutated(target.read_bytes()), label="contents"))
    before = digest(work)
    run, base = work / "run", work / "baselines" / "base.json"
    commands = [["report", str(run), "--format", "md,csv,json", "--out", str(work / "report")],
                ["baseline", "save", str(run), "--name", "again", "--dir", str(work / "saved")],
                ["compare", str(base), str(run)], ["compare", str(run), str(base)],
                ["export", str(base), "--github-action-benchmark", str(work / "gab")],
                ["history", str(work), "--format", "md"]]
    for args in commands:
        code, _, err = cli(*args)
        _assert_answered(code, err, [target])
    after = digest(work)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing that was there changed


@settings(max_examples=60, **EXAMPLES)
@given(data=st.data())
def test_the_html_report_draws_any_record_that_passes_validation(workspace, tmp_path_factory, data):
    work = tmp_path_factory.mktemp("html")
    shutil.copytree(workspace / "run", work / "run")
    target = work / data.draw(st.sampled_from(FILES[:2]), label="file")
    target.write_bytes(data.draw(mutated(target.read_bytes()), label="contents"))
    code, _, err = cli("report", str(work / "run"), "--format", "html", "--out", str(work / "report"))
    _assert_answered(code, err, [target])
    assert (work / "report" / "report.html").exists()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished run of the NumPy stand-in (tests/fake_bench.py), to be damaged and resumed."""
    from adapters import FRAMEWORKS
    from tests.fake_bench import FAKES, register

    register()
    out = tmp_path_factory.mktemp("finished")
    try:
        code, _, err = cli("run", "-f", "numpy", *SMOKE, "--threads", "1", "--out", str(out))
    finally:
        for name in FAKES:
            FRAMEWORKS.pop(name, None)
    assert code == 0, err
    (run,) = out.iterdir()
    return run


@settings(max_examples=150, **EXAMPLES)
@given(data=st.data())
def test_resume_answers_any_damaged_manifest_or_record_and_loses_no_record(fakes, finished_run, tmp_path_factory,
                                                                           data):
    run = tmp_path_factory.mktemp("resume") / "run"
    shutil.copytree(finished_run, run)
    target = run / data.draw(st.sampled_from(["manifest.json", "records/xor.xor.numpy.default.r0.json"]), label="file")
    target.write_bytes(data.draw(mutated(target.read_bytes()), label="contents"))
    record_bytes = (run / "records" / "xor.xor.numpy.default.r0.json").read_bytes()
    code, _, err = cli("run", "--resume", str(run))
    _assert_answered(code, err, [target, run])
    kept = [p.read_bytes() for p in run.rglob("*.json") if p.parent.name in ("records", "interrupted")]
    assert record_bytes in kept  # set aside at most, never lost


def test_a_record_whose_times_are_not_iso_8601_is_named_as_damaged(tmp_path):
    """Found by the resume test above: a record with `"started_at": "0"` passed validation and then
    crashed the report's overlap check."""
    from harness.files import BadFile
    from harness.schema import load_record

    source = next((GOLDEN / "records").glob("*.json"))
    record = json.loads(source.read_text())
    record["started_at"] = "0"
    path = tmp_path / source.name
    path.write_text(json.dumps(record))
    with pytest.raises(BadFile, match=r"field started_at is '0'; expected an ISO 8601 time"):
        load_record(path)
