"""What a run without -f covers: every framework's plain variant, no fast path."""
from __future__ import annotations

from adapters import default_selection, label

FAST_PATHS = {"pytorch:compile", "tensorflow:xla", "keras:tensorflow-jit", "keras:torch-jit", "mxnet:hybrid"}


def test_the_default_run_is_every_frameworks_plain_variants():
    labels = [label(f, v) for f, v in default_selection()]
    assert labels == ["pytorch", "tensorflow", "keras:tensorflow", "keras:torch", "keras:jax", "jax", "mxnet", "theano"]
    assert not FAST_PATHS & set(labels)
