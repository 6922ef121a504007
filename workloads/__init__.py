"""The workload registry and the arrays each workload trains on."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workloads import datasets
from workloads.mnist_cnn import SPEC as MNIST_CNN
from workloads.mnist_mlp import SPEC as MNIST_MLP
from workloads.profiles import PROFILES
from workloads.spec import WorkloadSpec
from workloads.xor import SPEC as XOR

WORKLOADS: dict[str, WorkloadSpec] = {spec.name: spec for spec in (XOR, MNIST_MLP, MNIST_CNN)}
IMAGE_DATASETS = datasets.dataset_names()


def get_workload(name: str) -> WorkloadSpec:
    try:
        return WORKLOADS[name]
    except KeyError:
        raise ValueError(f"unknown workload {name!r}; choose from: {', '.join(WORKLOADS)}") from None


def dataset_for(spec: WorkloadSpec, image_dataset: str) -> str:
    """The dataset a workload trains on when the run asked for `image_dataset`."""
    return image_dataset if spec.dataset == "image" else spec.dataset


CONVERT_CHUNK = 8192  # samples converted to float32 at a time (no uint8 temporary of a whole epoch)


@dataclass(frozen=True)
class TrainingData:
    """A workload's samples as stored (MNIST: uint8 pixels, a quarter of float32's size) with integer
    labels. Inputs become float32, scaled and shaped like `input_shape`, only for what is staged or
    evaluated, so the trial's process holds no float32 copy of the whole set besides the one epoch
    being staged: what its memory shows beyond that is the framework's."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_shape: tuple[int, ...] = ()
    scale: float = 1.0

    def inputs(self, x: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """float32 inputs of `x[rows]`, converted in chunks."""
        index = np.arange(len(x))[rows]
        out = np.empty((len(index),) + tuple(self.input_shape), np.float32)
        flat = out.reshape(len(index), -1)
        for start in range(0, len(index), CONVERT_CHUNK):
            part = x[index[start:start + CONVERT_CHUNK]]
            np.multiply(part.reshape(len(part), -1), np.float32(self.scale), out=flat[start:start + len(part)],
                        casting="unsafe")
        return out

    def epoch(self, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One epoch of training samples in `order`, as float32 inputs and labels."""
        return self.inputs(self.x_train, order), self.y_train[order]


def training_data(spec: WorkloadSpec, dataset: str, profile: str, data_dir: str | Path | None = None,
                  cache_dir: str | Path | None = None, download: bool = True) -> TrainingData:
    """Float32 inputs shaped like `spec.input_shape` and integer labels (float32 0/1 for xor)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose from: {', '.join(PROFILES)}")
    if spec.dataset == "xor":
        x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
        y = np.array([0, 1, 1, 0], dtype=np.float32)
        return TrainingData(x, y, x, y, tuple(spec.input_shape))
    if dataset not in IMAGE_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from: {', '.join(IMAGE_DATASETS)}")
    arrays = datasets.load(dataset, data_dir=data_dir, cache_dir=cache_dir, download=download)
    n_train = spec.train_samples.get(profile)
    n_test = spec.test_samples.get(profile)

    def first(a: np.ndarray, n: int | None) -> np.ndarray:
        return a[:n] if n else a

    return TrainingData(first(arrays["train_images"], n_train), first(arrays["train_labels"], n_train).astype(np.int64),
                        first(arrays["test_images"], n_test), first(arrays["test_labels"], n_test).astype(np.int64),
                        tuple(spec.input_shape), 1 / 255)
