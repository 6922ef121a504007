"""Registry of framework adapters: lazy "module:Class" strings, imported only inside a trial's
child process, so that a user needs only the frameworks they run."""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass, field
from typing import Mapping

DEFAULT_VARIANT = "default"


@dataclass(frozen=True)
class FrameworkInfo:
    name: str
    adapter: str  # "module:Class"
    variants: tuple[str, ...]
    modules: Mapping[str, tuple[str, ...]]  # variant -> modules that must be importable
    distributions: tuple[str, ...]  # distribution names whose versions identify it
    env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # variant -> env before import
    description: str = ""


FRAMEWORKS: dict[str, FrameworkInfo] = {
    info.name: info
    for info in (
        FrameworkInfo(
            name="pytorch",
            adapter="adapters.pytorch:PyTorchAdapter",
            variants=(DEFAULT_VARIANT,),
            modules={DEFAULT_VARIANT: ("torch",)},
            distributions=("torch",),
            description="PyTorch eager mode, torch.optim",
        ),
        FrameworkInfo(
            name="tensorflow",
            adapter="adapters.tensorflow:TensorFlowAdapter",
            variants=(DEFAULT_VARIANT,),
            modules={DEFAULT_VARIANT: ("tensorflow",)},
            distributions=("tensorflow", "tensorflow-cpu"),
            description="native TensorFlow: variables, GradientTape, tf.function, fused raw-op optimizers",
        ),
        FrameworkInfo(
            name="keras",
            adapter="adapters.keras:KerasAdapter",
            variants=("tensorflow", "torch", "jax"),
            modules={"tensorflow": ("keras", "tensorflow"), "torch": ("keras", "torch"), "jax": ("keras", "jax")},
            distributions=("keras",),
            env={backend: {"KERAS_BACKEND": backend} for backend in ("tensorflow", "torch", "jax")},
            description="Keras 3, backend as the variant, train_on_batch",
        ),
    )
}


def label(framework: str, variant: str) -> str:
    return framework if variant == DEFAULT_VARIANT else f"{framework}:{variant}"


def all_labels() -> list[str]:
    return [label(f.name, v) for f in FRAMEWORKS.values() for v in f.variants]


def parse_selection(value: str) -> list[tuple[str, str]]:
    """'keras:torch' -> [('keras', 'torch')]; 'keras' -> every keras variant."""
    name, _, variant = value.partition(":")
    info = FRAMEWORKS.get(name)
    if info is None or (variant and variant not in info.variants):
        allowed = sorted(set(FRAMEWORKS) | set(all_labels()))
        raise ValueError(f"unknown framework {value!r}; choose from: {', '.join(allowed)}")
    return [(name, v) for v in ((variant,) if variant else info.variants)]


def missing_modules(framework: str, variant: str) -> list[str]:
    """Modules this variant needs that this interpreter cannot import (nothing is imported)."""
    return [m for m in FRAMEWORKS[framework].modules[variant] if importlib.util.find_spec(m) is None]


def installed_version(framework: str) -> str | None:
    for dist in FRAMEWORKS[framework].distributions:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def load_adapter_class(path: str) -> type:
    module, _, cls = path.partition(":")
    return getattr(importlib.import_module(module), cls)
