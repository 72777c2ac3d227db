"""Tests for ddapps.nets: every registered network, the factory, and reinitialize_."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ddapps.errors import ConfigError
from ddapps.nets import NETS, create_net, list_nets, net_options, reinitialize_
from ddapps.nets.layers import ACTS, NORMS, POOLS

# (in_channels, image_size): MNIST-like, CIFAR-like, sklearn digits, and a non-square map.
SHAPES = [(1, 28), (3, 32), (1, 8), (3, (16, 12))]
REQUIRED = [
    "convnet", "convnet1", "convnet2", "convnet3", "convnet4", "convnet_bn", "convnet_nonorm",
    "mlp", "lenet", "alexnet", "vgg11", "vgg11_bn", "resnet18", "resnet18_in",
]  # fmt: skip


def _small(name: str) -> dict:
    """Options that keep a test fast: a narrow width where the network has one."""
    return {"width": 16} if "width" in net_options(name) else {}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_required_networks_are_registered():
    assert set(REQUIRED) <= set(list_nets())
    assert list_nets() == sorted(list_nets())


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", list_nets())
def test_every_net_forward_backward_embed(name, shape):
    # Prepare
    in_channels, size = shape
    hw = (size, size) if isinstance(size, int) else size
    net = create_net(name, in_channels, 5, size, generator=_gen(0), **_small(name))
    x = torch.randn(2, in_channels, *hw, generator=_gen(1))
    # Execute
    logits = net(x)
    logits.square().mean().backward()
    features = net.embed(x)
    # Assert
    assert isinstance(net, nn.Module)
    assert logits.shape == (2, 5)
    assert isinstance(net.feature_dim, int)
    assert features.shape == (2, net.feature_dim)
    for pname, p in net.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, pname
            assert torch.isfinite(p.grad).all(), pname


def test_same_seed_same_weights_and_global_rng_untouched():
    # Prepare
    rng_before = torch.get_rng_state()
    # Execute
    a = create_net("convnet_bn", 3, 10, 32, generator=_gen(7), width=16)
    torch.manual_seed(123)  # a different global state must not matter
    b = create_net("convnet_bn", 3, 10, 32, generator=_gen(7), width=16)
    torch.set_rng_state(rng_before)
    c = create_net("convnet_bn", 3, 10, 32, generator=_gen(8), width=16)
    # Assert
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert sa.keys() == sb.keys() == sc.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["features.0.weight"], sc["features.0.weight"])
    assert torch.equal(torch.get_rng_state(), rng_before)


def test_generator_does_not_consume_global_rng():
    state = torch.get_rng_state()
    create_net("resnet18", 3, 10, 32, generator=_gen(0), width=8)
    assert torch.equal(torch.get_rng_state(), state)


def test_reinitialize_keeps_identity_changes_values_and_resets_stats():
    # Prepare: default init, then one training-mode forward to move the BN statistics.
    net = create_net("convnet_bn", 3, 10, 16, width=8)
    net(torch.randn(4, 3, 16, 16, generator=_gen(0)))
    params = dict(net.named_parameters())
    identity = {k: (id(p), p.data_ptr()) for k, p in params.items()}
    before = {k: p.detach().clone() for k, p in params.items()}
    bn = net.features[1]
    assert isinstance(bn, nn.BatchNorm2d) and bn.num_batches_tracked.item() == 1
    # Execute
    out = reinitialize_(net, _gen(3))
    # Assert
    assert out is net
    assert {k: (id(p), p.data_ptr()) for k, p in net.named_parameters()} == identity
    for k in ("features.0.weight", "features.0.bias", "classifier.weight", "classifier.bias"):
        assert not torch.equal(params[k], before[k]), k
    assert torch.equal(bn.weight, torch.ones_like(bn.weight))
    assert torch.equal(bn.bias, torch.zeros_like(bn.bias))
    assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    assert torch.equal(bn.running_var, torch.ones_like(bn.running_var))
    assert bn.num_batches_tracked.item() == 0
    conv = net.features[0]
    bound = 1 / (3 * 3 * 3) ** 0.5  # PyTorch default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert conv.weight.abs().max() <= bound and conv.bias.abs().max() <= bound
    assert conv.weight.abs().max() > bound / 2


def test_reinitialize_is_deterministic():
    a = create_net("resnet18_in", 1, 10, 8, width=4)
    b = create_net("resnet18_in", 1, 10, 8, width=4)
    reinitialize_(a, _gen(5))
    reinitialize_(b, _gen(5))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_reinitialize_refuses_unknown_parametrized_modules():
    net = nn.Sequential(nn.Linear(2, 2), nn.Embedding(3, 2))
    with pytest.raises(TypeError, match="Embedding"):
        reinitialize_(net, _gen(0))


def test_unknown_net_raises_config_error_listing_choices():
    with pytest.raises(ConfigError, match="convnet"):
        create_net("convnett", 3, 10, 32)


def test_unknown_option_raises_config_error():
    with pytest.raises(ConfigError, match=r"'depht'.*accepts: act, depth, norm, pool, width"):
        create_net("convnet", 3, 10, 32, depht=2)
    with pytest.raises(ConfigError, match="lenet"):
        create_net("lenet", 3, 10, 32, width=8)


def test_none_options_are_dropped_so_defaults_win():
    net = create_net("convnet1", 3, 10, 32, width=None, depth=None, norm=None)
    assert net.feature_dim == 128 * 16 * 16  # depth 1 and width 128 are convnet1's defaults
    assert isinstance(net.features[1], nn.GroupNorm)


@pytest.mark.parametrize(
    "opts",
    [{"norm": "foo"}, {"act": "tanhh"}, {"pool": "sum"}, {"width": 0}, {"depth": 1.5}],
    ids=str,
)
def test_bad_option_values_raise_config_error(opts):
    with pytest.raises(ConfigError):
        create_net("convnet", 3, 10, 32, **opts)


@pytest.mark.parametrize("size", [0, (8, 8, 8), "32", (4, -1)], ids=str)
def test_bad_image_size_raises_config_error(size):
    with pytest.raises(ConfigError, match="image_size"):
        create_net("convnet", 3, 10, size)


def test_net_options_lists_defaults():
    assert net_options("convnet") == {
        "width": 128, "depth": 3, "norm": "instance", "act": "relu", "pool": "avg",
    }  # fmt: skip
    assert net_options("convnet_bn")["norm"] == "batch"
    assert net_options("vgg11")["norm"] == "instance" and net_options("vgg11_bn")["norm"] == "batch"
    assert net_options("resnet18_in")["norm"] == "instance"
    assert net_options("lenet") == {}


def test_convnet3_matches_reference_sizes():
    # DC's ConvNet-3: 128x4x4 features on 32x32, and 28x28 padded to 32x32 by the first conv.
    for channels, size in ((3, 32), (1, 28)):
        net = create_net("convnet", channels, 10, size)
        assert net.feature_dim == 128 * 4 * 4
        assert net.classifier.in_features == 128 * 4 * 4
    assert create_net("convnet", 1, 10, 8).feature_dim == 128  # 8 -> 4 -> 2 -> 1
    assert create_net("convnet4", 1, 10, 8, width=8).feature_dim == 8  # last pool skipped
    assert create_net("alexnet", 3, 10, 32, width=16).feature_dim == 24 * 4 * 4


def test_construction_leaves_batch_norm_statistics_alone():
    net = create_net("convnet_bn", 3, 10, 32, width=8)
    bn = net.features[1]
    assert bn.num_batches_tracked.item() == 0
    assert torch.equal(bn.running_mean, torch.zeros(8))
    assert net.training


_NORM_TYPES = {
    "instance": nn.GroupNorm, "batch": nn.BatchNorm2d, "layer": nn.GroupNorm,
    "group": nn.GroupNorm, "none": nn.Identity,
}  # fmt: skip
_ACT_TYPES = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "leakyrelu": nn.LeakyReLU}
_POOL_TYPES = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d, "none": nn.Identity}
_GROUPS = {"instance": 8, "layer": 1, "group": 4}


@pytest.mark.parametrize(
    "option, value",
    [("norm", v) for v in NORMS] + [("act", v) for v in ACTS] + [("pool", v) for v in POOLS],
)
def test_each_convnet_option_builds_and_runs(option, value):
    # Prepare
    net = create_net("convnet", 3, 4, 16, generator=_gen(0), width=8, **{option: value})
    # Execute
    logits = net(torch.randn(2, 3, 16, 16, generator=_gen(1)))
    logits.sum().backward()
    # Assert
    norm, act, pool = net.features[1], net.features[2], net.features[3]
    layer = {"norm": norm, "act": act, "pool": pool}[option]
    expected = {"norm": _NORM_TYPES, "act": _ACT_TYPES, "pool": _POOL_TYPES}[option][value]
    assert type(layer) is expected
    if option == "norm" and value in _GROUPS:
        assert norm.num_groups == _GROUPS[value] and norm.affine
    if option == "act" and value == "leakyrelu":
        assert act.negative_slope == 0.01
    assert logits.shape == (2, 4)
    side = 16 if (option, value) == ("pool", "none") else 2  # 16 -> 8 -> 4 -> 2 otherwise
    assert net.feature_dim == 8 * side * side
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())


def test_registry_is_the_shared_registry_type():
    from ddapps.registry import Registry

    assert isinstance(NETS, Registry)
    with pytest.raises(ValueError, match="already registered"):
        NETS.register("convnet")(object)


def test_fitting_depth_keeps_a_map_of_at_least_two_pixels() -> None:
    from ddapps.nets import fitting_depth

    assert [fitting_depth(s) for s in (8, 28, 32, 4, 16)] == [2, 3, 3, 1, 3]
    assert fitting_depth((8, 8), max_depth=1) == 1
