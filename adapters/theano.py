"""Theano 1.0.5: the symbolic graph of the spec's layers, the optimizer's update rules written out
(Theano has no optimizer library), one compiled function per training step that reads the staged
batch from a shared variable. Runs in its own environment (numpy < 1.24), on the CPU.

BLAS: Theano links its C ops (gemm, the CorrMM convolution) against the library in its
`blas.ldflags`. The adapter sets it before import, preferring a system OpenBLAS, else the OpenBLAS
that SciPy's wheel ships, else none (NumPy's C API for gemm, Theano's slow convolution); the
record says which. A THEANO_FLAGS set by the user is applied after these defaults and wins.
"""
from __future__ import annotations

import ctypes.util
import glob
import os
import sys
from pathlib import Path
from typing import Any, Sequence


def _system_openblas() -> str | None:
    """How the system's OpenBLAS threads ("OpenMP", "pthreads"), or None if there is none."""
    if not ctypes.util.find_library("openblas"):
        return None
    for folder in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"):
        path = Path(folder) / "libopenblas.so.0"
        if path.exists():
            real = str(path.resolve())
            return "OpenMP" if "openmp" in real else "pthreads" if "pthread" in real else "unknown threading"
    return "unknown threading"


def _blas_flags() -> tuple[str, str]:
    """(ldflags, description): the fastest BLAS Theano can link against here. A system OpenBLAS
    built with OpenMP (Debian's libopenblas-openmp-dev) comes first: it shares one OpenMP thread
    pool with Theano's own OpenMP ops, where a pthreads OpenBLAS (SciPy's, Debian's -pthread) runs a
    second pool that competes with it for the cores (measured on 2 cores, 2 threads: MLP 6.2k
    samples/s with two pools, 29k with one)."""
    system = _system_openblas()
    if system == "OpenMP":
        return "-lopenblas", "system OpenBLAS, OpenMP build (one thread pool with Theano's OpenMP ops)"
    import importlib.util
    scipy = importlib.util.find_spec("scipy")
    if scipy and scipy.origin:
        libs = Path(scipy.origin).parent.parent / "scipy.libs"
        found = sorted(glob.glob(str(libs / "libopenblas*.so*")))
        if found:
            lib = Path(found[0])
            # Theano splits its flags on commas, so the rpath goes through -Xlinker, not -Wl.
            return (f"-L{lib.parent} -l:{lib.name} -Xlinker -rpath={lib.parent}",
                    f"OpenBLAS bundled with SciPy ({lib.name}; pthreads: a second thread pool beside "
                    "Theano's OpenMP ops)")
    if system:
        return "-lopenblas", f"system OpenBLAS ({system}: a second thread pool beside Theano's OpenMP ops)"
    return "", "none (NumPy C-API gemm; Theano's own convolution)"


BLAS_LDFLAGS, BLAS_DESCRIPTION = _blas_flags()
_threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
# OpenMP in Theano's C ops (the CorrMM convolution's batch loop, large elementwise ops) when
# several threads are allowed. The OpenMP wait policy is left as for every framework (the runtime's
# default, see harness/threads.py); the BLAS choice above avoids a second pool of threads.
_compile_dir = Path(sys.prefix) / "theano-compiledir"  # per environment, reused across runs
os.environ["THEANO_FLAGS"] = ",".join(filter(None, [
    "floatX=float32", "device=cpu", f"openmp={_threads > 1}", f"blas.ldflags={BLAS_LDFLAGS}", f"base_compiledir={_compile_dir}",
    os.environ.get("THEANO_FLAGS", ""),
]))

import numpy as np  # noqa: E402
import theano  # noqa: E402
import theano.tensor as T  # noqa: E402
from theano.tensor.nnet import conv2d  # noqa: E402
from theano.sandbox.rng_mrg import MRG_RandomStreams  # noqa: E402
from theano.tensor.signal.pool import pool_2d  # noqa: E402

from adapters.base import Adapter, SkipTrial, channels_first_weights, hwio_to_oihw  # noqa: E402
from workloads.spec import WorkloadSpec  # noqa: E402


