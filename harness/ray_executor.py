"""The Ray executor: a run's trials on the nodes of a Ray cluster, each still in its own process.

Every node runs the project from the same path as the driver, set up the same way (README). Before
any timed trial, each node is prepared by a task pinned to it: its identity (`harness.node`), the
project's commit there, the datasets verified by SHA-256 in its own cache (shipped from the driver
where missing), its isolated environments, and its own matmul peak (efficiency is computed against
the peak of the node a trial ran on). Then each trial is a task pinned to a node that launches the
ordinary trial child there (`harness.launch`) and returns its record and log to the driver, which
writes the run directory exactly as a local run does.

Fair placement: by default one trial per node at a time, and the trial's task takes all of the
node's logical CPUs, so that Ray itself keeps other tasks off the node; with `trials_per_node` N,
N trials share a node, taking 1/N of its CPUs each. Every trial is pinned to `threads` cores of its
host that no other trial of the run holds (simulated nodes share one host's cores). CUDA
trials go to nodes with a GPU and ask Ray for one. A trial whose node leaves the cluster becomes an
`error` record starting "node lost"; `--resume` measures it again (as attempt 2, on whichever node
is free). No task is retried by Ray: a retry would silently replace a measurement.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report leaves the cluster

import ray  # noqa: E402
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # noqa: E402

from adapters import environment_of  # noqa: E402
from harness import environment, envs, prepare, schema, scratch  # noqa: E402
from harness.environment import git_commit  # noqa: E402
from harness.paths import PROJECT_ROOT  # noqa: E402
from harness.executor import Executor, run_one  # noqa: E402
from harness.launch import TERM_GRACE_S  # noqa: E402
from harness.node import identify  # noqa: E402
from harness.peak import matmul_peak  # noqa: E402
from harness.plan import RunOptions  # noqa: E402
from harness.prepare import RunError  # noqa: E402
from harness.record import NODE_LOST, Placement, TrialRecord, TrialSpec  # noqa: E402
from harness.rundir import MatmulPeak, NodeEnvironment, RunDir, RunEnvironment  # noqa: E402
from harness.threads import usable_cores  # noqa: E402
from workloads import datasets  # noqa: E402

log = logging.getLogger("harness.ray")
POLL_S = 1.0
CONNECT_TIMEOUT_S = 5.0
HOW_TO_START = ("start one with `ray start --head --node-ip-address=127.0.0.1 --port=6379 --include-dashboard=false` "
                "(and on each other node: `ray start --address=HEAD_IP:6379`), then pass --ray-address 127.0.0.1:6379 "
                "(or HEAD_IP:6379); see the README's Ray section")


# ---- on the nodes -------------------------------------------------------------------------------

def _prepare_node(request: dict) -> dict:
    """A node's preparation, on that node: who it is, its commit, which datasets it lacks and its
    isolated environments (its matmul peak is measured apart: `RayExecutor._peaks`)."""
    trials = [TrialSpec.from_dict(t) for t in request["trials"]]
    identity = identify(ray.get_runtime_context().get_node_id(), request["record_hostnames"])
    missing = []
    for name in request["datasets"]:
        try:
            datasets.load(name, data_dir=request["data_dir"], cache_dir=request["cache_dir"], download=False)
        except datasets.DatasetError:
            missing.append(name)
    problems = prepare.prepare_environments(trials, Path(request["env_base"]), request["create_envs"])
    return {"identity": identity, "commit": git_commit().commit, "missing": missing, "problems": problems,
            "cores": usable_cores()}


def _store_dataset(name: str, parts: dict[str, bytes], cache_dir: str | None, data_dir: str | None) -> None:
    datasets.store(name, parts, cache_dir)
    datasets.load(name, data_dir=data_dir, cache_dir=cache_dir, download=False)


def _node_peak(threads: int, cores: list[int]) -> dict:
    """The node's matmul peak on `threads` of its cores (the ones its trials are pinned to first)."""
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, cores[:threads])
        return matmul_peak(threads)
    finally:
        os.sched_setaffinity(0, before)


