"""The Ray executor on a real Ray cluster on this machine's loopback: a head without CPUs and two
simulated one-CPU worker nodes (`ray.cluster_utils.Cluster`), driven by bench.py as a user runs it.

Every Ray process binds to 127.0.0.1 only (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 keeps Ray from
swapping in the machine's other address; no dashboard; no usage reports), and a test checks that
no connection of those processes leaves 127.0.0.0/8.
"""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, interpreter_or_skip

pytestmark = pytest.mark.alone  # the Ray run must take less time than the local one

ray = pytest.importorskip("ray")
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
NODE_ARGS = {"num_cpus": 1, "object_store_memory": 100 * 2**20, "include_dashboard": False}
FAKE_BENCH = str(ROOT / "tests" / "fake_bench.py")


def _env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, **RAY_ENV, "BENCH_DATA_DIR": str(data_dir)}


@pytest.fixture(scope="module")
def cluster():
    os.environ.update(RAY_ENV)
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False,
                                                      "node_ip_address": "127.0.0.1",
                                                      "object_store_memory": 100 * 2**20})
    nodes = [c.add_node(node_ip_address="127.0.0.1", **NODE_ARGS) for _ in range(2)]
    c.wait_for_nodes()
    session = Path(c.head_node.get_session_dir_path())
    try:
        yield c, nodes
    finally:
        c.shutdown()
        _wait_for_ray_processes_to_end()  # tests after these time trials on the same two cores
        shutil.rmtree(session, ignore_errors=True)


def _ray_processes() -> list:
    import psutil

    names = ("gcs_server", "raylet", "default_worker.py", "ray/_private", "dashboard/agent", "runtime_env/agent")
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if any(name in " ".join(proc.info["cmdline"] or []) for name in names):
            found.append(proc)
    return found


def _off_loopback(pids: set[int]) -> list:
    """Connections of these processes with an end outside 127.0.0.0/8, or listening on every address."""
    import psutil

    found = []
    for c in psutil.net_connections(kind="inet"):
        if c.pid not in pids:
            continue
        everywhere = c.status == "LISTEN" and c.laddr and c.laddr.ip in ("0.0.0.0", "::")
        if everywhere or (c.laddr and not _loopback(c.laddr.ip)) or (c.raddr and not _loopback(c.raddr.ip)):
            found.append(c)
    return found


class ConnectionWatch:
    """Samples, while a run goes on, the connections of the cluster's processes and of the driver
    (a process whose command line has `marker`) that leave the loopback."""

    def __init__(self, marker: str) -> None:
        self.marker, self.seen, self.samples = marker, [], 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        import psutil

        while not self._stop.wait(0.5):
            pids = {p.pid for p in _ray_processes()}
            pids |= {p.pid for p in psutil.process_iter(["cmdline"]) if self.marker in " ".join(p.info["cmdline"] or [])}
            self.seen += _off_loopback(pids)
            self.samples += 1

    def __enter__(self) -> "ConnectionWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _wait_for_ray_processes_to_end(timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while _ray_processes() and time.monotonic() < deadline:
        time.sleep(0.2)


def bench(args: list[str], data_dir: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, FAKE_BENCH, *args], cwd=ROOT, env=_env(data_dir), capture_output=True,
                          text=True, timeout=timeout)


def _run_dir(out: Path) -> Path:
    (run,) = [p for p in out.iterdir() if (p / "manifest.json").exists()]
    return run


def _records(run: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((run / "records").glob("*.json"))}


def _loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    return (getattr(ip, "ipv4_mapped", None) or ip).is_loopback


def test_without_a_cluster_it_says_how_to_start_one(tmp_path, data_dir):
    with socket.socket() as s:  # a port where no Ray head listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = bench(["run", "--executor", "ray", "--ray-address", f"127.0.0.1:{port}", "-f", "numpy", "-w", "xor",
                 "--profile", "smoke", "--threads", "1", "--out", str(tmp_path / "out")], data_dir, timeout=180)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert "cannot connect to a Ray cluster" in last and "ray start --head" in last
    assert not (tmp_path / "out").exists()  # nothing made, not even the output folder


