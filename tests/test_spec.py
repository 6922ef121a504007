import math

import numpy as np
import pytest

from workloads import WORKLOADS, get_workload
from workloads.spec import Layer, batch_order


@pytest.mark.parametrize("name, expected", [
    ("xor", 2 * 8 + 8 + 8 * 1 + 1),
    ("mnist_mlp", 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10),
    ("mnist_cnn", (3 * 3 * 1 * 32 + 32) + (3 * 3 * 32 * 64 + 64) + (12 * 12 * 64 * 128 + 128) + (128 * 10 + 10)),
])
def test_param_count_matches_hand_count(name, expected):
    assert get_workload(name).param_count() == expected


@pytest.mark.parametrize("name, forward, train", [
    ("xor", 2 * (2 * 8 + 8 * 1), 2 * (3 * (2 * 8 + 8) - 2 * 8)),
    ("mnist_mlp", 1_337_344, 1_337_344 * 3 - 2 * 784 * 512),
    # conv1 26*26*32*9 MACs, conv2 24*24*64*288, dense 9216*128 and 128*10
    ("mnist_cnn", 2 * (194_688 + 10_616_832 + 1_179_648 + 1_280), 71_954_688 - 2 * 194_688),
])
def test_flops_match_hand_counts(name, forward, train):
    spec = get_workload(name)
    assert spec.forward_flops() == forward and spec.train_flops() == train


def test_cnn_shapes():
    shapes = get_workload("mnist_cnn").shapes()
    assert shapes[1] == (26, 26, 32) and shapes[3] == (24, 24, 64) and shapes[5] == (12, 12, 64)
    assert shapes[6] == (9216,) and shapes[-1] == (10,)


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_init_weights_are_deterministic_glorot_with_zero_bias(name):
    spec = get_workload(name)
    a, b, c = spec.init_weights(0), spec.init_weights(0), spec.init_weights(1)
    assert [w.shape for w in a] == spec.weight_shapes()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    for w in a:
        assert w.dtype == np.float32
        if w.ndim == 1:
            assert not w.any()
        else:
            receptive = math.prod(w.shape[:-2])
            limit = math.sqrt(6 / ((w.shape[-2] + w.shape[-1]) * receptive))
            assert np.abs(w).max() <= limit and np.abs(w).max() > 0.9 * limit


def test_batch_order_is_a_seeded_permutation_per_epoch():
    first, again, second = batch_order(3, 0, 1000), batch_order(3, 0, 1000), batch_order(3, 1, 1000)
    assert np.array_equal(first, again) and not np.array_equal(first, second)
    assert np.array_equal(np.sort(first), np.arange(1000))
    assert np.array_equal(batch_order(3, 5, 4, shuffle=False), np.arange(4))


def test_bad_names_list_the_allowed_values():
    with pytest.raises(ValueError, match="unknown layer kind 'convolution'; choose from: dense, conv2d"):
        Layer("convolution")
    with pytest.raises(ValueError, match="unknown workload 'mnist'; choose from: xor, mnist_mlp, mnist_cnn"):
        get_workload("mnist")
    with pytest.raises(ValueError, match="no target for dataset 'cifar10'; choose from: mnist, fashion_mnist"):
        get_workload("mnist_mlp").target_for("cifar10")

