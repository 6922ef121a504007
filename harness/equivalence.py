"""Proof that every adapter trains the same model: each one is probed in its own process (with its
environment's interpreter, see harness.probe) and compared with the NumPy reference and the others.

Checks, per framework variant and workload, from the spec's initial weights:
- the parameter count equals the spec's analytic count;
- the model's output after each weighted or reshaping layer, on a fixed batch, equals the NumPy
  reference's within FORWARD_TOLERANCE (relative to that layer's largest reference value, at least 1);
- the first step's loss equals the reference loss within FIRST_LOSS_RTOL; the losses of the next
  STEPS - 1 steps agree with the median over all probed variants within `loss_tolerance(step)`.
  Every framework runs the spec's one Adam (the "epsilon-hat" form), so what is left is float32
  rounding, which Adam amplifies: a parameter whose gradient is rounding noise still takes a full
  learning-rate-sized step. Measured here (20 steps, every variant, 2 threads), the spread between
  frameworks grows about 1.8x a step on the MLP (2e-6 at step 2, 1.3e-4 at step 6, 4e-3 at step 20)
  and stays under 1e-4 on the CNN; the envelope is 3e-5 x 1.8^(step - 2), capped at 1e-2. PyTorch's
  own Adam form (eps added to the bias-corrected sqrt(v)) is 4e-4 (MLP) and 1.1e-3 (CNN) off at
  step 2, 14x and 37x the envelope.
Per precision (adapters.numerics): forward outputs within the bounds the format's unit roundoff u
gives (and, in a reduced format, not as close as float32: the precision must have been applied);
the first loss within FIRST_LOSS_ULPS u of the reference; in the mixed formats, whose optimizer
runs in float32, the later losses within the larger of LOSS_ULPS_STEP2 u and an envelope like
float32's from MIXED_RTOL_STEP2 (Adam soon amplifies any rounding to learning-rate-sized steps,
whatever the format), capped at LOSS_RTOL_MAX. Measured here (every default variant, 2 threads):
forward outputs 0.2-1.9 u from the reference; first losses 0.03 u (mixed-bf16) and 0.04 u
(mixed-fp16) off; spread at step 2 up to 5.6e-4 (bf16) and 2.7e-5 (fp16), 1.1e-3 by step 8 and at
most 5e-3 (bf16) and 3.6e-3 (fp16) within 20 steps. On a CPU without AVX-512 (AMD EPYC, Zen 3),
TensorFlow's bfloat16 kernels round differently from the others' (its first mixed-bf16 MLP loss
0.16 u from theirs), and its losses then stay about one unit of roundoff from the median (1.13 u
at step 2, 0.77 u at step 7, no growth), which LOSS_ULPS_STEP2 allows. In the pure formats the
optimizer runs in the format itself and frameworks differ there by design (in bfloat16, beta2 = 0.999 rounds to 1.0; with
eps = 1e-7, float16's Adam divides by numbers it cannot hold; several give NaN, PyTorch's keeps
training): the model and the first loss are checked, later steps are not compared.
A problem names the variant, the workload, the layer or step and the largest difference.
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adapters import FRAMEWORKS, label
from adapters.numerics import DEFAULT_PRECISION, forward_bounds, forward_problem, get_precision
from harness import scratch
from harness.launch import child_env
from harness.paths import child_code_root
from harness.probe import cut_points
from workloads import get_workload, reference

FORWARD_TOLERANCE = reference.FORWARD_TOLERANCE
FIRST_LOSS_RTOL = 1e-5
STEPS = 20
LOSS_RTOL_STEP2 = 3e-5  # the envelope of float32 rounding at step 2 ...
LOSS_RTOL_GROWTH = 1.8  # ... growing this much a step (Adam amplifies rounding, see above) ...
LOSS_RTOL_MAX = 1e-2  # ... up to this: a larger gap within STEPS steps is a different algorithm
FIRST_LOSS_ULPS = 0.25  # reduced formats, in units of roundoff (see above)
LOSS_ULPS_STEP2 = 1.5  # mixed formats: at least this many units of roundoff at every step ...
MIXED_RTOL_STEP2 = 1e-4  # ... or this, growing LOSS_RTOL_GROWTH a step, up to LOSS_RTOL_MAX


def first_loss_tolerance(precision: str = DEFAULT_PRECISION) -> float:
    p = get_precision(precision)
    return FIRST_LOSS_ULPS * p.unit_roundoff if p.reduced else FIRST_LOSS_RTOL


def loss_tolerance(step: int, precision: str = DEFAULT_PRECISION) -> float | None:
    """Relative difference from the median loss allowed at `step` (1-based, step >= 2); None where
    later steps are not compared (the pure reduced formats)."""
    p = get_precision(precision)
    if not p.reduced:
        return min(LOSS_RTOL_MAX, LOSS_RTOL_STEP2 * LOSS_RTOL_GROWTH ** (step - 2))
    if not p.mixed:
        return None
    return min(LOSS_RTOL_MAX, max(LOSS_ULPS_STEP2 * p.unit_roundoff, MIXED_RTOL_STEP2 * LOSS_RTOL_GROWTH ** (step - 2)))


@dataclass
class Probe:
    """What one variant's probe process returned."""

    framework: str
    variant: str
    precision: str = DEFAULT_PRECISION
    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # workload -> name -> array
    errors: dict[str, str] = field(default_factory=dict)  # workload -> why it has no arrays
    skipped: dict[str, str] = field(default_factory=dict)  # workload -> why the adapter cannot do this precision
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return label(self.framework, self.variant)


