"""The workload registry and the arrays each workload trains on."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workloads import datasets
from workloads.mnist_cnn import SPEC as MNIST_CNN
from workloads.mnist_mlp import SPEC as MNIST_MLP
from workloads.spec import PROFILES, WorkloadSpec
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


@dataclass(frozen=True)
class TrainingData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def training_data(spec: WorkloadSpec, dataset: str, profile: str, data_dir: str | Path | None = None,
                  cache_dir: str | Path | None = None, download: bool = True) -> TrainingData:
    """Float32 inputs shaped like `spec.input_shape` and integer labels (float32 0/1 for xor)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose from: {', '.join(PROFILES)}")
    if spec.dataset == "xor":
        x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
        y = np.array([0, 1, 1, 0], dtype=np.float32)
        return TrainingData(x, y, x, y)
    if dataset not in IMAGE_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from: {', '.join(IMAGE_DATASETS)}")
    arrays = datasets.load(dataset, data_dir=data_dir, cache_dir=cache_dir, download=download)
    n_train = spec.train_samples.get(profile)
    n_test = spec.test_samples.get(profile)

    def images(a: np.ndarray, n: int | None) -> np.ndarray:
        a = a[:n] if n else a
        return (a.astype(np.float32) / 255.0).reshape((len(a),) + tuple(spec.input_shape))

    def labels(a: np.ndarray, n: int | None) -> np.ndarray:
        return (a[:n] if n else a).astype(np.int64)

    return TrainingData(
        images(arrays["train_images"], n_train), labels(arrays["train_labels"], n_train),
        images(arrays["test_images"], n_test), labels(arrays["test_labels"], n_test),
    )
