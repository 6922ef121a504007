"""The JAX adapter's jitted step compiles once: a second compilation at step two (an argument
whose placement changed after the first step) would be timed as steady state."""
from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")

from adapters.jax import JaxAdapter  # noqa: E402
from workloads import get_workload  # noqa: E402


@pytest.mark.parametrize("workload", ["xor", "mnist_mlp"])
def test_the_train_step_compiles_once(workload):
    spec = get_workload(workload)
    adapter = JaxAdapter("default", "cpu", 1)
    adapter.setup()
    adapter.build(spec, spec.init_weights(0))
    rng = np.random.default_rng(0)
    n = 4 * spec.batch_size
    x = rng.random((n, *spec.input_shape), dtype=np.float32)
    y = rng.integers(0, 2 if spec.loss == "binary_cross_entropy" else 10, n).astype(np.uint8)
    adapter.stage(x, y)
    for i in range(adapter.n_batches):
        adapter.train_step(i)
    adapter.synchronize()
    assert adapter._step._cache_size() == 1


@pytest.mark.parametrize("threads", [1, 2])
def test_every_xla_flag_the_harness_sets_is_one_xla_knows(threads):
    """XLA ignores a token of XLA_FLAGS without a leading '--' and aborts on an unknown '--' flag, so
    a flag is applied only if it has its dashes and a JAX process with it starts."""
    import subprocess
    import sys

    from harness.launch import child_env
    from harness.paths import PROJECT_ROOT
    from harness.threads import thread_env

    tokens = thread_env(threads)["XLA_FLAGS"].split()
    assert tokens and all(t.startswith("--xla_") for t in tokens), tokens
    code = "import jax, jax.numpy as j; print(jax.jit(lambda x: x @ x)(j.ones((8, 8))).sum())"
    out = subprocess.run([sys.executable, "-c", code],
                         cwd=PROJECT_ROOT, env=child_env("jax", "default", "cpu", threads), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "Unknown flag" not in out.stderr, out.stderr[-500:]
    assert out.stdout.strip() == "512.0"
