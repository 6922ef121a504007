"""PyTorch: eager mode, or (variant "compile") the model wrapped in torch.compile.

Precision as PyTorch's documentation does it: bf16 / fp16 cast the module and the inputs
(`module.to(dtype)`, the optimizer's state follows the parameters); mixed-bf16 / mixed-fp16 run the
forward pass and the loss under `torch.autocast`, mixed-fp16 with `torch.amp.GradScaler` (its
scale is checked on the host at every step, as in PyTorch's AMP recipe). The loss is computed in
float32 in every precision."""
from __future__ import annotations

import contextlib
import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from adapters.base import Adapter, SkipTrial, hwio_to_oihw, split_batches, split_inputs
from adapters.numerics import Numerics
from workloads.spec import WorkloadSpec


class _FlattenHWC(nn.Module):
    """Flatten NCHW activations in (h, w, c) order, the spec's order, so shared weights fit."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).flatten(1)


def build_module(spec: WorkloadSpec) -> nn.Sequential:
    """The spec's model, flattening in the spec's (h, w, c) order: unlike MXNet and Theano, PyTorch
    trained the CNN slower when flattening NCHW as it lies with the next kernel reordered
    (adapters.base.channels_first_weights): 0.85x, measured with `bench.py ab` (see the README)."""
    layers: list[nn.Module] = []
    for layer, shape_in in zip(spec.layers, spec.shapes()):
        if layer.kind == "dense":
            layers.append(nn.Linear(shape_in[0], layer.units))
        elif layer.kind == "conv2d":
            layers.append(nn.Conv2d(shape_in[-1], layer.filters, layer.kernel))
        elif layer.kind == "maxpool":
            layers.append(nn.MaxPool2d(layer.pool))
        elif layer.kind == "flatten":
            layers.append(_FlattenHWC())
        elif layer.kind == "dropout":
            layers.append(nn.Dropout(layer.rate))
        else:
            layers.append({"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[layer.kind]())
    return nn.Sequential(*layers)


class EpsHatAdam(torch.optim.Adam):
    """torch.optim.Adam taking the spec's "epsilon-hat" step (Kingma & Ba, the form TensorFlow,
    Keras, MXNet and Theano use): p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps).
    PyTorch adds its eps to the bias-corrected sqrt(v) instead, which is the same step for an eps of
    eps / sqrt(1 - b2^t): that is what each step is given (the fused kernels run unchanged)."""

    def __init__(self, params, lr: float, betas: tuple[float, float], eps: float) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps)
        self.eps_hat, self.t = eps, 0

    def step(self, closure=None):  # type: ignore[override]
        self.t += 1
        for group in self.param_groups:
            group["eps"] = self.eps_hat / math.sqrt(1 - group["betas"][1] ** self.t)
        return super().step(closure)


def load_weights(module: nn.Sequential, weights: Sequence[np.ndarray]) -> None:
    it = iter(weights)
    with torch.no_grad():
        for layer in module:
            if isinstance(layer, nn.Linear):
                layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(next(it).T)))
                layer.bias.copy_(torch.from_numpy(next(it)))
            elif isinstance(layer, nn.Conv2d):
                layer.weight.copy_(torch.from_numpy(hwio_to_oihw(next(it))))
                layer.bias.copy_(torch.from_numpy(next(it)))


def apply_gpu_policies(numerics: Numerics) -> tuple[str, str]:
    """--tf32 and --autotune in PyTorch (also for Keras on torch); returns how, for the record.
    PyTorch's defaults differ between matmuls (TF32 off) and cuDNN convolutions (TF32 on): both
    follow --tf32 here."""
    torch.backends.cuda.matmul.allow_tf32 = numerics.tf32
    torch.backends.cudnn.allow_tf32 = numerics.tf32
    torch.backends.cudnn.benchmark = numerics.autotune
    return "torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32", "torch.backends.cudnn.benchmark"


class PyTorchAdapter(Adapter):
    framework = "pytorch"

    def setup(self) -> dict[str, Any]:
        torch.set_num_threads(self.threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set (only possible before any parallel work)
            pass
        if self.device == "auto":
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cuda" and not torch.cuda.is_available():
            raise SkipTrial("no CUDA device visible to PyTorch")
        self.dev = torch.device(self.device)
        gpu_policies = apply_gpu_policies(self.numerics)
        self.dtype = getattr(torch, self.precision.compute)
        if self.precision.mixed:
            mechanism = f"torch.autocast({self.dev.type!r}, dtype=torch.{self.precision.compute}), float32 parameters"
            if self.precision.loss_scaling:
                mechanism += f", torch.amp.GradScaler({self.dev.type!r}) (dynamic loss scaling)"
        elif self.precision.reduced:
            mechanism = f"module.to(torch.{self.precision.compute}) and inputs in it; loss in float32"
        else:
            mechanism = "float32"
        return {
            "intra_op_threads": torch.get_num_threads(),
            "inter_op_threads": torch.get_num_interop_threads(),
            "mode": "torch.compile (inductor, default mode; evaluation runs eager)"
                    if self.variant == "compile" else "eager",
            **self.numerics.applied(mechanism, self.device, *gpu_policies),
        }

    def _autocast(self) -> contextlib.AbstractContextManager:
        """The mixed precisions' autocast region (forward pass and loss); nothing otherwise."""
        if self.precision.mixed:
            return torch.autocast(self.dev.type, dtype=self.dtype)
        return contextlib.nullcontext()

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__}

    def build(self, spec: WorkloadSpec, weights: Sequence[np.ndarray]) -> None:
        self.spec = spec
        self.channels_first = len(spec.input_shape) == 3
        self.model = build_module(spec)
        load_weights(self.model, weights)
        params_dtype = getattr(torch, self.precision.params)
        self.model.to(self.dev, dtype=params_dtype).train()
        self.input_dtype = params_dtype  # pure formats feed the model its own dtype; autocast casts the rest
        self.scaler = torch.amp.GradScaler(self.dev.type) if self.precision.loss_scaling else None
        # Evaluation uses the eager module (same parameters), so test batches of another shape
        # cause no recompilation; only training is what the variant measures.
        if self.variant == "compile":
            torch.compiler.reset()  # compile as in a fresh process, whatever was built before
        self.train_model = torch.compile(self.model) if self.variant == "compile" else self.model
        opt = spec.optimizer
        if opt.name == "adam":
            self.optimizer = EpsHatAdam(self.model.parameters(), lr=opt.learning_rate,
                                        betas=(opt.beta1, opt.beta2), eps=opt.eps)
        else:
            self.optimizer = torch.optim.SGD(self.model.parameters(), lr=opt.learning_rate)
        if spec.loss == "softmax_cross_entropy":
            self.loss_fn = lambda logits, y: F.cross_entropy(logits.float(), y)
        else:
            self.loss_fn = lambda logits, y: F.binary_cross_entropy_with_logits(logits[:, 0].float(), y)

    def param_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def _inputs(self, x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(x))
        if self.channels_first:
            t = t.permute(0, 3, 1, 2).contiguous()
        return t.to(self.dev, dtype=self.input_dtype)

    def stage(self, x: np.ndarray, y: np.ndarray) -> None:
        self.batches = [(self._inputs(xb), torch.from_numpy(yb).to(self.dev))
                        for xb, yb in split_batches(x, y, self.spec.batch_size)]
        self.n_batches = len(self.batches)

    def train_step(self, i: int) -> torch.Tensor:
        x, y = self.batches[i]
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss = self.loss_fn(self.train_model(x), y)
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        return loss.detach()

    def synchronize(self) -> None:
        if self.dev.type == "cuda":
            torch.cuda.synchronize()

    def loss_values(self, handles: Sequence[torch.Tensor]) -> list[float]:
        if not handles:
            return []
        return torch.stack(list(handles)).cpu().tolist()

    def stage_inference(self, x: np.ndarray) -> dict[str, Any]:
        size = self.spec.batch_size
        self.batches = [self._inputs(xb) for xb in split_inputs(x, size)]
        self.n_batches = len(self.batches)
        self.model.eval()
        # The compiled variant compiles the module for inference (a graph of its own: no autograd).
        self.infer_model = torch.compile(self.model) if self.variant == "compile" else self.model
        mode = "torch.compile (inductor, default mode)" if self.variant == "compile" else "eager"
        return {"inference": f"{mode}, model.eval() under torch.inference_mode()"}

    def infer(self, i: int) -> torch.Tensor:
        with torch.inference_mode(), self._autocast():
            return self.infer_model(self.batches[i])

    def outputs(self, handle: torch.Tensor) -> np.ndarray:
        return handle.float().cpu().numpy()

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.model.eval()
        with torch.no_grad(), self._autocast():
            out = self.model(self._inputs(x)).float().cpu().numpy()
        self.model.train()
        return out

    def device_memory_peak(self) -> int | None:
        return int(torch.cuda.max_memory_allocated()) if self.dev.type == "cuda" else None
