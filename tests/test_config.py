"""`--config FILE` and `[tool.dlbench]`: what a file sets, the precedence flag > environment > file >
default, one-line errors (exit 2) naming the key, the file and the allowed values, and a run
repeated from its manifest."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import bench
from tests.conftest import write_manifest

ROOT = Path(__file__).resolve().parent.parent


def options(argv: list[str]):
    return bench._options(bench.parse_args(argv))


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_file_sets_the_matrix_and_typed_flags_win(tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    toml = write(tmp_path / "bench.toml", """
[run]
framework = ["pytorch", "jax"]
workload = ["mnist_mlp"]
dataset = "fashion_mnist"
profile = "ci"
repeats = 3
threads = 1
timeout = 600
batch-size = [32, 64]
precision = ["fp32", "mixed-bf16"]
tf32 = true
record_hostnames = true
""")
    got = options(["run", "--config", str(toml)])
    assert (got.frameworks, got.workloads, got.dataset, got.profile, got.repeats, got.threads, got.timeout_s) == \
        (("pytorch", "jax"), ("mnist_mlp",), "fashion_mnist", "ci", 3, 1, 600.0)
    assert (got.batch_sizes, got.precisions, got.tf32, got.record_hostnames) == ((32, 64), ("fp32", "mixed-bf16"), True, True)
    # a typed flag replaces the file's value, a repeated flag the file's whole list
    got = options(["run", "--config", str(toml), "-f", "tensorflow", "--repeats", "1", "--precision", "fp32"])
    assert (got.frameworks, got.repeats, got.precisions, got.profile) == (("tensorflow",), 1, ("fp32",), "ci")
    # no file: the defaults
    got = options(["run"])
    assert (got.frameworks, got.profile, got.repeats, got.tf32) == ((), "quick", 1, False)


def test_precedence_flag_then_environment_then_file_then_default(tmp_path, monkeypatch):
    toml = write(tmp_path / "bench.toml", '[run]\ndata-dir = "from-file"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    assert options(["run"]).data_dir is None  # default
    assert options(["run", "--config", str(toml)]).data_dir == str(tmp_path / "from-file")  # file
    monkeypatch.setenv("BENCH_DATA_DIR", "from-env")
    assert options(["run", "--config", str(toml)]).data_dir == str(tmp_path / "from-env")  # environment over file
    assert options(["run", "--config", str(toml), "--data-dir", "from-flag"]).data_dir == str(tmp_path / "from-flag")


def test_a_projects_pyproject_table_is_read_from_the_current_folder(tmp_path, monkeypatch):
    write(tmp_path / "pyproject.toml", '[project]\nname = "mine"\n\n[tool.dlbench.run]\nprofile = "smoke"\n'
                                       'workload = ["xor"]\n\n[tool.dlbench.compare]\nthreshold = 7\n')
    monkeypatch.chdir(tmp_path)
    got = options(["run"])
    assert (got.profile, got.workloads) == ("smoke", ("xor",))
    assert bench.parse_args(["compare", "a", "b"]).threshold == 7.0
    assert bench.parse_args(["compare", "a", "b", "--threshold", "3"]).threshold == 3.0
    # --config replaces the project's table
    other = write(tmp_path / "other.toml", '[run]\nprofile = "ci"\n')
    assert options(["run", "--config", str(other)]).workloads == ()


@pytest.mark.parametrize("text, expected", [
    ('[run]\nframwork = ["pytorch"]\n', "bench.toml [run]: unknown key 'framwork'; allowed: autotune, batch-size"),
    ('[run]\nthreads = 0\n', "bench.toml [run]: threads: 0 is not allowed; use a whole number of 1 or more"),
    ('[run]\nprofile = "fast"\n', "bench.toml [run]: profile = 'fast' is not allowed; choose from: smoke, ci, quick, full"),
    ('[run]\nmalloc = "jemalloc"\n', "bench.toml [run]: malloc = 'jemalloc' is not allowed; choose from: default, steady"),
    ('[run]\nframework = ["pytorh"]\n', "bench.toml [run]: framework: unknown framework 'pytorh'"),
    ('[run]\nprecision = ["fp32", "fp8"]\n', "bench.toml [run]: precision: unknown precision 'fp8'; choose from: fp32"),
    ('[run]\nrecord-hostnames = "yes"\n', "bench.toml [run]: record-hostnames = 'yes': a switch takes true or false"),
    ('[run]\nresume = "x"\n', "bench.toml [run]: unknown key 'resume'"),
    ('[runn]\nprofile = "ci"\n', "bench.toml: unknown table 'runn' in the file; it holds one table per command: run, ab"),
    ('profile = "ci"\n', "bench.toml: unknown key 'profile' in the file; it holds one table per command"),
    ('[compare]\nmetric = ["speed"]\n', "bench.toml [compare]: metric: unknown metric 'speed'; choose from:"),
    ('[run\n', "bench.toml is not valid TOML"),
])
def test_a_bad_file_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, text, expected):
    write(tmp_path / "bench.toml", text)
    monkeypatch.chdir(tmp_path)
    command = ["compare", "a", "b"] if "[compare]" in text else ["run"]
    with pytest.raises(SystemExit) as exc:
        bench.parse_args(command + ["--config", "bench.toml"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err


def test_a_missing_config_file_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.parse_args(["run", "--config", str(tmp_path / "nope.toml")])
    assert exc.value.code == 2 and f"cannot read {tmp_path / 'nope.toml'}" in capsys.readouterr().err


def test_a_run_is_repeated_exactly_from_its_manifest(tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    kept = write_manifest(tmp_path / "run", frameworks=("pytorch", "jax"), workloads=("mnist_mlp", "xor"),
                          profile="ci", repeats=3, threads=1, data_dir="/data", timeout_s=900.0, seed=7,
                          batch_sizes=(32, 128), precisions=("fp32", "mixed-bf16"), tf32=True, autotune=False,
                          scenarios=("train", "infer"), malloc="steady").options
    for source in (tmp_path / "run" / "manifest.json", tmp_path / "run"):
        again = options(["run", "--config", str(source)])
        assert dataclasses.asdict(again) == dataclasses.asdict(kept)


def test_the_example_config_names_a_valid_matrix(monkeypatch):
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    got = options(["run", "--config", str(ROOT / "examples" / "ci.toml")])
    assert got.frameworks and got.workloads and got.profile == "ci"
    args = bench.parse_args(["compare", "a", "b", "--config", str(ROOT / "examples" / "ci.toml")])
    assert args.threshold is not None
