"""Every framework variant builds the very same model and takes the very same first steps.

Each variant is probed once, in its own process and environment (harness.probe), on all workloads;
see harness.equivalence for what is compared and the tolerances.
"""
from __future__ import annotations

import sys

import pytest

from adapters import FRAMEWORKS, default_selection, missing_modules
from adapters.numerics import PRECISIONS
from harness import equivalence
from tests.conftest import interpreter_or_skip
from workloads import WORKLOADS

pytestmark = pytest.mark.framework

VARIANTS = [(f.name, v) for f in FRAMEWORKS.values() for v in f.variants]
_probes: dict[tuple[str, str], equivalence.Probe] = {}


def probe(framework: str, variant: str) -> equivalence.Probe:
    python = interpreter_or_skip(framework, variant)
    if (framework, variant) not in _probes:
        _probes[framework, variant] = equivalence.run_probe(framework, variant, list(WORKLOADS), python, threads=2)
    return _probes[framework, variant]


@pytest.mark.parametrize("workload", list(WORKLOADS))
@pytest.mark.parametrize("framework, variant", VARIANTS, ids=[f"{f}:{v}" for f, v in VARIANTS])
def test_same_model_as_the_numpy_reference(framework, variant, workload):
    problems = equivalence.model_problems(probe(framework, variant), workload)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_same_first_steps_across_frameworks(workload):
    probes = []
    for framework, variant in VARIANTS:
        try:
            probes.append(probe(framework, variant))
        except pytest.skip.Exception:
            continue
    if len(probes) < 3:
        pytest.skip("fewer than three framework variants available to compare")
    problems = equivalence.loss_problems(probes, workload)
    assert not problems, "\n".join(problems)


needs_torch = pytest.mark.skipif(bool(missing_modules("pytorch", "default")), reason="needs torch")


@needs_torch
def test_a_transposed_weight_is_named():
    broken = equivalence.run_probe("pytorch", "default", ["mnist_mlp"], sys.executable,
                                   adapter="tests.broken_adapters:TransposedKernel")
    problems = equivalence.model_problems(broken, "mnist_mlp")
    assert len(problems) == 2, problems  # the first layer that differs, and the inference path's output
    assert problems[0].startswith("pytorch mnist_mlp: layer 3 (dense 512) output differs from the NumPy "
                                  "reference by up to"), problems
    assert "the inference path's outputs differ from the NumPy float32 reference" in problems[1]


@needs_torch
def test_an_inference_path_with_other_weights_is_named():
    broken = equivalence.run_probe("pytorch", "default", ["mnist_mlp"], sys.executable,
                                   adapter="tests.broken_adapters:FreshInferenceModel")
    problems = equivalence.model_problems(broken, "mnist_mlp")
    assert len(problems) == 1 and "the inference path's outputs differ from the NumPy float32 reference" in problems[0], problems


@needs_torch
def test_a_wrong_learning_rate_is_named_by_step():
    broken = equivalence.run_probe("pytorch", "default", ["mnist_mlp"], sys.executable,
                                   adapter="tests.broken_adapters:DoubleLearningRate")
    assert not equivalence.model_problems(broken, "mnist_mlp")  # the model itself is right
    others = [probe(f, v) for f, v in (("pytorch", "default"), ("tensorflow", "default"), ("jax", "default"))
              if not missing_modules(f, v)]
    problems = [p for p in equivalence.loss_problems(others + [broken], "mnist_mlp") if p.startswith("pytorch")]
    assert problems and "step 2 loss" in problems[-1], problems


@needs_torch
def test_pytorchs_own_adam_form_fails_the_20_step_check():
    """The spec's Adam is the epsilon-hat form; torch.optim.Adam as it comes adds eps to the
    bias-corrected sqrt(v). Same model, same data: the check must tell the two apart."""
    plain = equivalence.run_probe("pytorch", "default", ["mnist_mlp", "mnist_cnn"], sys.executable, threads=2,
                                  adapter="tests.broken_adapters:PlainTorchAdam")
    others = [probe(f, v) for f, v in (("pytorch", "default"), ("tensorflow", "default"), ("jax", "default"),
                                       ("keras", "tensorflow")) if not missing_modules(f, v)]
    for workload in ("mnist_mlp", "mnist_cnn"):
        assert not equivalence.loss_problems(others, workload)
        problems = [p for p in equivalence.loss_problems(others + [plain], workload) if p.startswith("pytorch")]
        assert problems and problems[-1].startswith(f"pytorch {workload}: step 2 loss"), problems


# ---- per precision: every default variant, the whole model and its first steps ----------------------

REDUCED = [p for p in PRECISIONS if PRECISIONS[p].reduced]
DEFAULTS = default_selection()
PRECISION_STEPS = 8  # the first loss and the start of training: enough to tell an optimizer's form apart
_precision_probes: dict[tuple[str, str, str], equivalence.Probe] = {}


def precision_workloads(precision: str) -> list[str]:
    """float16 convolutions on a CPU without float16 arithmetic run a slow emulation (PyTorch's CNN
    probe: 20 s), so the CNN's float16 check is left to the GPU tests (tests/test_gpu.py)."""
    return [w for w in WORKLOADS if w != "mnist_cnn" or PRECISIONS[precision].compute != "float16"]


def precision_probe(framework: str, variant: str, precision: str) -> equivalence.Probe:
    """The whole model (no layer-by-layer prefixes), its inference path and first steps, in `precision`."""
    python = interpreter_or_skip(framework, variant)
    key = (framework, variant, precision)
    if key not in _precision_probes:
        _precision_probes[key] = equivalence.run_probe(framework, variant, precision_workloads(precision), python,
                                                       threads=2, steps=PRECISION_STEPS, precision=precision,
                                                       layers=False)
    return _precision_probes[key]


@pytest.mark.parametrize("precision", REDUCED)
@pytest.mark.parametrize("framework, variant", DEFAULTS, ids=[f"{f}:{v}" for f, v in DEFAULTS])
def test_same_model_in_each_precision(framework, variant, precision):
    found = precision_probe(framework, variant, precision)
    workloads = precision_workloads(precision)
    if set(found.skipped) == set(workloads):
        pytest.skip(f"{framework}:{variant} skips {precision}: {next(iter(found.skipped.values()))}")
    problems = [p for w in workloads for p in equivalence.model_problems(found, w)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("precision", REDUCED)
def test_same_first_steps_in_each_precision(precision):
    probes = []
    for framework, variant in DEFAULTS:
        try:
            probes.append(precision_probe(framework, variant, precision))
        except pytest.skip.Exception:
            continue
    problems = [p for w in precision_workloads(precision) for p in equivalence.loss_problems(probes, w)]
    assert not problems, "\n".join(problems)


@needs_torch
def test_an_adapter_that_ignores_the_precision_is_named():
    broken = equivalence.run_probe("pytorch", "default", ["mnist_mlp"], sys.executable, precision="mixed-bf16",
                                   layers=False, adapter="tests.broken_adapters:IgnoresPrecision")
    problems = equivalence.model_problems(broken, "mnist_mlp")
    assert len(problems) == 1 and problems[0].startswith("pytorch mnist_mlp mixed-bf16: the inference path's outputs "
                                                         "match the NumPy float32 reference to"), problems
    assert "the precision was not applied" in problems[0]