def run_probe(framework: str, variant: str, workloads: list[str], python: str, threads: int = 1,
              seed: int = 0, steps: int = STEPS, timeout_s: float = 900.0, adapter: str | None = None,
              precision: str = DEFAULT_PRECISION, layers: bool = True, device: str = "cpu") -> Probe:
    """Probe one variant on `workloads` in `precision`, in a child run by `python` (`adapter`
    overrides the registry's "module:Class", for tests); `layers`: also layer by layer (without:
    the whole model, its inference path and its first steps)."""
    result = Probe(framework, variant, precision)
    with scratch.folder("probe", framework) as tmp:
        request = Path(tmp) / "request.json"
        info = FRAMEWORKS.get(framework)
        request.write_text(json.dumps({"framework": framework, "variant": variant, "workloads": workloads,
                                       "adapter": adapter or FRAMEWORKS[framework].adapter, "threads": threads,
                                       "seed": seed, "steps": steps, "precision": precision, "layers": layers,
                                       "device": device,
                                       "inference_only": bool(info and variant in info.inference_only)}))
        try:
            proc = subprocess.run([python, "-m", "harness.probe", str(request), tmp], cwd=child_code_root(),
                                  env=child_env(framework, variant, device, threads), capture_output=True,
                                  text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            result.errors = {w: f"probe took longer than {timeout_s:g} s" for w in workloads}
            return result
        meta_path = Path(tmp) / "meta.json"
        if proc.returncode != 0 or not meta_path.exists():
            tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
            result.errors = {w: f"probe exited with code {proc.returncode}:\n{tail}" for w in workloads}
            return result
        meta = json.loads(meta_path.read_text())
        result.errors, result.versions, result.skipped = meta["errors"], meta["versions"], meta.get("skipped", {})
        for workload in workloads:
            path = Path(tmp) / f"{workload}.npz"
            if path.exists():
                with np.load(path) as data:
                    result.arrays[workload] = {k: data[k] for k in data.files}
    return result


def _layer_name(spec, cut: int) -> str:
    layer = spec.layers[cut - 1]
    detail = {"dense": f" {layer.units}", "conv2d": f" {layer.kernel}x{layer.kernel}x{layer.filters}",
              "maxpool": f" {layer.pool}"}.get(layer.kind, "")
    return f"layer {cut} ({layer.kind}{detail})"


def model_problems(probe: Probe, workload: str, seed: int = 0) -> list[str]:
    """Parameter count and layer-by-layer forward output against the NumPy reference (float32),
    within the probe's precision's bounds (adapters.numerics.forward_bounds): below the upper one
    at every layer, and, for a reduced precision, the whole model's output above the lower one (an
    adapter that ignores the precision stays as close as float32). Nothing for a precision the
    adapter skips (`probe.skipped`)."""
    where = f"{probe.label} {workload}" + ("" if probe.precision == DEFAULT_PRECISION else f" {probe.precision}")
    if workload in probe.errors:
        return [f"{where}: could not be probed: {probe.errors[workload]}"]
    if workload in probe.skipped:
        return []
    tolerance = forward_bounds(probe.precision, FORWARD_TOLERANCE)[1]
    spec, arrays = get_workload(workload), probe.arrays[workload]
    problems = []
    if int(arrays["param_count"]) != spec.param_count():
        problems.append(f"{where}: {int(arrays['param_count'])} parameters; the spec has {spec.param_count()}")
    x = reference.forward_batch(spec, seed)
    expected_all = reference.activations(spec, spec.init_weights(seed), x)
    # An inference-only variant (keras:*-call) is probed on its inference path alone (no layers, no
    # losses): its layers and its training are those of the variant it calls into, probed as that one.
    # A probe without layers (run_probe(layers=False)) checks the whole model alone.
    for cut in cut_points(spec) if bool(arrays["layers_probed"]) else []:
        expected = expected_all[cut - 1].reshape(len(x), -1)
        got = arrays[f"layer{cut}"].reshape(len(x), -1) if arrays[f"layer{cut}"].size == expected.size else None
        if got is None:
            problems.append(f"{where}: {_layer_name(spec, cut)} gave shape {arrays[f'layer{cut}'].shape}; "
                            f"the reference has {expected.shape}")
            break
        scale = max(1.0, float(np.abs(expected).max()))
        diff = np.abs(got - expected)
        if not diff.max() <= tolerance * scale:
            sample, unit = np.unravel_index(int(np.nanargmax(np.nan_to_num(diff, nan=np.inf))), diff.shape)
            problems.append(f"{where}: {_layer_name(spec, cut)} output differs from the NumPy reference by "
                            f"up to {diff.max():.3g} (sample {sample}, unit {unit}; tolerance "
                            f"{tolerance * scale:.3g})")
            break  # later layers inherit the difference; the first one is the culprit
    inferred = arrays.get("inference")
    if inferred is None or inferred.shape != expected_all[-1].shape:
        problems.append(f"{where}: the inference path gave {'nothing' if inferred is None else inferred.shape}; "
                        f"the reference has {expected_all[-1].shape}")
    else:
        problem = forward_problem(reference.relative_error(expected_all[-1], inferred), probe.precision,
                                  FORWARD_TOLERANCE)
        if problem:
            problems.append(f"{where}: the inference path's outputs {problem}")
    return problems


def loss_problems(probes: list[Probe], workload: str, seed: int = 0) -> list[str]:
    """First-step loss against the reference; later steps against the median of all probes (all
    in one precision)."""
    spec = get_workload(workload)
    precisions = {p.precision for p in probes}
    if len(precisions) > 1:
        raise ValueError(f"probes in several precisions ({', '.join(sorted(precisions))}) cannot be compared")
    precision = precisions.pop() if precisions else DEFAULT_PRECISION
    suffix = "" if precision == DEFAULT_PRECISION else f" {precision}"
    losses = {p.label + suffix: p.arrays[workload]["losses"] for p in probes
              if workload in p.arrays and "losses" in p.arrays[workload]}  # inference-only variants have none
    if not losses:
        return []
    first_rtol = first_loss_tolerance(precision)
    x, y = reference.probe_batches(spec, seed, 1)[0]
    first = reference.loss(spec, reference.forward(spec, spec.init_weights(seed), x), y)
    problems = []
    for name, values in losses.items():
        if not abs(values[0] - first) <= first_rtol * abs(first):
            problems.append(f"{name} {workload}: step 1 loss {values[0]:.7g}; the NumPy reference gives "
                            f"{first:.7g} (difference {abs(values[0] - first):.3g})")
    if loss_tolerance(2, precision) is None:
        return problems
    steps = min(len(v) for v in losses.values())
    median = np.median(np.stack([v[:steps] for v in losses.values()]), axis=0)
    allowed = np.array([loss_tolerance(step, precision) for step in range(2, steps + 1)])
    for name, values in losses.items():
        rel = np.abs(values[:steps] - median) / np.abs(median)
        bad = np.flatnonzero(~(rel[1:] <= allowed))  # a NaN loss is a problem too
        if bad.size:
            step = int(bad[0]) + 1
            problems.append(f"{name} {workload}: step {step + 1} loss {values[step]:.7g}; the median of "
                            f"{len(losses)} variants is {median[step]:.7g} (relative difference "
                            f"{rel[step]:.3g} > {allowed[step - 1]:.2g})")
    return problems
