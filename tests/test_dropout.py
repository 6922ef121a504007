"""Dropout, which no built-in workload uses yet, in every adapter: active in training (the first
step's loss differs from the loss of the same batch without it), the identity in prediction
(deterministic and equal to the NumPy reference), and training stays finite."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from adapters import FRAMEWORKS
from harness.launch import child_env
from harness.paths import PROJECT_ROOT
from tests.conftest import interpreter_or_skip
from tests.test_contract import VARIANTS
from workloads import reference

pytestmark = pytest.mark.framework

# mnist_mlp with dropout 0.5 after each hidden layer (Keras's original MLP example); run in the
# child (whose environment may have no pytest, so it cannot import this module) and here alike.
SPEC = """
from dataclasses import replace
from workloads import get_workload
from workloads.spec import Layer
base = get_workload("mnist_mlp")
layers = []
for layer in base.layers:
    layers.append(layer)
    if layer.kind == "relu":
        layers.append(Layer("dropout", rate=0.5))
spec = replace(base, name="mnist_mlp_dropout", layers=tuple(layers))
"""

CHILD = SPEC + """
import json, sys
import numpy as np
from adapters import load_adapter_class
from workloads import reference
adapter = load_adapter_class(sys.argv[1])(sys.argv[2], "cpu", 1)
adapter.setup()
adapter.build(spec, spec.init_weights(0))
x = reference.forward_batch(spec, 0)
first, second = adapter.predict(x), adapter.predict(x)
batches = reference.probe_batches(spec, 0, 3)
adapter.stage(np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]))
handles = [adapter.train_step(i) for i in range(3)]
adapter.synchronize()
print(json.dumps({"predict": np.asarray(first, float).tolist(), "again": np.asarray(second, float).tolist(),
                  "losses": adapter.loss_values(handles)}))
"""


def dropout_spec():
    scope: dict = {}
    exec(SPEC, scope)
    return scope["spec"]


@pytest.mark.parametrize("framework, variant", VARIANTS, ids=[f"{f}:{v}" for f, v in VARIANTS])
def test_dropout_trains_and_predicts_deterministically(framework, variant):
    python = interpreter_or_skip(framework, variant)
    out = subprocess.run([python, "-c", CHILD, FRAMEWORKS[framework].adapter, variant], cwd=PROJECT_ROOT,
                         env=child_env(framework, variant, "cpu", 1), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    spec = dropout_spec()
    x = reference.forward_batch(spec, 0)
    expected = reference.forward(spec, spec.init_weights(0), x)
    assert result["predict"] == result["again"]
    np.testing.assert_allclose(result["predict"], expected, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(expected).max()))
    xb, yb = reference.probe_batches(spec, 0, 1)[0]
    without = reference.loss(spec, reference.forward(spec, spec.init_weights(0), xb), yb)
    assert all(np.isfinite(result["losses"]))
    assert abs(result["losses"][0] - without) > 1e-3, "the first training step's loss is the loss without dropout"