def forward(spec: WorkloadSpec, params: Sequence[Any], x: Any, rng: MRG_RandomStreams | None = None,
            flatten_nchw: bool = False) -> Any:
    """Symbolic logits; x is NCHW for images, conv kernels (out, in, kh, kw). With random streams
    (the training graph) dropout draws its masks; without them (prediction) it is the identity.
    `flatten_nchw`: flatten activations as they lie, the next dense layer's kernel being reordered
    to match (adapters.base.channels_first_weights)."""
    it = iter(params)
    for layer in spec.layers:
        if layer.kind == "dense":
            x = T.dot(x, next(it)) + next(it)
        elif layer.kind == "conv2d":
            # filter_flip=False: a cross-correlation, as every other framework computes.
            x = conv2d(x, next(it), border_mode="valid", filter_flip=False) + next(it).dimshuffle("x", 0, "x", "x")
        elif layer.kind == "maxpool":
            x = pool_2d(x, (layer.pool, layer.pool), ignore_border=True, mode="max")
        elif layer.kind == "flatten":
            x = x.flatten(2) if flatten_nchw else x.dimshuffle(0, 2, 3, 1).flatten(2)  # else the spec's (h, w, c)
        elif layer.kind == "relu":
            x = T.nnet.relu(x)
        elif layer.kind == "tanh":
            x = T.tanh(x)
        elif layer.kind == "sigmoid":
            x = T.nnet.sigmoid(x)
        elif layer.kind == "dropout" and rng is not None and layer.rate > 0:
            keep = 1.0 - layer.rate
            x = x * rng.binomial(size=x.shape, p=keep, dtype="float32") / T.constant(keep, dtype="float32")
    return x


def loss_expression(spec: WorkloadSpec, logits: Any, y: Any) -> Any:
    """Mean loss from logits, in the numerically stable forms."""
    if spec.loss == "softmax_cross_entropy":
        # Theano's fused op (the one `categorical_crossentropy(softmax(z), y)` is rewritten into):
        # it computes -z[y] + max(z) + log(sum(exp(z - max(z)))), stable, and its gradient is one
        # op; a log-softmax written out in elementwise ops ran about 3% slower on the MLP.
        return T.nnet.crossentropy_softmax_1hot(logits, y)[0].mean()
    z = logits[:, 0]
    return (T.nnet.relu(z) - z * y + T.log1p(T.exp(-abs(z)))).mean()


def updates_for(spec: WorkloadSpec, params: Sequence[Any], grads: Sequence[Any]) -> list[tuple[Any, Any]]:
    opt = spec.optimizer
    # Theano constants, not NumPy scalars: `np.float32 * tensor` goes through NumPy and upcasts.
    lr, b1, b2, eps = (T.constant(v, dtype="float32") for v in (opt.learning_rate, opt.beta1, opt.beta2, opt.eps))
    if opt.name == "sgd":
        return [(p, p - lr * g) for p, g in zip(params, grads)]
    # The spec's Adam, "epsilon-hat" form: bias correction folded into the step size.
    t = theano.shared(np.float32(0), name="adam_t")
    t_new = t + 1
    step = lr * T.sqrt(1 - b2 ** t_new) / (1 - b1 ** t_new)
    updates = [(t, t_new)]
    for p, g in zip(params, grads):
        value = p.get_value(borrow=True)
        m = theano.shared(np.zeros_like(value), broadcastable=p.broadcastable)
        v = theano.shared(np.zeros_like(value), broadcastable=p.broadcastable)
        m_new = b1 * m + (1 - b1) * g
        v_new = b2 * v + (1 - b2) * T.sqr(g)
        updates += [(m, m_new), (v, v_new), (p, p - step * m_new / (T.sqrt(v_new) + eps))]
    return updates


def _compile_cache(folder: Path) -> str:
    """Whether Theano's compiled modules were there when the trial started (its first block then
    compiles only what this graph's ops lack) or not (the first block compiles them all)."""
    modules = sum(1 for p in folder.glob("tmp*") if p.is_dir()) if folder.is_dir() else 0
    state = f"warm ({modules} compiled modules there at the start)" if modules else "cold (empty at the start)"
    return f"{state}: Theano's compiled C modules, kept in {folder} and reused by later trials and runs"


