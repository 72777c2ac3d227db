"""Tests of ddapps.augment (DSA), kornia style: per op smoke, exception, cardinality, gradcheck."""

from __future__ import annotations

import pytest
import torch

from ddapps.augment import (
    DIGITS_STRATEGY,
    DSA,
    FULL_STRATEGY,
    OPS,
    AugParams,
    DSAParams,
    default_strategy,
    parse_strategy,
)
from ddapps.augment import functional as AF
from ddapps.errors import ConfigError

ALL_OPS = ("color", "crop", "cutout", "flip", "scale", "rotate")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int = 4, c: int = 3, h: int = 8, w: int = 8, dtype=torch.float32, seed: int = 123):
    return torch.rand(n, c, h, w, generator=gen(seed), dtype=dtype)


# ---------------------------------------------------------------- strategies


def test_registry_holds_the_six_ops():
    assert OPS.names() == sorted(ALL_OPS)


def test_parse_strategy():
    assert parse_strategy(FULL_STRATEGY) == ALL_OPS
    assert parse_strategy(DIGITS_STRATEGY) == ("color", "crop", "cutout", "scale", "rotate")
    assert parse_strategy("none") == parse_strategy("") == parse_strategy("None") == ()
    assert parse_strategy(("crop", "flip")) == ("crop", "flip")


@pytest.mark.parametrize("bad", ["color_blur", "color__crop", "crop_crop", "Noise"])
def test_parse_strategy_rejects(bad):
    with pytest.raises(ConfigError):
        parse_strategy(bad)


def test_unknown_op_lists_choices():
    with pytest.raises(ConfigError, match="rotate"):
        DSA("color_warp")


def test_default_strategy():
    for name in ("mnist", "MNIST", "svhn", "digits"):
        assert default_strategy(name) == "color_crop_cutout_scale_rotate"
    for name in ("cifar10", "cifar100", "fashionmnist", "tinyimagenet"):
        assert default_strategy(name) == "color_crop_cutout_flip_scale_rotate"


# ---------------------------------------------------------------- exceptions


def test_bad_mode_and_params():
    with pytest.raises(ConfigError):
        DSA(FULL_STRATEGY, mode="X")
    with pytest.raises(ConfigError):
        DSAParams(scale=0.5)
    with pytest.raises(ConfigError):
        DSAParams(flip=1.5)
    with pytest.raises(ConfigError):
        DSAParams(rotate=float("nan"))
    with pytest.raises(ConfigError):
        DSA(FULL_STRATEGY, params={"scale": 1.2})  # type: ignore[arg-type]


