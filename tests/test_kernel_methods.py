"""Kernel meta-learning methods (KIP, RFAD, FRePo): the closed-form KRR, the analytic FC kernels
against finite random networks, and the methods' labels and evaluation metadata."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.func import jacrev

from ddapps.errors import ConfigError
from ddapps.methods import METHODS, CheckpointSpec, create_distiller
from ddapps.methods.kernel import centered_one_hot, fc_relu_kernel, krr_loss, krr_predict, nngp_init_
from ddapps.nets import create_net
from ddapps.utils.seeding import make_generator
from tests.conftest import fake_benchmark

KERNEL_METHODS = ["kip", "rfad", "frepo"]
TINY = {name: METHODS.get(name).smoke_config for name in KERNEL_METHODS}


def _gen(seed: int = 0) -> torch.Generator:
    return make_generator(seed)


# ------------------------------------------------------------------------------- closed-form KRR
def test_krr_matches_direct_numpy_solve() -> None:
    # Prepare
    g = _gen(1)
    x_s, x_t = torch.randn(7, 4, generator=g, dtype=torch.float64), torch.randn(5, 4, generator=g, dtype=torch.float64)
    y_s, y_t = torch.randn(7, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    k_ss, k_ts = x_s @ x_s.T + 0.5, x_t @ x_s.T + 0.5
    reg = 1e-2
    # Execute
    pred = krr_predict(k_ts, k_ss, y_s, reg)
    loss = krr_loss(k_ts, k_ss, y_s, y_t, reg)
    # Assert
    a = k_ss.numpy()
    expected = k_ts.numpy() @ np.linalg.solve(a + reg * np.trace(a) / 7 * np.eye(7), y_s.numpy())
    np.testing.assert_allclose(pred.numpy(), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(float(loss), 0.5 * np.mean((y_t.numpy() - expected) ** 2), rtol=1e-10)


def test_krr_falls_back_when_cholesky_fails() -> None:
    k_ss = torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=torch.float64)  # indefinite
    y_s = torch.tensor([[1.0], [0.0]], dtype=torch.float64)
    pred = krr_predict(torch.eye(2, dtype=torch.float64), k_ss, y_s, 0.0)
    np.testing.assert_allclose(pred.numpy(), np.linalg.solve(k_ss.numpy(), y_s.numpy()), rtol=1e-12)


def test_centered_one_hot() -> None:
    y = centered_one_hot(torch.tensor([0, 2]), 4)
    assert torch.allclose(y, torch.tensor([[0.75, -0.25, -0.25, -0.25], [-0.25, -0.25, 0.75, -0.25]]))


# ------------------------------------------------------------------------------ analytic kernels
@pytest.mark.parametrize("kind", ["nngp", "ntk"])
@pytest.mark.parametrize("depth", [1, 3])
def test_fc_kernel_is_symmetric_psd(kind: str, depth: int) -> None:
    x = torch.randn(12, 6, generator=_gen(2), dtype=torch.float64)
    k = fc_relu_kernel(x, x, kind=kind, depth=depth)
    assert torch.allclose(k, k.T, atol=1e-12)
    eig = torch.linalg.eigvalsh((k + k.T) / 2)
    assert float(eig.min()) > -1e-9 * float(eig.max())


@pytest.mark.parametrize("weight_var,bias_var", [(2.0, 0.0), (1.5, 0.1)])
def test_fc_kernel_on_identical_inputs_is_analytic(weight_var: float, bias_var: float) -> None:
    # For x = x' the arc-cosine recursion reduces to K_l = w K_{l-1} / 2 + b, Theta_l = K_l + w/2 Theta_{l-1}.
    x = torch.randn(3, 5, generator=_gen(3), dtype=torch.float64)
    depth = 3
    k = weight_var * (x * x).sum(1) / 5 + bias_var
    theta = k.clone()
    for _ in range(depth):
        k = weight_var * k / 2 + bias_var
        theta = k + weight_var / 2 * theta
    opts = {"depth": depth, "weight_var": weight_var, "bias_var": bias_var}
    nngp = fc_relu_kernel(x, x, kind="nngp", **opts)
    ntk = fc_relu_kernel(x, x, kind="ntk", **opts)
    assert torch.allclose(torch.diagonal(nngp), k, rtol=1e-9)
    assert torch.allclose(torch.diagonal(ntk), theta, rtol=1e-6)
    if bias_var == 0.0:  # He variance and no bias: NNGP keeps |x|^2 w/d, NTK is (depth + 1) times it
        assert torch.allclose(torch.diagonal(ntk), (depth + 1) * weight_var * (x * x).sum(1) / 5, rtol=1e-6)


def _finite_mlp_params(d: int, width: int, depth: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    sizes = [d] + [width] * depth
    params = {}
    for i in range(depth):
        params[f"w{i}"] = torch.randn(sizes[i + 1], sizes[i], generator=gen, dtype=torch.float64)
        params[f"b{i}"] = torch.randn(sizes[i + 1], generator=gen, dtype=torch.float64)
    params["w_out"] = torch.randn(1, width, generator=gen, dtype=torch.float64)
    params["b_out"] = torch.randn(1, generator=gen, dtype=torch.float64)
    return params


def _finite_mlp(params: dict[str, torch.Tensor], x: torch.Tensor, depth: int, w: float, b: float):
    """NTK-parameterised MLP: returns (last hidden activations, scalar output)."""
    h = x
    for i in range(depth):
        z = math.sqrt(w / h.shape[1]) * h @ params[f"w{i}"].T + math.sqrt(b) * params[f"b{i}"]
        h = torch.relu(z)
    out = math.sqrt(w / h.shape[1]) * h @ params["w_out"].T + math.sqrt(b) * params["b_out"]
    return h, out.squeeze(1)


@pytest.mark.parametrize("depth", [1, 2])
def test_nngp_matches_monte_carlo_of_wide_network(depth: int) -> None:
    w, b, width = 2.0, 0.05, 4096 // depth
    x = torch.randn(6, 5, generator=_gen(4), dtype=torch.float64)
    estimates = []
    for seed in range(8):  # relu^2 has relative variance 5: 8 x 4096 units give ~1.2% per entry
        params = _finite_mlp_params(5, width, depth, _gen(100 + seed))
        h, _ = _finite_mlp(params, x, depth, w, b)
        estimates.append(w * h @ h.T / width + b)  # covariance of the readout given the features
    mc = torch.stack(estimates).mean(0)
    exact = fc_relu_kernel(x, x, kind="nngp", depth=depth, weight_var=w, bias_var=b)
    assert float((mc - exact).abs().max()) < 0.05 * float(exact.abs().max())


@pytest.mark.parametrize("depth", [1, 2])
def test_ntk_matches_empirical_ntk_of_wide_network(depth: int) -> None:
    w, b, width = 2.0, 0.05, 1024
    x = torch.randn(5, 4, generator=_gen(5), dtype=torch.float64)
    estimates = []
    for seed in range(4):
        params = _finite_mlp_params(4, width, depth, _gen(200 + seed))
        jac = jacrev(lambda p: _finite_mlp(p, x, depth, w, b)[1])(params)
        flat = torch.cat([j.reshape(x.shape[0], -1) for j in jac.values()], dim=1)
        estimates.append(flat @ flat.T)
    empirical = torch.stack(estimates).mean(0)
    exact = fc_relu_kernel(x, x, kind="ntk", depth=depth, weight_var=w, bias_var=b)
    assert float((empirical - exact).abs().max()) < 0.05 * float(exact.abs().max())


def test_kernel_gradient_is_finite_for_duplicate_support_images() -> None:
    x = torch.randn(4, 6, generator=_gen(6), dtype=torch.float64)
    x = torch.cat([x, x[:1]]).requires_grad_(True)  # two identical rows: cos = 1 off the diagonal too
    for kind in ("nngp", "ntk"):
        k = fc_relu_kernel(x, x, kind=kind, depth=2)
        (grad,) = torch.autograd.grad(k.sum(), x)
        assert torch.isfinite(grad).all()


def test_kernel_rejects_bad_options() -> None:
    x = torch.zeros(2, 3)
    with pytest.raises(ConfigError, match="unknown kernel"):
        fc_relu_kernel(x, x, kind="conv")
    with pytest.raises(ConfigError, match="unknown kernel"):
        create_distiller("kip", {"kernel": "conv"})


def test_nngp_init_is_reproducible_and_gaussian_scaled() -> None:
    net = create_net("convnet", 1, 3, 8, generator=_gen(0), width=256, norm="none")
    a = {k: v.clone() for k, v in nngp_init_(net, _gen(7), 2.0, 0.01).state_dict().items()}
    b = nngp_init_(net, _gen(7), 2.0, 0.01).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    conv2 = net.features[4].weight  # second conv: fan_in = 256 * 9
    assert abs(float(conv2.detach().var()) * 256 * 9 / 2.0 - 1.0) < 0.02


# ----------------------------------------------------------------------------------- the methods
def test_kip_loss_decreases_on_fake_data() -> None:
    real = fake_benchmark()
    losses: list[float] = []
    config = {"iterations": 25, "batch_real": 36, "lr_img": 0.01}  # batch = whole train split
    create_distiller("kip", config).distill(real, 2, generator=_gen(0), callbacks=[lambda e: losses.append(e.loss)])
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize("name", KERNEL_METHODS)
def test_labels_learned_only_when_asked(name: str) -> None:
    real = fake_benchmark()
    start = centered_one_hot(torch.arange(3).repeat_interleave(2), 3)
    fixed = create_distiller(name, TINY[name] | {"learn_labels": False}).distill(real, 2, generator=_gen(0))
    learned = create_distiller(name, TINY[name] | {"learn_labels": True, "lr_label": 0.01}).distill(
        real, 2, generator=_gen(0)
    )
    assert not fixed.soft_labels and torch.equal(fixed.labels, torch.arange(3).repeat_interleave(2))
    assert fixed.eval_protocol.labels == "centered one-hot"
    assert learned.soft_labels and learned.labels.dtype == torch.float32 and learned.labels.shape == (6, 3)
    assert not torch.allclose(learned.labels, start)
    assert learned.eval_protocol.labels == "learned"


@pytest.mark.parametrize("name", KERNEL_METHODS)
def test_eval_protocol_is_mse_and_survives_save(name: str, tmp_path: Path) -> None:
    synset = create_distiller(name, TINY[name]).distill(fake_benchmark(), 2, generator=_gen(0))
    assert synset.eval_protocol.loss == "mse" and "eval_protocol" not in synset.meta
    loaded = type(synset).load(synset.save(tmp_path / "s.safetensors"))
    assert loaded.eval_protocol == synset.eval_protocol and torch.equal(loaded.labels, synset.labels)


def test_frepo_resume_restores_pool_and_learned_labels(tmp_path: Path) -> None:
    # Prepare: 6 iterations, checkpoint every 3, pool resets inside both halves.
    real = fake_benchmark()
    config = TINY["frepo"] | {"iterations": 6, "lr_label": 0.01}
    full = create_distiller("frepo", config).distill(real, 2, generator=_gen(1))

    class Crash(Exception):
        pass

    def crash(event) -> None:
        if event.iteration == 4:
            raise Crash

    path = str(tmp_path / "ckpt.safetensors")
    with pytest.raises(Crash):
        create_distiller("frepo", config).distill(
            real, 2, generator=_gen(1), checkpoint=CheckpointSpec(path, every=3), callbacks=[crash]
        )
    # Execute
    resumed = create_distiller("frepo", config).distill(
        real, 2, generator=_gen(1), checkpoint=CheckpointSpec(path, every=3, resume=True)
    )
    # Assert
    assert torch.equal(resumed.images, full.images) and torch.equal(resumed.labels, full.labels)
