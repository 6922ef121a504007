"""The numeric settings of a trial, the same rules for every framework: the precision it trains and
infers in (--precision), whether float32 matrix products may use TF32 on a GPU (--tf32), and the
one convolution-autotuning policy (--autotune). Standard library only (imported in every child).

Each adapter maps a precision to its framework's own mechanism and returns, for the record, what it
applied (e.g. Keras's resolved dtype policy); a combination a framework cannot do is a SkipTrial
with the reason. The equivalence checks' tolerances follow from the compute format's unit roundoff.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Precision:
    name: str
    compute: str  # dtype of the matrix products, convolutions and activations
    params: str  # dtype the trained parameters (and the optimizer's state) are kept in
    loss_scaling: bool  # float16 compute on float32 parameters: the framework's own dynamic loss scaling
    unit_roundoff: float  # of the compute format: 2^-(significand bits)
    description: str

    @property
    def reduced(self) -> bool:
        return self.compute != "float32"

    @property
    def mixed(self) -> bool:
        return self.params != self.compute


PRECISIONS: dict[str, Precision] = {p.name: p for p in (
    Precision("fp32", "float32", "float32", False, 2.0 ** -24, "float32 everywhere"),
    Precision("bf16", "bfloat16", "bfloat16", False, 2.0 ** -8,
              "bfloat16 everywhere: parameters, optimizer state and compute (no float32 master copy)"),
    Precision("mixed-bf16", "bfloat16", "float32", False, 2.0 ** -8,
              "bfloat16 compute on float32 parameters (the framework's mixed-precision mode); loss and "
              "softmax in float32"),
    Precision("fp16", "float16", "float16", False, 2.0 ** -11,
              "float16 everywhere, no loss scaling (no float32 master copy)"),
    Precision("mixed-fp16", "float16", "float32", True, 2.0 ** -11,
              "float16 compute on float32 parameters with the framework's own dynamic loss scaling"),
)}
DEFAULT_PRECISION = "fp32"
TF32_SETTINGS = ("off", "on")
AUTOTUNE_SETTINGS = ("on", "off")

# The relative error (to the largest reference value) of a forward pass allowed, in units of the
# compute format's unit roundoff: each layer rounds its inputs and weights to the format, the error
# grows with depth and with the sums of the dense layers. Measured on the three workloads with every
# default variant in bf16, mixed-bf16, fp16 and mixed-fp16: 0.2-1.9 u at every layer; 16 u leaves
# room and is far below what a wrong layer gives. float32 keeps its own tolerance
# (workloads.reference.FORWARD_TOLERANCE).
FORWARD_TOLERANCE_ULPS = 16.0
# An adapter that claims a reduced precision but computes in float32 lands about 1e-7 from the
# float32 reference, 4e-5 u of bfloat16 and 3e-4 u of float16; an output closer than this many
# units of roundoff (10x under the least measured, 0.2 u) means the precision was not applied.
APPLIED_FLOOR_ULPS = 0.02


def get_precision(name: str) -> Precision:
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; choose from: {', '.join(PRECISIONS)}")
    return PRECISIONS[name]


def forward_bounds(name: str, float32_tolerance: float) -> tuple[float, float]:
    """(lowest, highest) relative error of a forward pass in this precision against the float32
    NumPy reference: a float32 path may be exact, a reduced one must show its format's rounding."""
    p = get_precision(name)
    if not p.reduced:
        return 0.0, float32_tolerance
    return APPLIED_FLOOR_ULPS * p.unit_roundoff, FORWARD_TOLERANCE_ULPS * p.unit_roundoff


def forward_problem(error: float, precision: str, float32_tolerance: float) -> str | None:
    """Why a forward pass `error` away from the float32 reference (relative to its largest value)
    is wrong for this precision, as the end of a sentence about the outputs, or None."""
    low, high = forward_bounds(precision, float32_tolerance)
    if not error <= high:
        return (f"differ from the NumPy float32 reference by {error:.3g} (relative to the largest output); "
                f"{precision} allows up to {high:.3g}")
    if error < low:
        return (f"match the NumPy float32 reference to {error:.3g}, closer than {precision}'s rounding allows "
                f"(at least {low:.3g}): the precision was not applied")
    return None


@dataclass(frozen=True)
class Numerics:
    """What an adapter is told besides its variant, device and threads."""

    precision: str = DEFAULT_PRECISION
    tf32: bool = False  # float32 matmuls and convolutions may run as TF32 on GPUs that have it
    autotune: bool = True  # convolution algorithms chosen by timing them (cuDNN, XLA), where a framework can

    @property
    def format(self) -> Precision:
        return get_precision(self.precision)

    def applied(self, mechanism: str, device: str, tf32_mechanism: str, autotune_mechanism: str) -> dict[str, str]:
        """The record's settings for these numerics: the precision's mechanism as applied, and the
        TF32 and autotuning policies (which act on a GPU only)."""
        def policy(on: bool, how: str) -> str:
            return f"{'on' if on else 'off'} ({how if device == 'cuda' else 'no effect on a CPU'})"

        return {"precision": f"{self.precision}: {mechanism}", "tf32": policy(self.tf32, tf32_mechanism),
                "conv_autotune": policy(self.autotune, autotune_mechanism)}


def numerics_environment(numerics: Numerics, device: str) -> dict[str, str]:
    """Variables set before a framework starts, for a GPU trial (nothing for a CPU one): with TF32
    off, NVIDIA_TF32_OVERRIDE=0, which keeps cuBLAS and cuDNN from TF32 in the whole process
    whatever a framework's own switch says (MXNet has no switch of its own); with autotuning off,
    TensorFlow's and MXNet's cuDNN autotuning and XLA's GPU autotuner (JAX, TensorFlow's XLA), whose
    defaults are on. PyTorch's cudnn.benchmark is set by its adapter."""
    if device == "cpu":
        return {}
    env = {} if numerics.tf32 else {"NVIDIA_TF32_OVERRIDE": "0"}
    if not numerics.autotune:
        env.update({"TF_CUDNN_USE_AUTOTUNE": "0", "MXNET_CUDNN_AUTOTUNE_DEFAULT": "0",
                    "XLA_FLAGS": "--xla_gpu_autotune_level=0"})
    return env