def _run_trial(trial_data: dict, run_id: str, env_base: str, placement: Placement, cores: list[int]) -> dict:
    """One trial on this node: the ordinary child process in a scratch run directory, on `cores`
    (the driver's choice: no other trial of the run holds them); returns its record and log."""
    trial = TrialSpec.from_dict(trial_data)
    folder = scratch.make("ray", trial.trial_id)
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, cores)  # the speed probe and the child (which pins within them) use these
        run = RunDir(folder / run_id)
        run.path.mkdir(parents=True)
        python = envs.interpreter(trial.framework, trial.variant, Path(env_base))
        try:
            record = run_one(run, trial, None, python, placement=placement)
        except KeyboardInterrupt:  # the driver cancelled the task: the child was stopped and recorded
            record = schema.load_record(run.record_path(trial.trial_id))
        log_path = run.log_path(trial.trial_id)
        return {"record": record.to_dict(), "log": log_path.read_text(errors="replace") if log_path.exists() else ""}
    finally:
        os.sched_setaffinity(0, before)
        shutil.rmtree(folder, ignore_errors=True)


# ---- on the driver -------------------------------------------------------------------------------

@dataclass
class Node:
    """A node the run may use, and its free trial slots."""
    node_id: str
    cpus: float
    gpus: float
    env: NodeEnvironment
    cores: list[int]
    free: list[int] = field(default_factory=list)

    @property
    def alias(self) -> str:
        return self.env.identity.alias


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.nodes: dict[str, Node] = {}
        self.excluded: dict[str, str] = {}  # node id -> why the run does not use it
        self.free_cores: dict[str, list[int]] = {}  # host id -> cores no trial in flight holds
        self._connect(options.ray_address)

    def _connect(self, address: str | None) -> None:
        if ray.is_initialized():
            return
        target = _reachable(address or "auto")
        try:
            ray.init(address=target, logging_level=logging.WARNING, log_to_driver=False,
                     job_config=ray.job_config.JobConfig(code_search_path=[str(PROJECT_ROOT)]))
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RunError(f"--executor ray: cannot connect to a Ray cluster at {target} ({_first_line(exc)}); "
                           f"{HOW_TO_START}") from None

    def close(self) -> None:
        if ray.is_initialized():
            ray.shutdown()

    # -- preparation --

    def _alive(self) -> dict[str, dict]:
        return {n["NodeID"]: n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= 1}

    def prepare(self, options: RunOptions, trials: list[TrialSpec], base: Path, create_envs: bool) -> dict[str, str]:
        prepare.check_data(options, trials)  # the driver ships datasets from its own copy
        alive = self._alive()
        if not alive:
            raise RunError(f"--executor ray: the cluster has no node with a CPU to run trials on; {HOW_TO_START}")
        request = {"trials": [t.__dict__ for t in trials], "datasets": prepare.needed_datasets(trials),
                   "data_dir": options.data_dir, "cache_dir": options.cache_dir, "env_base": str(base),
                   "create_envs": create_envs, "threads": options.threads,
                   "record_hostnames": options.record_hostnames}
        log.info("preparing %d Ray node%s (identity, datasets, environments, matmul peak)", len(alive),
                 "s" if len(alive) > 1 else "")
        task = ray.remote(max_retries=0)(_prepare_node)
        refs = {node_id: task.options(scheduling_strategy=self._on(node_id), num_cpus=0).remote(request)
                for node_id in alive}
        commit = git_commit().commit
        for node_id, ref in refs.items():
            try:
                info = ray.get(ref)
            except ray.exceptions.RayError as exc:
                self.excluded[node_id] = f"its preparation failed: {_first_line(exc)}"
                continue
            try:
                for name in info["missing"]:
                    log.info("node %s lacks %s; shipping it from the driver", info["identity"].alias, name)
                    parts = datasets.payloads(name, options.data_dir, options.cache_dir)
                    ray.get(ray.remote(max_retries=0)(_store_dataset).options(
                        scheduling_strategy=self._on(node_id), num_cpus=0).remote(name, parts, options.cache_dir,
                                                                                   options.data_dir))
            except ray.exceptions.RayError as exc:
                self.excluded[node_id] = f"the datasets could not be stored there: {_first_line(exc)}"
                continue
            env = NodeEnvironment(identity=info["identity"], commit=info["commit"], problems=info["problems"])
            needed = options.threads * options.trials_per_node
            if commit and info["commit"] != commit:
                self.excluded[node_id] = (f"it has the project at commit {str(info['commit'])[:10]}, the driver "
                                          f"{commit[:10]}; check out the same commit there")
            elif len(info["cores"]) < needed:
                self.excluded[node_id] = (f"it has {len(info['cores'])} usable cores; {options.trials_per_node} "
                                          f"trial(s) of {options.threads} thread(s) need {needed}")
            else:
                resources = alive[node_id]["Resources"]
                self.nodes[node_id] = Node(node_id, resources.get("CPU", 0), resources.get("GPU", 0), env,
                                           info["cores"], list(range(options.trials_per_node)))
        for node_id, why in self.excluded.items():
            log.warning("Ray node %s is not used: %s", node_id[:12], why)
        if not self.nodes:
            raise RunError("--executor ray: no node of the cluster can run this run's trials: "
                           + "; ".join(f"{k[:12]}: {v}" for k, v in self.excluded.items()))
        self.free_cores = {}
        for node in self.nodes.values():
            self.free_cores.setdefault(node.env.identity.host_id, list(node.cores))
        for node_id, peak in self._peaks(options.threads).items():
            node = self.nodes[node_id]
            node.env = dataclasses.replace(node.env, matmul_peak=MatmulPeak(**peak))
        return {}  # environment problems are per node: see `_why_not`

    def _peaks(self, threads: int) -> dict[str, dict]:
        """Every node's matmul peak; nodes that share a host one after another (at once, they
        would share its cores and each measure less), hosts in parallel."""
        hosts: dict[str, list[Node]] = {}
        for node in self.nodes.values():
            hosts.setdefault(node.env.identity.host_id, []).append(node)
        task = ray.remote(max_retries=0)(_node_peak)
        peaks: dict[str, dict] = {}
        while any(hosts.values()):
            batch = [group.pop(0) for group in hosts.values() if group]
            refs = {node.node_id: task.options(scheduling_strategy=self._on(node.node_id), num_cpus=0).remote(
                threads, node.cores) for node in batch}
            for node_id, ref in refs.items():
                try:
                    peaks[node_id] = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    log.warning("node %s: no matmul peak (%s)", self.nodes[node_id].alias, _first_line(exc))
        return peaks

    def describe(self, options: RunOptions, trials: list[TrialSpec], base: Path) -> RunEnvironment:
        """The driver's machine (its own peak is not a yardstick: no trial runs there unless it is
        also a node) and every node's environment."""
        described = environment.describe(options.threads)
        return dataclasses.replace(described, isolated_environments=prepare.isolated_environments(trials, base),
                                   nodes={n.node_id: n.env for n in self.nodes.values()})

    # -- trials --

    @staticmethod
    def _on(node_id: str) -> NodeAffinitySchedulingStrategy:
        return NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)

    def _why_not(self, trial: TrialSpec, node: Node) -> str | None:
        """Why `trial` cannot run on `node`, or None."""
        if trial.device == "cuda" and node.gpus < 1:
            return f"node {node.alias} has no GPU"
        env = environment_of(trial.framework, trial.variant)
        return node.env.problems.get(env.name) if env is not None else None

    def _skip_reason(self, trial: TrialSpec) -> str | None:
        """Why no node of the run can take `trial` at all (it becomes `skipped`), or None."""
        reasons = [self._why_not(trial, node) for node in self.nodes.values()]
        return None if any(r is None for r in reasons) else "; ".join(dict.fromkeys(r for r in reasons if r))

    def execute(self, run_dir: RunDir, trials: list[TrialSpec], problems: dict[str, str], base: Path) -> list[TrialRecord]:
        per_node = self.options.trials_per_node
        log.info("run %s: %d trials on %d Ray node%s (%d at a time per node) -> %s", run_dir.run_id, len(trials),
                 len(self.nodes), "s" if len(self.nodes) > 1 else "", per_node, run_dir.path)
        task = ray.remote(max_retries=0)(_run_trial)
        pending, records = deque(trials), []
        inflight: dict[ray.ObjectRef, tuple[TrialSpec, Node, int, list[int]]] = {}  # trial, node, slot, cores
        try:
            while pending or inflight:
                while pending:
                    trial = pending[0]
                    reason = self._skip_reason(trial) if self.nodes else (
                        f"{NODE_LOST}: no node of the Ray cluster is left to run it")
                    if reason:
                        pending.popleft()
                        status = "error" if reason.startswith(NODE_LOST) else "skipped"
                        records.append(self._write(run_dir, TrialRecord.not_run(trial, run_dir.run_id, status, reason)
                                                   .place(self._placement(run_dir, trial, None))))
                        continue
                    node = next((n for n in self.nodes.values() if n.free and self._why_not(trial, n) is None
                                 and len(self._free_cores(n)) >= trial.threads), None)
                    if node is None:
                        break  # in order: the next trial waits for a free node that can take it
                    pending.popleft()
                    slot = node.free.pop(0)
                    cores = self._take_cores(node, trial.threads)
                    ref = task.options(scheduling_strategy=self._on(node.node_id), num_cpus=max(int(node.cpus // per_node), 1),
                                       num_gpus=1 if trial.device == "cuda" else 0).remote(
                        trial.__dict__, run_dir.run_id, str(base), self._placement(run_dir, trial, node), cores)
                    inflight[ref] = (trial, node, slot, cores)
                    log.info("%s %s %s -> node %s", trial.label, trial.point, trial.dataset, node.alias)
                if not inflight:  # nothing to wait for, yet a trial waits: a node is on its way out
                    time.sleep(POLL_S)
                    self._forget_lost_nodes(inflight)
                    continue
                done, _ = ray.wait(list(inflight), num_returns=1, timeout=POLL_S)
                for ref in done:
                    trial, node, slot, cores = inflight.pop(ref)
                    records.append(self._collect(run_dir, ref, trial, node))
                    self.free_cores[node.env.identity.host_id] += cores
                    if node.node_id in self.nodes:
                        node.free.append(slot)
                self._forget_lost_nodes(inflight)
        except BaseException as exc:  # Ctrl-C, a signal: stop the trials in flight, keep what they measured
            self._stop(run_dir, inflight)
            cause = exc.__cause__
            if isinstance(exc, SystemError) and isinstance(cause, BaseException) and not isinstance(cause, Exception):
                raise cause from None  # the signal's exception, raised inside one of Ray's C calls
            raise
        return records

    def _take_cores(self, node: Node, threads: int) -> list[int]:
        """`threads` cores of the node's host that no trial in flight holds: its first free ones.
        Nodes on one host (simulated nodes) or several trials on one node never share a core."""
        taken = self._free_cores(node)[:threads]
        for c in taken:
            self.free_cores[node.env.identity.host_id].remove(c)
        return taken

    def _free_cores(self, node: Node) -> list[int]:
        return sorted(c for c in self.free_cores[node.env.identity.host_id] if c in node.cores)

    def _placement(self, run_dir: RunDir, trial: TrialSpec, node: Node | None) -> Placement:
        return Placement("ray", node.env.identity if node else None, run_dir.attempt(trial.trial_id))

    def _collect(self, run_dir: RunDir, ref: ray.ObjectRef, trial: TrialSpec, node: Node) -> TrialRecord:
        try:
            result = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # the task itself failed on the node
            record = TrialRecord.not_run(trial, run_dir.run_id, "error",
                                         f"the trial's task failed on node {node.alias}: {_first_line(exc)}")
            return self._write(run_dir, record.place(self._placement(run_dir, trial, node)))
        except ray.exceptions.RayError as exc:  # the node, its raylet or the worker went away
            self.nodes.pop(node.node_id, None)
            record = TrialRecord.not_run(trial, run_dir.run_id, "error",
                                         f"{NODE_LOST}: node {node.alias} left the cluster during the trial "
                                         f"({type(exc).__name__}); `bench.py run --resume` measures it again")
            return self._write(run_dir, record.place(self._placement(run_dir, trial, node)))
        record = _returned_record(result, node)
        record.settings["trials_per_node"] = self.options.trials_per_node  # the others it may have run beside
        run_dir.log_path(trial.trial_id).parent.mkdir(parents=True, exist_ok=True)
        run_dir.log_path(trial.trial_id).write_text(result["log"])
        log.info("%s %s %s on node %s: %s", trial.label, trial.point, trial.dataset, node.alias, record.status)
        return self._write(run_dir, record)

    @staticmethod
    def _write(run_dir: RunDir, record: TrialRecord) -> TrialRecord:
        run_dir.write_record(record)
        return record

    def _forget_lost_nodes(self, inflight: dict) -> None:
        """Nodes that left the cluster get no more trials; those in flight there are collected
        (as node lost) when Ray reports them."""
        alive = self._alive()
        busy = {node.node_id for _, node, _, _ in inflight.values()}
        for node_id in [n for n in self.nodes if n not in alive]:
            log.warning("Ray node %s left the cluster", self.nodes[node_id].alias)
            if node_id in busy:
                self.nodes[node_id].free.clear()
            else:
                self.nodes.pop(node_id)

    def _stop(self, run_dir: RunDir, inflight: dict) -> None:
        """Cancel the trials in flight (each node stops its child, which writes what it measured)
        and record them as interrupted."""
        for ref in inflight:
            ray.cancel(ref)
        deadline = time.monotonic() + TERM_GRACE_S + 10
        for ref, (trial, node, _, _) in inflight.items():
            try:
                result = ray.get(ref, timeout=max(0.1, deadline - time.monotonic()))
                record = _returned_record(result, node)
            except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError, Exception):  # noqa: BLE001
                record = TrialRecord.not_run(trial, run_dir.run_id, "interrupted", "")
                record.place(self._placement(run_dir, trial, node))
            if record.status != "ok":
                record.status = "interrupted"
                record.reason = ("the run was interrupted during this trial on node "
                                 f"{node.alias}; `bench.py run --resume` measures it again")
            try:
                self._write(run_dir, record)
            except OSError:
                pass

    def finish(self, run_dir: RunDir) -> None:
        """Each node's matmul peak again; the better of the two stays in the manifest."""
        manifest = run_dir.read_manifest()
        nodes = dict(manifest.environment.nodes)
        alive = self._alive()
        self.nodes = {k: v for k, v in self.nodes.items() if k in alive}
        for node_id, again in self._peaks(manifest.options.threads).items():
            if node_id not in nodes:
                continue
            node = nodes[node_id]
            best = prepare.better_peak(node.matmul_peak, again, manifest.options.threads, node.identity.cpu_cores)
            nodes[node_id] = dataclasses.replace(node, matmul_peak=best)
        env = dataclasses.replace(manifest.environment, nodes=nodes)
        run_dir.write_manifest(dataclasses.replace(manifest, environment=env))


def _returned_record(result: dict, node: Node) -> TrialRecord:
    """A node's trial record, validated as one read from disk is."""
    return schema.load(f"the record returned by node {node.alias}", TrialRecord, "a trial record",
                       TrialRecord.problem, raw=json.dumps(result["record"]).encode())


def _reachable(address: str) -> str:
    """The cluster's GCS address (for "auto": RAY_ADDRESS, or the cluster last started on this
    machine), checked to answer: `ray.init` would wait minutes for an address where nothing listens."""
    from ray._private.services import get_ray_address_from_environment

    try:
        resolved = get_ray_address_from_environment(address, None)
    except ConnectionError:
        raise RunError(f"--executor ray: no Ray cluster is running on this machine; {HOW_TO_START}") from None
    host, _, port = (resolved or "").removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise RunError(f"--executor ray: cannot connect to a Ray cluster at {resolved} ({why}); {HOW_TO_START}") \
            from None
    return resolved


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__

