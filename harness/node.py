"""Which machine a trial runs on: a NodeIdentity for its record, computed where it runs.

The fingerprint groups machines of one kind, so that reports can put figures from identical
machines together and `compare` can tell when a trial moved to another kind; the host id tells
processes that share one kernel (Ray's simulated nodes, containers on one host), whose trials
share cores. The hostname stays out of records unless a run asks for it: results get shared.
"""
from __future__ import annotations

import hashlib
import socket

from harness.environment import cpu_model, gpus, memory_bytes
from harness.record import NodeIdentity

LOCAL_NODE = "local"


def _digest(text: str, length: int = 12) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def host_id() -> str:
    """Equal for every process under one running kernel: its boot id (hashed)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return _digest(fh.read().strip())
    except OSError:
        return _digest(socket.gethostname())


def fingerprint(cpu: str, cores: int | None, memory: int | None, gpu_list: list[str]) -> str:
    """Equal for machines of one kind: CPU model, logical cores, memory (GiB) and GPU models.
    Driver versions (in `gpus`) are shown in reports but do not make another kind of machine."""
    gib = round(memory / 2**30) if memory else None
    models = sorted(g.split(",")[0].strip() for g in gpu_list)
    return _digest(f"{cpu}|{cores}|{gib}|{'/'.join(models)}")


def identify(node_id: str = LOCAL_NODE, record_hostname: bool = False) -> NodeIdentity:
    import os

    hostname = socket.gethostname()
    cpu, cores, memory, gpu_list = cpu_model(), os.cpu_count(), memory_bytes(), gpus()
    return NodeIdentity(node_id=node_id, alias=hostname if record_hostname else f"host-{_digest(hostname, 8)}",
                        host_id=host_id(), fingerprint=fingerprint(cpu, cores, memory, gpu_list), cpu_model=cpu,
                        cpu_cores=cores, memory_bytes=memory, gpus=gpu_list)
