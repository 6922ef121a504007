"""The IDX loader: local files, checksum errors, and downloads from a local HTTP server."""
from __future__ import annotations

import functools
import gzip
import shutil
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from workloads import datasets
from workloads.datasets import ChecksumError, DatasetError

MNIST_FILES = [name for name, _ in datasets.DATASETS["mnist"].files.values()]


@pytest.fixture
def serve(tmp_path):
    """Serve a folder over HTTP on 127.0.0.1; yields a function folder -> base URL."""
    servers = []

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    def start(folder: Path) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_loads_mnist_from_the_data_dir(data_dir, tmp_path):
    arrays = datasets.load("mnist", data_dir=data_dir, cache_dir=tmp_path, download=False)
    assert arrays["train_images"].shape == (60000, 28, 28) and arrays["train_images"].dtype == np.uint8
    assert arrays["test_images"].shape == (10000, 28, 28)
    assert np.bincount(arrays["train_labels"]).tolist()[:3] == [5923, 6742, 5958]
    assert arrays["train_images"].max() == 255


def test_loads_fashion_mnist_from_the_data_dir(data_dir, tmp_path):
    arrays = datasets.load("fashion_mnist", data_dir=data_dir, cache_dir=tmp_path, download=False)
    assert arrays["train_labels"].shape == (60000,)
    assert np.bincount(arrays["train_labels"]).tolist() == [6000] * 10


def test_data_dir_holding_the_files_directly(data_dir, tmp_path):
    for name in MNIST_FILES:
        shutil.copy(data_dir / "mnist" / name, tmp_path / name)
    arrays = datasets.load("mnist", data_dir=tmp_path, cache_dir=tmp_path / "cache", download=False)
    assert arrays["test_labels"].shape == (10000,)


def test_recompressed_and_uncompressed_copies_are_accepted(data_dir, tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in MNIST_FILES:
        payload = gzip.decompress((data_dir / "mnist" / name).read_bytes())
        if "labels" in name:
            (folder / name[:-3]).write_bytes(payload)  # uncompressed
        else:
            (folder / name).write_bytes(gzip.compress(payload, compresslevel=1))  # recompressed
    arrays = datasets.load("mnist", data_dir=tmp_path, cache_dir=tmp_path / "cache", download=False)
    assert arrays["train_labels"][:5].tolist() == [5, 0, 4, 1, 9]


def test_corrupted_file_is_a_checksum_error_naming_it(data_dir, tmp_path):
    folder = tmp_path / "mnist"
    shutil.copytree(data_dir / "mnist", folder)
    target = folder / "t10k-labels-idx1-ubyte.gz"
    target.chmod(0o644)
    payload = bytearray(gzip.decompress(target.read_bytes()))
    payload[100] ^= 0xFF
    target.write_bytes(gzip.compress(bytes(payload)))
    with pytest.raises(ChecksumError, match=r"t10k-labels-idx1-ubyte.gz is corrupted: SHA-256 of its payload is"):
        datasets.load("mnist", data_dir=tmp_path, cache_dir=tmp_path / "cache", download=False)


def test_truncated_gzip_is_a_checksum_error(data_dir, tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    raw = (data_dir / "mnist" / "train-labels-idx1-ubyte.gz").read_bytes()
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ChecksumError, match="cannot be decompressed"):
        datasets.fetch_payload("mnist", "train_labels", data_dir=tmp_path, cache_dir=tmp_path / "c", download=False)


def test_downloads_from_a_mirror_into_the_cache(data_dir, tmp_path, serve):
    url = serve(data_dir / "mnist")
    cache = tmp_path / "cache"
    arrays = datasets.load("mnist", data_dir=tmp_path / "empty", cache_dir=cache, mirrors=(closed_port_url(), url))
    assert arrays["train_images"].shape == (60000, 28, 28)
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == sorted(MNIST_FILES)
    # now from the cache alone
    again = datasets.load("mnist", data_dir=tmp_path / "empty", cache_dir=cache, mirrors=(), download=False)
    assert np.array_equal(again["test_labels"], arrays["test_labels"])


def test_corrupted_download_is_refused_and_not_cached(data_dir, tmp_path, serve):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01" + b"\x00" * 20))
    url = serve(bad)
    with pytest.raises(DatasetError, match=r"SHA-256 of its payload"):
        datasets.fetch_payload("mnist", "test_labels", data_dir=tmp_path / "empty", cache_dir=tmp_path / "cache",
                               mirrors=(url,))
    assert not (tmp_path / "cache" / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()


def test_nothing_found_names_every_place_and_url(tmp_path, monkeypatch):
    url = closed_port_url()
    monkeypatch.setenv(datasets.ENV_MIRRORS, url)
    with pytest.raises(DatasetError) as err:
        datasets.load("fashion_mnist", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    message = str(err.value)
    assert str(tmp_path / "data" / "fashion-mnist") in message and str(tmp_path / "cache" / "fashion_mnist") in message
    assert f"{url}train-images-idx3-ubyte.gz" in message and "BENCH_DATA_DIR" in message


def test_unknown_dataset_lists_the_choices():
    with pytest.raises(DatasetError, match="unknown dataset 'cifar'; choose from: mnist, fashion_mnist"):
        datasets.load("cifar")


def test_parse_idx_rejects_bad_headers():
    with pytest.raises(DatasetError, match="not an unsigned-byte IDX"):
        datasets.parse_idx(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    with pytest.raises(DatasetError, match=r"header says \(3,\)"):
        datasets.parse_idx(b"\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02")
    assert datasets.parse_idx(b"\x00\x00\x08\x02\x00\x00\x00\x01\x00\x00\x00\x02\x07\x09").tolist() == [[7, 9]]


def test_a_dataset_shipped_to_a_node_is_verified_before_it_is_stored(data_dir, tmp_path, monkeypatch):
    """What the Ray executor does for a node that lacks a dataset: the driver's verified payloads,
    stored in the node's cache, where a load without any data folder then finds them."""
    monkeypatch.delenv(datasets.ENV_DATA_DIR, raising=False)
    parts = datasets.payloads("mnist", data_dir=data_dir, cache_dir=tmp_path / "driver")
    node_cache = tmp_path / "node"
    with pytest.raises(DatasetError):
        datasets.load("mnist", cache_dir=node_cache, download=False)
    broken = {**parts, "test_labels": parts["test_labels"][:-1] + b"\x07"}
    with pytest.raises(ChecksumError, match="the shipped mnist test_labels is corrupted"):
        datasets.store("mnist", broken, node_cache)
    datasets.store("mnist", parts, node_cache)
    arrays = datasets.load("mnist", cache_dir=node_cache, download=False)
    assert arrays["train_images"].shape == (60000, 28, 28) and arrays["test_labels"].shape == (10000,)