class TheanoAdapter(Adapter):
    framework = "theano"

    def setup(self) -> dict[str, Any]:
        if self.device == "cuda":
            raise SkipTrial("the Theano adapter runs on the CPU only (Theano's CUDA backend needs libgpuarray)")
        self.device = "cpu"
        if self.precision.reduced:
            raise SkipTrial(f"Theano computes in floatX (float32 or float64) on the CPU; it has no bfloat16, and "
                            f"float16 only on its GPU backend: {self.numerics.precision} cannot run")
        return {
            **self.numerics.applied("float32 (floatX)", self.device, "", ""),
            "mode": "one compiled theano.function per step (C linker)",
            "blas": BLAS_DESCRIPTION,
            "blas_ldflags": theano.config.blas.ldflags,
            "floatX": theano.config.floatX,
            "intra_op_threads": int(os.environ.get("OMP_NUM_THREADS", "0")) or "OpenMP default",
            "openmp": bool(theano.config.openmp),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            # By design: Theano keeps its compiled C modules in the environment and reuses them
            # across runs; what a graph's ops lack is compiled in its first block, once per environment.
            "compile_cache": _compile_cache(Path(theano.config.compiledir)),
        }

    def versions(self) -> dict[str, str]:
        import scipy
        return {"theano": theano.__version__, "scipy": scipy.__version__}

    def build(self, spec: WorkloadSpec, weights: Sequence[np.ndarray]) -> None:
        self.spec = spec
        self.channels_first = len(spec.input_shape) == 3
        self.params = []
        weights, flatten_nchw = channels_first_weights(spec, weights)
        for w in weights:
            w = hwio_to_oihw(w) if w.ndim == 4 else w
            self.params.append(theano.shared(np.asarray(w, np.float32)))
        ndim = 4 if self.channels_first else 2
        self.x = T.TensorType("float32", (False,) * ndim)("x")
        self.y = T.ivector("y") if spec.loss == "softmax_cross_entropy" else T.fvector("y")
        self.logits = forward(spec, self.params, self.x, flatten_nchw=flatten_nchw)
        # Training has its own graph when dropout draws masks (their state updates with each call).
        self.train_logits = (forward(spec, self.params, self.x, MRG_RandomStreams(1), flatten_nchw)
                             if spec.has_dropout else self.logits)
        self.data_x = self.data_y = None
        self._train = self._predict = None  # compiled on first use: compilation is first-step time

    def param_count(self) -> int:
        return sum(int(p.get_value(borrow=True).size) for p in self.params)

    def _inputs(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if self.channels_first else x, dtype=np.float32)

    def unstage(self) -> None:
        if self.data_x is not None:  # empty arrays of the same kind: the compiled step stays valid
            self.data_x.set_value(self.data_x.get_value(borrow=True)[:0], borrow=True)
            self.data_y.set_value(self.data_y.get_value(borrow=True)[:0], borrow=True)
        self.n_batches = 0

    def stage(self, x: np.ndarray, y: np.ndarray) -> None:
        bs = self.spec.batch_size
        self.n_batches = len(x) // bs
        kept = self.n_batches * bs
        xs = self._inputs(x[:kept])
        ys = y[:kept].astype(np.int32 if self.spec.loss == "softmax_cross_entropy" else np.float32)
        if self.data_x is None:
            self.data_x, self.data_y = theano.shared(xs, borrow=True), theano.shared(ys, borrow=True)
        else:
            self.data_x.set_value(xs, borrow=True)
            self.data_y.set_value(ys, borrow=True)

    def _compile_train(self) -> None:
        loss = loss_expression(self.spec, self.train_logits, self.y)
        grads = T.grad(loss, self.params)
        i = T.lscalar("i")
        bs = self.spec.batch_size
        self._train = theano.function(
            [i], loss, updates=updates_for(self.spec, self.params, grads),
            givens={self.x: self.data_x[i * bs:(i + 1) * bs], self.y: self.data_y[i * bs:(i + 1) * bs]})

    def train_step(self, i: int) -> np.ndarray:
        if self._train is None:
            self._compile_train()
        return self._train(i)

    def synchronize(self) -> None:
        pass  # a Theano function returns when its work is done (CPU)

    def loss_values(self, handles: Sequence[np.ndarray]) -> list[float]:
        return [float(h) for h in handles]

    def stage_inference(self, x: np.ndarray) -> dict[str, Any]:
        bs = self.spec.batch_size
        self.n_batches = len(x) // bs
        self.infer_x = theano.shared(self._inputs(x[:self.n_batches * bs]), borrow=True)
        self._infer = None
        return {"inference": "one compiled theano.function of the forward pass per call (C linker), "
                             "inputs in a shared variable"}

    def infer(self, i: int) -> np.ndarray:
        if self._infer is None:  # compiled on the first call: compilation is first-call time
            index, bs = T.lscalar("i"), self.spec.batch_size
            self._infer = theano.function([index], self.logits,
                                          givens={self.x: self.infer_x[index * bs:(index + 1) * bs]})
        return self._infer(i)

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self._predict is None:
            self._predict = theano.function([self.x], self.logits)
        return np.asarray(self._predict(self._inputs(x)))
