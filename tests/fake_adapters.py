"""Adapters without any framework, to test isolation, timeouts and records.

`NumpyAdapter` really trains (dense layers, tanh/relu/sigmoid, SGD) so its records are honest;
the others fail in the ways real frameworks do: crash, raise, hang, ignore SIGTERM, skip.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any, Sequence

import numpy as np

from adapters.base import Adapter, SkipTrial, split_batches, split_inputs
from workloads.spec import WorkloadSpec

_ACT = {"tanh": (np.tanh, lambda y: 1 - y * y), "relu": (lambda x: np.maximum(x, 0), lambda y: (y > 0).astype(y.dtype)),
        "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), lambda y: y * (1 - y))}


class NumpyAdapter(Adapter):
    """Dense networks trained by plain SGD in NumPy (the spec's loss from logits: binary or softmax
    cross-entropy; the spec's optimizer is taken as SGD at its learning rate)."""

    framework = "numpy"

    def setup(self) -> dict[str, Any]:
        if self.device == "cuda":
            raise SkipTrial("NumPy has no GPU")
        self.device = "cpu"
        return {"mode": "numpy"}

    def versions(self) -> dict[str, str]:
        return {"numpy": np.__version__}

    def build(self, spec: WorkloadSpec, weights: Sequence[np.ndarray]) -> None:
        if any(layer.kind not in ("dense", "tanh", "relu", "sigmoid") for layer in spec.layers):
            raise SkipTrial("the NumPy fake adapter only does dense networks")
        self.spec, self.weights = spec, [w.copy() for w in weights]

    def param_count(self) -> int:
        return sum(w.size for w in self.weights)

    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        acts, params = [x], iter(self.weights)
        for layer in self.spec.layers:
            if layer.kind == "dense":
                x = x @ next(params) + next(params)
            else:
                x = _ACT[layer.kind][0](x)
            acts.append(x)
        return x, acts

    def stage(self, x: np.ndarray, y: np.ndarray) -> None:
        self.batches = split_batches(x, y, self.spec.batch_size)
        self.n_batches = len(self.batches)

    def train_step(self, i: int) -> float:
        x, y = self.batches[i]
        logits, acts = self._forward(x)
        if self.spec.loss == "softmax_cross_entropy":
            shifted = logits - logits.max(axis=1, keepdims=True)
            log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            rows = np.arange(len(y))
            loss = float(-log_p[rows, y].mean())
            grad = np.exp(log_p)
            grad[rows, y] -= 1
            grad /= len(y)
        else:
            z = logits[:, 0]
            loss = float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))
            grad = ((1 / (1 + np.exp(-z)) - y) / len(y))[:, None]
        w_index = len(self.weights)
        for layer, a_in, a_out in reversed(list(zip(self.spec.layers, acts[:-1], acts[1:]))):
            if layer.kind == "dense":
                w_index -= 2
                kernel = self.weights[w_index]
                grad_in = grad @ kernel.T
                self.weights[w_index] -= self.spec.optimizer.learning_rate * (a_in.T @ grad)
                self.weights[w_index + 1] -= self.spec.optimizer.learning_rate * grad.sum(0)
                grad = grad_in
            else:
                grad = grad * _ACT[layer.kind][1](a_out)
        return loss

    def synchronize(self) -> None:
        pass

    def loss_values(self, handles: Sequence[Any]) -> list[float]:
        return [float(h) for h in handles]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._forward(x)[0]

    def stage_inference(self, x: np.ndarray) -> dict[str, Any]:
        self.batches = split_inputs(x, self.spec.batch_size)
        self.n_batches = len(self.batches)
        return {"inference": "numpy forward"}

    def infer(self, i: int) -> np.ndarray:
        return self._forward(self.batches[i])[0]


class RaiseInBuild(NumpyAdapter):
    def build(self, spec: WorkloadSpec, weights: Sequence[np.ndarray]) -> None:
        raise ValueError("weights do not fit (deliberate)")


class CrashAfterSteps(NumpyAdapter):
    """Dies like a segfaulting native library: no record, only its output."""

    def train_step(self, i: int) -> float:
        if getattr(self, "steps", 0) >= 20:
            print("fake native crash", file=sys.stderr, flush=True)
            os._exit(3)
        self.steps = getattr(self, "steps", 0) + 1
        return super().train_step(i)


class HangAfterSteps(NumpyAdapter):
    """Trains a little, then hangs in Python: SIGTERM reaches it and what it measured is kept."""

    def train_step(self, i: int) -> float:
        self.steps = getattr(self, "steps", 0) + 1
        if self.steps > 30:
            time.sleep(3600)
        return super().train_step(i)


class HangIgnoringTerm(NumpyAdapter):
    """Hangs and ignores SIGTERM (like a stuck native call): only SIGKILL ends it."""

    def setup(self) -> dict[str, Any]:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        return super().setup()

    def build(self, spec: WorkloadSpec, weights: Sequence[np.ndarray]) -> None:
        time.sleep(3600)


class SkipInSetup(NumpyAdapter):
    def setup(self) -> dict[str, Any]:
        raise SkipTrial("this combination is not supported (deliberate)")


class LeavesAHelper(NumpyAdapter):
    """Starts a helper process of its own that outlives the trial (as a framework's compile worker
    or server might), named after $BENCH_TEST_MARK so that a test can look for it."""

    def setup(self) -> dict[str, Any]:
        import subprocess

        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", os.environ["BENCH_TEST_MARK"]])
        return super().setup()


class SlowSteps(NumpyAdapter):
    """Trains slowly (30 ms a step for its first 200 steps, about 6 s), so that a test can interrupt
    a run in the middle of a trial."""

    def train_step(self, i: int) -> float:
        self.steps = getattr(self, "steps", 0) + 1
        if self.steps <= 200:
            time.sleep(0.03)
        return super().train_step(i)


class MemoryHog(NumpyAdapter):
    """Trains a few steps, then takes memory (touched, 64 MiB at a time) until something stops it."""

    def train_step(self, i: int) -> float:
        self.steps = getattr(self, "steps", 0) + 1
        if self.steps > 20:
            print("taking all the memory there is", file=sys.stderr, flush=True)
            hoard = []
            while True:
                hoard.append(np.ones(64 * 2**20 // 8))
        return super().train_step(i)


class CacheProbe(NumpyAdapter):
    """Says in its settings whether the compile cache folder it was given was empty, then fills it,
    as a compiling framework would."""

    def setup(self) -> dict[str, Any]:
        from pathlib import Path

        folder = Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
        empty = not folder.exists() or not any(folder.iterdir())
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "compiled-graph").write_text("a compiled graph")
        return {**super().setup(), "cache_dir": str(folder), "cache_was_empty": empty}



class ProbabilitiesInference(NumpyAdapter):
    """Trains right, but its inference path returns the output function's probabilities instead of
    the logits the spec's model emits: only the inference scenario's check against the NumPy
    reference can see it."""

    def infer(self, i: int) -> np.ndarray:
        logits = super().infer(i)
        return 1 / (1 + np.exp(-logits))