def test_a_ray_run_gives_the_records_of_a_local_run_with_node_identity_in_less_time(cluster, tmp_path, data_dir):
    """Two one-core nodes, a one-thread smoke matrix (the NumPy and slow stand-ins and real PyTorch
    and JAX on XOR): the same trials, statuses and accuracies as the local executor, each record naming the
    node that ran it, in less wall time; the report lists the nodes and warns that the simulated
    nodes' trials overlapped on one host. No connection of the cluster leaves the loopback."""
    c, nodes = cluster
    interpreter_or_skip("pytorch", "default")
    interpreter_or_skip("jax", "default")
    # The slow stand-in (6 s of steps) gives the two nodes enough to share that the halving shows
    # past Ray's fixed costs (task start-up, each node's peak measured twice, one node at a time).
    matrix = ["-f", "numpy", "-f", "pytorch", "-f", "jax", "-f", "slow", "-w", "xor", "--profile", "smoke",
              "--threads", "1", "--repeats", "2"]
    started = time.monotonic()
    local = bench(["run", *matrix, "--out", str(tmp_path / "local")], data_dir)
    local_s = time.monotonic() - started
    assert local.returncode == 0, local.stderr[-3000:]
    started = time.monotonic()
    with ConnectionWatch(str(tmp_path / "ray")) as watch:
        remote = bench(["run", *matrix, "--executor", "ray", "--ray-address", c.address, "--out", str(tmp_path / "ray")],
                       data_dir)
    ray_s = time.monotonic() - started
    assert watch.samples > 5 and not watch.seen, watch.seen  # the driver and the cluster stayed on the loopback
    assert remote.returncode == 0, remote.stderr[-3000:]
    print(f"wall time, ray executor on 2 one-core nodes / local executor: {ray_s:.1f} s / {local_s:.1f} s "
          f"= {ray_s / local_s:.2f}")

    local_records, ray_records = _records(_run_dir(tmp_path / "local")), _records(_run_dir(tmp_path / "ray"))
    assert set(local_records) == set(ray_records)
    for trial_id, record in ray_records.items():
        mine = local_records[trial_id]
        assert (record["status"], record["final_test_accuracy"]) == (mine["status"], mine["final_test_accuracy"]), trial_id
        assert record["executor"] == "ray" and mine["executor"] == "local"
        assert record["node"]["node_id"] in {n.node_id for n in nodes}
        assert record["node"]["alias"].startswith("host-") and record["node"]["fingerprint"]
        assert record["settings"]["cpu_affinity"] and len(record["settings"]["cpu_affinity"]) == 1
    assert len({r["node"]["node_id"] for r in ray_records.values()}) == 2  # both nodes worked
    assert ray_s < local_s

    run = _run_dir(tmp_path / "ray")
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["options"]["executor"] == "ray"
    assert {n["identity"]["node_id"] for n in manifest["environment"]["nodes"].values()} == {n.node_id for n in nodes}
    assert all(n["matmul_peak"]["gflops"] > 0 for n in manifest["environment"]["nodes"].values())
    summary = (run / "summary.md").read_text()
    assert "executor ray: 2 node(s)" in summary and "the measured matmul rate of the node each trial ran on" in summary
    assert "ran at the same time as another on the same physical host" in summary
    assert "same physical host" not in (_run_dir(tmp_path / "local") / "summary.md").read_text()


def test_no_connection_of_the_cluster_leaves_the_loopback(cluster):
    """Also checked throughout a run (ConnectionWatch, in the test above); this is the idle cluster,
    and the check itself: a connection to another address is seen."""
    pids = {proc.pid for proc in _ray_processes()}
    assert pids and not _off_loopback(pids)
    with socket.socket() as outside:  # this test's own process, listening on every address: caught
        outside.bind(("0.0.0.0", 0))
        outside.listen()
        assert _off_loopback({os.getpid()})