def test_bad_inputs():
    dsa = DSA(FULL_STRATEGY, mode="M")
    p = dsa.sample(2, generator=gen())
    with pytest.raises(ConfigError):
        dsa.apply(images(n=3), p)  # more images than sampled
    with pytest.raises(ConfigError):
        dsa.apply(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), p)
    with pytest.raises(ConfigError):
        dsa.apply(torch.zeros(3, 8, 8), p)
    with pytest.raises(ConfigError):
        dsa(images(), generator=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        dsa.sample(-1, generator=gen())
    with pytest.raises(TypeError):
        dsa(images())  # type: ignore[call-arg]  # the generator is required


def test_augparams_frozen_and_checked():
    p = DSA("flip", mode="M").sample(3, generator=gen())
    with pytest.raises(AttributeError):
        p.n = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        p.values["flip"]["mask"] = torch.ones(3)  # type: ignore[index]
    with pytest.raises(ConfigError):
        AugParams(("flip",), {"flip": {"mask": torch.ones(2, dtype=torch.bool)}}, n=3)


# ---------------------------------------------------------------- smoke per op


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_op_preserves_shape_dtype_device(op, dtype):
    x = images(n=5, c=3, h=9, w=7, dtype=dtype)
    out = DSA(op, mode="M")(x, generator=gen())
    assert out.shape == x.shape and out.dtype == dtype and out.device == x.device
    assert torch.isfinite(out).all()


# The accelerator when one is present; on CPU-only machines the same checks run on the CPU.
ACCELERATORS = ["cuda"] if torch.cuda.is_available() else ["cpu"]


@pytest.mark.parametrize("device", ACCELERATORS)
@pytest.mark.parametrize("op", ALL_OPS)
def test_op_on_accelerator_with_cpu_generator(op, device):
    x = images().to(device)
    dsa = DSA(op, mode="M")
    p = dsa.sample(4, generator=gen())
    out = dsa.apply(x, p)
    assert out.device == x.device and out.shape == x.shape
    torch.testing.assert_close(out.cpu(), dsa.apply(x.cpu(), p), rtol=1e-5, atol=1e-5)


def test_sample_device_argument():
    p = DSA(FULL_STRATEGY, mode="M").sample(3, generator=gen(), device="meta")
    assert all(t.device.type == "meta" for v in p.values.values() for t in v.values())


# ---------------------------------------------------------------- gradcheck


@pytest.mark.parametrize("op", ALL_OPS)
def test_gradcheck(op):
    x = images(n=2, c=3, h=5, w=5, dtype=torch.float64).requires_grad_()
    dsa = DSA(op, DSAParams(flip=1.0), mode="M")
    p = dsa.sample(2, generator=gen(3))
    assert torch.autograd.gradcheck(lambda t: dsa.apply(t, p), (x,))


def test_gradcheck_full_strategy_mode_m():
    x = images(n=2, c=1, h=5, w=5, dtype=torch.float64).requires_grad_()
    dsa = DSA(FULL_STRATEGY, mode="M")
    p = dsa.sample(2, generator=gen(4))
    assert torch.autograd.gradcheck(lambda t: dsa.apply(t, p), (x,))


def test_gradient_reaches_input_through_every_op():
    x = images().requires_grad_()
    DSA(FULL_STRATEGY, mode="M")(x, generator=gen()).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


# ---------------------------------------------------------------- op semantics


def test_flip_prob_one_is_torch_flip():
    x = images()
    out = DSA("flip", DSAParams(flip=1.0))(x, generator=gen())
    assert torch.equal(out, torch.flip(x, dims=[3]))
    assert torch.equal(DSA("flip", DSAParams(flip=0.0))(x, generator=gen()), x)


def test_identity_strategy_returns_input():
    x = images()
    g = gen()
    state = g.get_state()
    for s in ("none", ""):
        assert torch.equal(DSA(s)(x, generator=g), x)
    assert torch.equal(g.get_state(), state)  # the identity draws nothing


def test_color_formula():
    x = images(n=3)
    b = torch.tensor([0.1, -0.2, 0.3])
    s = torch.tensor([0.5, 1.5, 0.0])
    c = torch.tensor([1.2, 0.7, 1.0])
    y = x + b.view(-1, 1, 1, 1)
    m = y.mean(1, keepdim=True)
    y = (y - m) * s.view(-1, 1, 1, 1) + m
    m = y.mean((1, 2, 3), keepdim=True)
    y = (y - m) * c.view(-1, 1, 1, 1) + m
    torch.testing.assert_close(AF.adjust_color(x, b, s, c), y)
    # saturation leaves a grey image unchanged
    g1 = images(c=1)
    torch.testing.assert_close(AF.adjust_saturation(g1, torch.full((4,), 2.0)), g1)


def test_translate_matches_padded_slice():
    x = images(n=3, h=6, w=7)
    shift = torch.tensor([[2, -1], [0, 0], [-3, 2]])  # (dx, dy)
    out = AF.translate(x, shift)
    for i, (dx, dy) in enumerate(shift.tolist()):
        padded = torch.nn.functional.pad(x[i], [3, 3, 3, 3])
        want = padded[:, 3 - dy:3 - dy + 6, 3 - dx:3 - dx + 7]
        assert torch.equal(out[i], want)


def test_cutout_zeroes_a_square():
    x = images(n=2, h=8, w=8) + 1.0  # no zeros before the cutout
    out = AF.cutout(x, torch.tensor([[4, 4], [0, 7]]), (4, 4))
    assert (out[0] == 0).all(0).sum() == 16
    assert (out[0, :, 2:6, 2:6] == 0).all()
    assert (out[1] == 0).all(0).sum() == 2 * 3  # clipped at the corner: cols 0-1, rows 5-7
    # through DSA: the square has side int(8 * 0.5 + 0.5) = 4, clipped at most to 2x2
    y = DSA("cutout", mode="M")(images(n=64) + 1.0, generator=gen())
    zeros = (y == 0).all(1).sum((1, 2))
    assert ((zeros >= 4) & (zeros <= 16)).all() and (zeros == 16).any()


def test_cutout_centre_range_is_the_references_and_symmetric():
    """An even side k may be centred one past the last pixel (side + 1 positions, as in the DSA
    reference), so the square is cut to k // 2 columns at the right border as often as at the left."""
    y = DSA("cutout", mode="M")(images(n=4000, c=1) + 1.0, generator=gen(5))
    cols = (y[:, 0] == 0).any(1)  # [N, W]: zeroed columns
    left = (cols.sum(1) == 2) & cols[:, 0] & cols[:, 1]
    right = (cols.sum(1) == 2) & cols[:, 6] & cols[:, 7]
    # 9 equally likely centres per axis: each border case has probability 1/9
    assert abs(left.float().mean() - 1 / 9) < 0.02 and abs(right.float().mean() - 1 / 9) < 0.02


def test_scale_and_rotate_identity_values():
    x = images()
    torch.testing.assert_close(AF.scale(x, torch.ones(4, 2)), x)
    torch.testing.assert_close(AF.rotate(x, torch.zeros(4)), x)
    # 90 degrees on a square image is an exact permutation of pixels
    torch.testing.assert_close(AF.rotate(x, torch.full((4,), 90.0)).abs().sum(), x.abs().sum())


# ---------------------------------------------------------------- cardinality / ranges


def test_sampled_ranges():
    p = DSAParams()
    v = DSA(FULL_STRATEGY, p, mode="M").sample(4000, generator=gen()).values
    b, s, c = v["color"]["brightness"], v["color"]["saturation"], v["color"]["contrast"]
    assert b.min() >= -0.5 and b.max() < 0.5
    assert s.min() >= 0 and s.max() < 2.0
    assert c.min() >= 0.5 and c.max() < 1.5
    f = v["scale"]["factors"]
    assert f.shape == (4000, 2) and f.min() >= 1 / 1.2 and f.max() <= 1.2
    a = v["rotate"]["angle"]
    assert a.min() >= -15 and a.max() <= 15
    assert 0.45 < v["flip"]["mask"].float().mean() < 0.55


def test_crop_shifts_cover_the_range():
    # 16 px * 0.125 -> s = 2: every shift in [-2, 2] appears, nothing beyond.
    x = torch.zeros(500, 1, 16, 16)
    x[:, :, 8, 8] = 1.0
    out = DSA("crop", mode="M")(x, generator=gen())
    pos = out[:, 0].flatten(1).argmax(1)
    dy, dx = pos // 16 - 8, pos % 16 - 8
    assert set(dx.tolist()) == set(dy.tolist()) == {-2, -1, 0, 1, 2}


def test_mode_s_samples_one_op_uniformly():
    dsa = DSA(FULL_STRATEGY, mode="S")
    g = gen()
    counts = {op: 0 for op in ALL_OPS}
    for _ in range(600):
        p = dsa.sample(1, generator=g)
        assert len(p.ops) == 1 and set(p.values) == set(p.ops)
        counts[p.ops[0]] += 1
    assert all(60 <= k <= 140 for k in counts.values()), counts


def test_mode_m_applies_all_in_order():
    p = DSA(DIGITS_STRATEGY, mode="M").sample(2, generator=gen())
    assert p.ops == parse_strategy(DIGITS_STRATEGY)


# ---------------------------------------------------------------- siamese + determinism


@pytest.mark.parametrize("mode", ["S", "M"])
def test_siamese_same_params_same_output(mode):
    dsa = DSA(FULL_STRATEGY, mode=mode)
    g = gen(7)
    for _ in range(6):
        p = dsa.sample(10, generator=g)
        real = images(n=10)
        assert torch.equal(dsa.apply(real, p), dsa.apply(real.clone(), p))
        # a prefix of the batch gets the same transforms as the first rows of the full batch
        assert torch.equal(dsa.apply(real[:3], p), dsa.apply(real, p)[:3])


def test_siamese_real_and_synthetic_batches_of_different_sizes():
    dsa = DSA(FULL_STRATEGY, mode="M")
    p = dsa.sample(8, generator=gen())
    real, syn = images(n=8), images(n=2, seed=5)
    assert dsa.apply(real, p).shape[0] == 8 and dsa.apply(syn, p).shape[0] == 2
    # the same image in both batches is transformed identically
    syn[0] = real[0]
    assert torch.equal(dsa.apply(syn, p)[0], dsa.apply(real, p)[0])


@pytest.mark.parametrize("mode", ["S", "M"])
def test_same_seed_bitwise_identical(mode):
    dsa = DSA(FULL_STRATEGY, mode=mode)
    x = images()
    g1, g2 = gen(11), gen(11)
    for _ in range(5):
        assert torch.equal(dsa(x, generator=g1), dsa(x, generator=g2))


@pytest.mark.parametrize("op", ALL_OPS)
def test_different_seeds_differ(op):
    dsa = DSA(op, mode="M")
    x = images(n=16, h=16, w=16)
    assert not torch.equal(dsa(x, generator=gen(1)), dsa(x, generator=gen(2)))


def test_global_rng_untouched():
    state = torch.get_rng_state()
    x = images()
    for mode in ("S", "M"):
        dsa = DSA(FULL_STRATEGY, mode=mode)
        g = gen()
        for _ in range(5):
            dsa(x, generator=g)
    assert torch.equal(torch.get_rng_state(), state)


def test_shared_draw_is_one_transform_for_the_whole_batch():
    from ddapps.augment import DSA

    dsa = DSA("color_crop_cutout_flip_scale_rotate", mode="M")
    x = torch.randn(1, 1, 8, 8).expand(5, 1, 8, 8).contiguous()  # five copies of one image
    shared = dsa.sample(5, generator=torch.Generator().manual_seed(0), shared=True)
    out = dsa.apply(x, shared)
    for i in range(1, 5):  # identical inputs under one shared transform stay identical
        torch.testing.assert_close(out[i], out[0])
    per_image = dsa.apply(x, dsa.sample(5, generator=torch.Generator().manual_seed(0)))
    assert not torch.allclose(per_image[1], per_image[0])
    assert dsa.sample(0, generator=torch.Generator(), shared=True).n == 0


def test_siamese_passes_an_empty_batch_through() -> None:
    from ddapps.augment import DSA

    dsa = DSA("color_crop_cutout_flip_scale_rotate")
    empty, syn = torch.zeros(0, 1, 8, 8), torch.rand(4, 1, 8, 8)
    a, b = dsa.siamese(empty, syn, generator=torch.Generator().manual_seed(0))
    assert a.shape == (0, 1, 8, 8) and b.shape == syn.shape and not torch.equal(b, syn)
