"""MNIST and Fashion-MNIST from their original IDX files.

Where a file is looked for, in order: the data directory (``--data-dir`` or ``$BENCH_DATA_DIR``),
the cache root (``$BENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/dlbench``, else ``~/.cache/dlbench``), Debian's dataset
packages; then it is downloaded from the canonical mirrors (or ``$BENCH_DATA_MIRRORS``, a
comma-separated list of base URLs) into the cache. Every file is verified
by the SHA-256 of its decompressed IDX payload, so a recompressed copy (Debian's) is accepted and
a corrupted one is refused with a clear error before NumPy ever parses it.
Standard library and NumPy only: this runs in every child environment.
"""
from __future__ import annotations

import gzip
import hashlib
import logging
import os
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.files import write_bytes
from harness.paths import cache_root

log = logging.getLogger(__name__)

ENV_DATA_DIR = "BENCH_DATA_DIR"
ENV_MIRRORS = "BENCH_DATA_MIRRORS"  # comma-separated base URLs that replace the canonical mirrors
DOWNLOAD_TIMEOUT_S = 30


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    folders: tuple[str, ...]  # sub-directory names a data directory may use
    files: dict[str, tuple[str, str]]  # part -> (file name, SHA-256 of decompressed payload)
    mirrors: tuple[str, ...]
    system_dirs: tuple[str, ...] = ()


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist",
        folders=("mnist",),
        files={
            "train_images": ("train-images-idx3-ubyte.gz", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
            "train_labels": ("train-labels-idx1-ubyte.gz", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
            "test_images": ("t10k-images-idx3-ubyte.gz", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
            "test_labels": ("t10k-labels-idx1-ubyte.gz", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
    ),
    "fashion_mnist": DatasetInfo(
        name="fashion_mnist",
        folders=("fashion-mnist", "fashion_mnist"),
        files={
            "train_images": ("train-images-idx3-ubyte.gz", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
            "train_labels": ("train-labels-idx1-ubyte.gz", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
            "test_images": ("t10k-images-idx3-ubyte.gz", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
            "test_labels": ("t10k-labels-idx1-ubyte.gz", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
        },
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        ),
        system_dirs=("/usr/share/datasets/fashion-mnist",),
    ),
}


class DatasetError(RuntimeError):
    """A dataset could not be found, downloaded or verified; the message says where and why."""


class ChecksumError(DatasetError):
    pass


def dataset_names() -> tuple[str, ...]:
    return tuple(DATASETS)


def default_cache_dir() -> Path:
    return cache_root()


def _info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r}; choose from: {', '.join(DATASETS)}") from None


def _payload(raw: bytes) -> bytes:
    """The IDX payload of a file that may or may not be gzip-compressed."""
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def _verified_payload(raw: bytes, expected: str, origin: str) -> bytes:
    try:
        payload = _payload(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise ChecksumError(f"{origin} is corrupted: it cannot be decompressed ({exc})") from None
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected:
        raise ChecksumError(
            f"{origin} is corrupted: SHA-256 of its payload is {actual}, expected {expected}; "
            "delete it or fetch it again"
        )
    return payload


def _candidates(info: DatasetInfo, filename: str, data_dir: Path | None, cache_dir: Path) -> list[Path]:
    stem = filename[:-3] if filename.endswith(".gz") else filename
    dirs: list[Path] = []
    if data_dir is not None:
        dirs += [data_dir / folder for folder in info.folders] + [data_dir]
    dirs.append(cache_dir / info.name)
    dirs += [Path(d) for d in info.system_dirs]
    return [d / name for d in dirs for name in (filename, stem)]


def _download(info: DatasetInfo, filename: str, expected: str, target: Path, mirrors: tuple[str, ...],
              tried: list[str]) -> bytes | None:
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                raw = response.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            tried.append(f"{url} ({getattr(exc, 'reason', exc)})")
            continue
        try:
            payload = _verified_payload(raw, expected, f"download {url}")
        except ChecksumError as exc:
            tried.append(f"{url} ({exc})")
            continue
        write_bytes(target, raw)
        log.info("downloaded %s to %s", url, target)
        return payload
    return None


def fetch_payload(name: str, part: str, data_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                  mirrors: tuple[str, ...] | None = None, download: bool = True) -> bytes:
    """The verified IDX payload of one part ("train_images", ...) of a dataset."""
    info = _info(name)
    filename, expected = info.files[part]
    if data_dir is None and os.environ.get(ENV_DATA_DIR):
        data_dir = os.environ[ENV_DATA_DIR]
    data_path = Path(data_dir) if data_dir is not None else None
    cache_path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    looked = _candidates(info, filename, data_path, cache_path)
    for path in looked:
        if path.is_file():
            return _verified_payload(path.read_bytes(), expected, str(path))
    if mirrors is None:
        configured = os.environ.get(ENV_MIRRORS)
        mirrors = tuple(m.strip() for m in configured.split(",") if m.strip()) if configured else info.mirrors
    tried: list[str] = []
    if download:
        payload = _download(info, filename, expected, cache_path / info.name / filename, mirrors, tried)
        if payload is not None:
            return payload
    hint = f"Set {ENV_DATA_DIR} or --data-dir to a folder holding the IDX files."
    raise DatasetError(
        f"{name}: cannot find {filename}. Looked in: {', '.join(str(p.parent) for p in looked[::2])}. "
        + (f"Tried to download: {'; '.join(tried)}. " if tried else "Download disabled. ")
        + hint
    )


def parse_idx(payload: bytes, origin: str = "IDX data") -> np.ndarray:
    """Decode an IDX file (big-endian header: magic with dtype code and rank, then the dims)."""
    if len(payload) < 4 or payload[0] != 0 or payload[1] != 0 or payload[2] != 0x08:
        raise DatasetError(f"{origin} is not an unsigned-byte IDX file")
    rank = payload[3]
    header = 4 + 4 * rank
    dims = tuple(int.from_bytes(payload[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank))
    expected = header + int(np.prod(dims))
    if len(payload) != expected:
        raise DatasetError(f"{origin}: header says {dims}, which needs {expected} bytes; file has {len(payload)}")
    return np.frombuffer(payload, dtype=np.uint8, offset=header).reshape(dims)


def load(name: str, data_dir: str | Path | None = None, cache_dir: str | Path | None = None,
         mirrors: tuple[str, ...] | None = None, download: bool = True) -> dict[str, np.ndarray]:
    """All four parts of a dataset as uint8 arrays: images (n, 28, 28), labels (n,)."""
    arrays = {}
    for part in _info(name).files:
        payload = fetch_payload(name, part, data_dir, cache_dir, mirrors, download)
        arrays[part] = parse_idx(payload, f"{name} {part}")
    for split in ("train", "test"):
        if len(arrays[f"{split}_images"]) != len(arrays[f"{split}_labels"]):
            raise DatasetError(f"{name}: {split} images and labels differ in count")
    return arrays


def payloads(name: str, data_dir: str | Path | None = None, cache_dir: str | Path | None = None) -> dict[str, bytes]:
    """Every part's verified payload, to ship to a machine that lacks the dataset (no download)."""
    return {part: fetch_payload(name, part, data_dir, cache_dir, download=False) for part in _info(name).files}


def store(name: str, parts: dict[str, bytes], cache_dir: str | Path | None = None) -> Path:
    """Put shipped payloads into this machine's cache, each verified by SHA-256 before it is written."""
    info = _info(name)
    folder = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / info.name
    for part, payload in parts.items():
        filename, expected = info.files[part]
        _verified_payload(payload, expected, f"the shipped {name} {part}")
        write_bytes(folder / (filename[:-3] if filename.endswith(".gz") else filename), payload)
    return folder
