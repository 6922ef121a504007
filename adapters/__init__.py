"""Registry of framework adapters: lazy "module:Class" strings, imported only inside a trial's
child process, so that a user needs only the frameworks they run.

A framework variant runs either in the main environment (the interpreter running bench.py, with
requirements.txt) or in an isolated one declared here with pinned packages (MXNet and Theano need
a NumPy older than TensorFlow and JAX accept); `harness.envs` creates and reuses those.
Standard library only: this module is imported in every child environment."""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass, field
from typing import Mapping

DEFAULT_VARIANT = "default"
MAIN_ENVIRONMENT = "main"


@dataclass(frozen=True)
class Environment:
    """An isolated virtual environment: pinned pip requirements, and the distributions whose
    versions identify it (shown by `bench.py env list` and written into every record)."""

    name: str
    requirements: tuple[str, ...]
    key_packages: tuple[str, ...]
    description: str = ""


ENVIRONMENTS: dict[str, Environment] = {
    env.name: env
    for env in (
        Environment(
            name="mxnet",
            requirements=("mxnet==1.9.1", "numpy==1.23.5"),
            key_packages=("mxnet", "numpy"),
            description="MXNet 1.9.1, the last release (retired upstream); imports only with numpy < 1.24",
        ),
        Environment(
            name="theano",
            requirements=("theano==1.0.5", "numpy==1.23.5", "scipy==1.10.1"),
            key_packages=("theano", "numpy", "scipy"),
            description="Theano 1.0.5, the last release; imports only with numpy < 1.24",
        ),
    )
}


@dataclass(frozen=True)
class FrameworkInfo:
    name: str
    adapter: str  # "module:Class"
    variants: tuple[str, ...]
    modules: Mapping[str, tuple[str, ...]]  # variant -> modules that must be importable
    distributions: tuple[str, ...]  # distribution names whose versions identify it
    env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # variant -> env before import
    description: str = ""
    default_variants: tuple[str, ...] = ()  # run when the framework is named without a variant
    environment: Mapping[str, str] = field(default_factory=dict)  # variant -> ENVIRONMENTS name; else main
    inference_only: tuple[str, ...] = ()  # variants that are an inference path alone (skipped in training)

    @property
    def defaults(self) -> tuple[str, ...]:
        return self.default_variants or self.variants


KERAS_BACKENDS = ("tensorflow", "torch", "jax")
KERAS_CALL_VARIANTS = tuple(f"{b}-call" for b in KERAS_BACKENDS)  # inference as model(x, training=False)
KERAS_VARIANTS = KERAS_BACKENDS + ("tensorflow-jit", "torch-jit", "jax-nojit") + tuple(
    f"{b}-onbatch" for b in KERAS_BACKENDS) + KERAS_CALL_VARIANTS

