"""A trial's own GPU memory as the driver counts it: NVML's per-process figure (nvidia-ml-py),
sampled by the parent for the child and its descendants. It is the same figure for every framework
(unlike their allocators' peaks: PyTorch's counts its tensors, TensorFlow's and JAX's their pools,
MXNet's none) and includes the CUDA context and the libraries' workspaces, which no allocator sees.

The parent samples, not the child: the isolated environments need no extra package, and a sample
never runs on the child's threads. The peak is the highest sample (every SAMPLE_S), so a spike
shorter than that can be missed; the record says the figure is sampled.
"""
from __future__ import annotations

import logging
import threading

import psutil

log = logging.getLogger(__name__)

SAMPLE_S = 0.05


def _nvml():
    """The initialised pynvml module, or None where there is no NVML (no driver, no GPU, no package)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception:  # noqa: BLE001 - ImportError, NVMLError_LibraryNotFound, NVMLError_DriverNotLoaded, ...
        return None


class ProcessGpuMemory:
    """`sampler.start()`, ..., `sampler.stop()`; then `sampler.peak_bytes`, or None where it is not
    measurable: no NVML or no GPU, or the trial's processes never in NVML's list."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_bytes, self._seen = pid, None, False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        nvml = _nvml()
        if nvml is None:
            return
        try:
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
        except Exception:  # noqa: BLE001
            handles = []
        if not handles:
            nvml.nvmlShutdown()
            return
        self.peak_bytes = 0
        self._thread = threading.Thread(target=self._sample, args=(nvml, handles), daemon=True)
        self._thread.start()

    def _tree(self) -> set[int]:
        try:
            parent = psutil.Process(self.pid)
            return {self.pid} | {p.pid for p in parent.children(recursive=True)}
        except psutil.Error:
            return {self.pid}

    def _sample(self, nvml, handles: list) -> None:
        try:
            while not self._stop.is_set():
                pids, used = self._tree(), 0
                for handle in handles:
                    for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                        if proc.pid in pids:
                            self._seen = True
                            used += int(proc.usedGpuMemory or 0)
                self.peak_bytes = max(self.peak_bytes or 0, used)
                self._stop.wait(SAMPLE_S)
        except Exception as exc:  # noqa: BLE001 - a driver error ends sampling, not the trial
            log.warning("GPU memory sampling stopped: %s", exc)
        finally:
            try:
                nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001
                pass

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            if not self._seen:  # e.g. NVML lists host PIDs and this runs in a container's PID namespace
                log.warning("no process of the trial appeared in NVML's list of GPU processes; its GPU memory "
                            "is not recorded")
                self.peak_bytes = None
