"""Deliberately wrong adapters: the equivalence checks must catch and name each mistake."""
from __future__ import annotations

import numpy as np
import torch

from adapters.pytorch import PyTorchAdapter


class TransposedKernel(PyTorchAdapter):
    """Loads the MLP's second (square, 512x512) dense kernel transposed: every shape still fits."""

    def build(self, spec, weights):
        weights = list(weights)
        if len(weights) > 2 and weights[2].ndim == 2 and weights[2].shape[0] == weights[2].shape[1]:
            weights[2] = np.ascontiguousarray(weights[2].T)
        return super().build(spec, weights)


class DoubleLearningRate(PyTorchAdapter):
    """Right model, wrong optimizer setting: only the training steps can show it."""

    def build(self, spec, weights):
        result = super().build(spec, weights)
        for group in self.optimizer.param_groups:
            group["lr"] *= 2
        return result


class PlainTorchAdam(PyTorchAdapter):
    """PyTorch's own Adam form (eps added to the bias-corrected sqrt(v)), not the spec's epsilon-hat
    one: the same model, steps that drift apart over tens of steps."""

    def build(self, spec, weights):
        result = super().build(spec, weights)
        if spec.optimizer.name == "adam":
            opt = spec.optimizer
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=opt.learning_rate,
                                              betas=(opt.beta1, opt.beta2), eps=opt.eps)
        return result


class FreshInferenceModel(PyTorchAdapter):
    """Right training model, but inference runs a module built anew (PyTorch's own random
    initialisation), not the one the spec's weights were loaded into: only the inference path shows it."""

    def stage_inference(self, x):
        from adapters.pytorch import build_module

        settings = super().stage_inference(x)
        self.infer_model = build_module(self.spec).to(self.dev).eval()
        return settings


class IgnoresPrecision(PyTorchAdapter):
    """Accepts any --precision and runs float32 whatever was asked."""

    def __init__(self, variant, device, threads, numerics=None):
        from adapters.numerics import Numerics

        super().__init__(variant, device, threads, Numerics())