FRAMEWORKS: dict[str, FrameworkInfo] = {
    info.name: info
    for info in (
        FrameworkInfo(
            name="pytorch",
            adapter="adapters.pytorch:PyTorchAdapter",
            variants=(DEFAULT_VARIANT, "compile"),
            modules={DEFAULT_VARIANT: ("torch",), "compile": ("torch",)},
            distributions=("torch",),
            description="PyTorch eager mode, torch.optim; :compile wraps the model in torch.compile",
            default_variants=(DEFAULT_VARIANT,),
        ),
        FrameworkInfo(
            name="tensorflow",
            adapter="adapters.tensorflow:TensorFlowAdapter",
            variants=(DEFAULT_VARIANT, "xla"),
            modules={DEFAULT_VARIANT: ("tensorflow",), "xla": ("tensorflow",)},
            distributions=("tensorflow", "tensorflow-cpu"),
            description="native TensorFlow: variables, GradientTape, tf.function, fused raw-op optimizers; "
                        ":xla compiles the step with jit_compile=True",
            default_variants=(DEFAULT_VARIANT,),
        ),
        FrameworkInfo(
            name="keras",
            adapter="adapters.keras:KerasAdapter",
            variants=KERAS_VARIANTS,
            modules={v: ("keras", v.partition("-")[0]) for v in KERAS_VARIANTS},
            distributions=("keras",),
            env={v: {"KERAS_BACKEND": v.partition("-")[0]} for v in KERAS_VARIANTS},
            description="Keras 3, backend as the variant, trained as Model.fit trains and predicting as "
                        "Model.predict does, Keras's default jit_compile; -jit / -nojit force it on / off; "
                        "-onbatch trains with train_on_batch; -call predicts with model(x, training=False)",
            default_variants=KERAS_BACKENDS,
            inference_only=KERAS_CALL_VARIANTS,
        ),
        FrameworkInfo(
            name="jax",
            adapter="adapters.jax:JaxAdapter",
            variants=(DEFAULT_VARIANT,),
            modules={DEFAULT_VARIANT: ("jax", "optax")},
            distributions=("jax",),
            description="JAX with optax, the whole train step under jax.jit",
        ),
        FrameworkInfo(
            name="mxnet",
            adapter="adapters.mxnet:MXNetAdapter",
            variants=(DEFAULT_VARIANT, "hybrid"),
            modules={DEFAULT_VARIANT: ("mxnet",), "hybrid": ("mxnet",)},
            distributions=("mxnet",),
            description="MXNet Gluon, imperative; :hybrid hybridizes with static_alloc and static_shape "
                        "(own environment)",
            environment={DEFAULT_VARIANT: "mxnet", "hybrid": "mxnet"},
            default_variants=(DEFAULT_VARIANT,),  # hybridize is a fast path, named like pytorch:compile
        ),
        FrameworkInfo(
            name="theano",
            adapter="adapters.theano:TheanoAdapter",
            variants=(DEFAULT_VARIANT,),
            modules={DEFAULT_VARIANT: ("theano",)},
            distributions=("theano",),
            description="Theano 1.0.5, one compiled function per step, hand-written optimizer updates "
                        "(own environment)",
            environment={DEFAULT_VARIANT: "theano"},
        ),
    )
}


def environment_of(framework: str, variant: str) -> Environment | None:
    """The isolated environment a variant runs in, or None for the main one (also for a framework
    this process has not registered: a test's stand-in adapter, run by another process such as a
    Ray worker)."""
    info = FRAMEWORKS.get(framework)
    name = info.environment.get(variant) if info else None
    return ENVIRONMENTS[name] if name else None


def environment_versions(framework: str, variant: str) -> dict[str, str]:
    """Versions of the running interpreter's key packages for this variant (call in the child)."""
    if framework not in FRAMEWORKS:  # a test's stand-in adapter
        return {}
    env = environment_of(framework, variant)
    versions = {}
    for dist in env.key_packages if env else FRAMEWORKS[framework].distributions:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def label(framework: str, variant: str) -> str:
    return framework if variant == DEFAULT_VARIANT else f"{framework}:{variant}"


def all_labels() -> list[str]:
    return [label(f.name, v) for f in FRAMEWORKS.values() for v in f.variants]


def default_selection() -> list[tuple[str, str]]:
    """What a run without -f covers: each framework's default variants."""
    return [(f.name, v) for f in FRAMEWORKS.values() for v in f.defaults]


def parse_selection(value: str) -> list[tuple[str, str]]:
    """'keras:torch' -> that variant; 'keras' -> its default variants; 'keras:all' -> all of its
    variants; 'all' -> every variant of every framework."""
    if value == "all":
        return [(f.name, v) for f in FRAMEWORKS.values() for v in f.variants]
    name, _, variant = value.partition(":")
    info = FRAMEWORKS.get(name)
    if info is None or (variant and variant != "all" and variant not in info.variants):
        allowed = ["all"] + sorted(set(FRAMEWORKS) | set(all_labels()) | {f"{n}:all" for n in FRAMEWORKS})
        raise ValueError(f"unknown framework {value!r}; choose from: {', '.join(allowed)}")
    chosen = info.variants if variant == "all" else (variant,) if variant else info.defaults
    return [(name, v) for v in chosen]


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
