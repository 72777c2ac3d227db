"""ConvNet's first block as one batched matrix product (ddapps.nets.fused) equals the plain layers."""

import pytest
import torch
from torch import nn

from ddapps.nets import create_net
from ddapps.nets.fused import ConvNetFeatures, avg_pool2x2, fusable_first_block
from ddapps.utils.precision import frozen_embed, use_precision


def _perturbed_convnet(channels, size, width=16, seed=0):
    net = create_net("convnet", channels, 10, size, width=width)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # non-trivial norm scales/shifts and biases
        for p in net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return net


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32), (1, 8)])
def test_fused_features_equal_plain_layers_with_and_without_grad(channels, size):
    net = _perturbed_convnet(channels, size)
    assert isinstance(net.features, ConvNetFeatures) and fusable_first_block(net.features)
    plain = nn.Sequential(*net.features)
    x = 2.0 * torch.randn(6, channels, size, size, generator=torch.Generator().manual_seed(1)) + 0.5
    with torch.no_grad():
        torch.testing.assert_close(net.features(x), plain(x), rtol=1e-5, atol=1e-5)
    params = list(net.features.parameters())
    xg = x.clone().requires_grad_(True)
    fused_grads = torch.autograd.grad(net.features(xg).square().sum(), [xg, *params])
    plain_grads = torch.autograd.grad(plain(xg).square().sum(), [xg, *params])
    for got, want in zip(fused_grads, plain_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * max(1.0, want.abs().max().item()))


def test_other_first_blocks_take_the_plain_path():
    for options in ({"norm": "batch"}, {"act": "sigmoid"}, {"pool": "max"}):
        net = create_net("convnet", 1, 10, 28, width=8, **options)
        assert not fusable_first_block(net.features)
    # an odd map (7x7 input, padding 1) would lose a row in pooling: plain path, same result
    net = _perturbed_convnet(1, 7, width=8)
    x = torch.randn(3, 1, 7, 7)
    with torch.no_grad():
        torch.testing.assert_close(net.features(x), nn.Sequential(*net.features)(x))


def test_state_dict_layout_is_unchanged():
    net = create_net("convnet", 1, 10, 28, width=8)
    assert list(net.state_dict())[:4] == ["features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias"]


def test_avg_pool2x2_matches_avg_pool2d():
    x = torch.randn(2, 3, 6, 8)
    torch.testing.assert_close(avg_pool2x2(x), torch.nn.functional.avg_pool2d(x, 2))


def test_frozen_embed_bf16_is_close_to_fp32_and_float32():
    net = _perturbed_convnet(1, 28)
    x = torch.randn(64, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    exact = frozen_embed(net, x)
    with use_precision("bf16"):
        low = frozen_embed(net, x)
    assert low.dtype == torch.float32 and not low.requires_grad
    assert next(net.parameters()).dtype == torch.float32  # the network itself is not converted
    rel = (low.mean(0) - exact.mean(0)).norm() / exact.mean(0).norm()
    assert 0 < rel < 1e-2


def test_float64_is_exact_to_float64_rounding():
    net = _perturbed_convnet(1, 8, width=8).double()
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(net.features(x), nn.Sequential(*net.features)(x), rtol=1e-12, atol=1e-12)


def test_non_cpu_devices_take_the_plain_path(monkeypatch):
    """Off the CPU (CUDA; here the meta device) the rewrites' extra launches cost more than the
    memory traffic they save: the plain layers run, with the same output shape."""
    import ddapps.nets.fused as fused

    def refuse(*args, **kwargs):
        raise AssertionError("CPU-only rewrite used off the CPU")

    cpu_net = create_net("convnet", 3, 10, 32, width=8)  # built (one probe forward) before the patch
    meta_net = create_net("convnet", 3, 10, 32, width=8).to("meta")
    monkeypatch.setattr(fused, "conv_instance_norm_relu_pool", refuse)
    monkeypatch.setattr(fused, "avg_pool2x2", refuse)
    out = meta_net.features(torch.empty(4, 3, 32, 32, device="meta"))
    assert out.device.type == "meta" and out.shape == (4, 8 * 4 * 4)
    with pytest.raises(AssertionError, match="CPU-only"):  # the CPU still takes the rewrite
        cpu_net.features(torch.randn(2, 3, 32, 32))