def _slow_run_hit_midway(c, out: Path, data_dir: Path, settle_s: float, hit) -> tuple[subprocess.Popen, str]:
    """bench.py running two slow stand-in trials on the cluster; `settle_s` after its manifest is
    written (both nodes in their trial), `hit(proc)`; returns the process, ended, and its stderr."""
    proc = subprocess.Popen([sys.executable, FAKE_BENCH, "run", "-f", "slow", "-w", "xor", "--profile", "smoke",
                             "--threads", "1", "--repeats", "2", "--executor", "ray", "--ray-address", c.address,
                             "--out", str(out)], cwd=ROOT, env=_env(data_dir), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("*/manifest.json")) and time.monotonic() < deadline:
            time.sleep(0.2)
        # Both trials' children running (a node just added may take a while to start its workers),
        # then `settle_s` for them to time some blocks.
        runs = list(out.glob("*/manifest.json"))
        while runs and len(_ray_processes_of(runs[0].parent)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(settle_s)
        hit(proc)
        _, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    return proc, stderr


def test_a_lost_node_gives_node_lost_records_and_resume_measures_them_again(cluster, tmp_path, data_dir):
    c, nodes = cluster
    out = tmp_path / "run"
    try:
        proc, stderr = _slow_run_hit_midway(c, out, data_dir, 2, lambda proc: c.remove_node(nodes[1]))
    finally:
        nodes[1] = c.add_node(node_ip_address="127.0.0.1", **NODE_ARGS)  # for whatever runs after
        c.wait_for_nodes()
    assert proc.returncode == 1, stderr[-3000:]
    run = _run_dir(out)
    records = _records(run)
    lost = [r for r in records.values() if r["status"] == "error"]
    assert lost and all(r["reason"].startswith("node lost") for r in lost), [r["reason"] for r in lost]
    assert all(r["status"] == "ok" for r in records.values() if r not in lost)
    assert len(records) == 2

    again = bench(["run", "--resume", str(run)], data_dir)
    assert again.returncode == 0, again.stderr[-3000:]
    records = _records(run)
    assert all(r["status"] == "ok" for r in records.values())
    for r in lost:
        assert records[r["trial_id"]]["attempt"] == 2
        assert json.loads((run / "interrupted" / f"{r['trial_id']}.0.json").read_text())["reason"].startswith("node lost")


def test_ctrl_c_stops_the_trials_on_their_nodes_keeps_what_they_measured_and_resume_finishes(cluster, tmp_path,
                                                                                             data_dir):
    import signal

    c, _ = cluster
    out = tmp_path / "run"
    proc, stderr = _slow_run_hit_midway(c, out, data_dir, 2, lambda proc: proc.send_signal(signal.SIGINT))
    assert proc.returncode == 130, stderr[-3000:]
    assert "finish the run with: bench.py run --resume" in stderr
    run = _run_dir(out)
    records = _records(run)
    stopped = [r for r in records.values() if r["status"] == "interrupted"]
    assert len(stopped) == 2 and all(r["blocks"] for r in stopped)  # what they measured is kept
    assert all(r["node"] for r in stopped)
    assert not _ray_processes_of(run)  # no trial child left running on the nodes

    again = bench(["run", "--resume", str(run), "--ray-address", c.address], data_dir)  # where the cluster is now
    assert again.returncode == 0, again.stderr[-3000:]
    records = _records(run)
    assert len(records) == 2 and all(r["status"] == "ok" for r in records.values())
    assert sorted(r["attempt"] for r in records.values()) == [2, 2]


def _ray_processes_of(run: Path) -> list:
    """Trial children (harness.trial) of this run still alive."""
    import psutil

    return [p for p in psutil.process_iter(["cmdline"])
            if "harness.trial" in " ".join(p.info["cmdline"] or []) and run.name in " ".join(p.info["cmdline"] or [])]
