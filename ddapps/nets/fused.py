"""ConvNet's first block computed as one batched matrix product (exact algebra, less memory traffic).

The first block of the dataset-distillation ConvNet (Zhao et al., ICLR 2021) is
``conv3x3 -> instance norm -> ReLU -> avg-pool 2x2`` on images with few channels (1 for MNIST, 3
for CIFAR). Its convolution is cheap (``D = C_in * 9`` multiply-adds per output), but on a
28x28 MNIST image padded to a 32x32 map it writes a ``128 x 32 x 32`` tensor that instance norm
then reads twice and writes once, ReLU reads and writes and pooling reads again: on a CPU that
memory traffic, not arithmetic, is most of the block's time (measured: about half of a whole
ConvNet-3 forward on MNIST).

Instance norm of a convolution has a closed form. With ``P_n`` the ``D x L`` patch matrix of image
``n`` (``F.unfold``), ``Pbar_n`` its mean over the ``L`` positions and ``S_n`` its ``D x D``
covariance, channel ``c`` of the convolution ``z = w_c . P + b_c`` has mean ``w_c . Pbar_n + b_c``
and variance ``w_c^T S_n w_c``, so

    GN(z)_{n,c} = a_{n,c} * w_c . (P_n - Pbar_n) + beta_c,   a_{n,c} = gamma_c / sqrt(w_c^T S_n w_c + eps)

(the convolution's bias cancels). That is one ``[C x D] @ [D x L]`` product per image with
per-image weights, after which ReLU and pooling run on a chunk of images small enough to stay in
cache. The result equals ``pool(relu(norm(conv(x))))`` up to floating-point rounding (tested to
1e-5, gradients included); it is used automatically by :class:`ConvNetFeatures` when the block
has exactly that shape.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ddapps.utils.precision import no_autocast

#: Images per chunk on the no-grad path: 16 x 128 x 16 x 16 floats (2 MiB per product) stay in cache.
NO_GRAD_CHUNK = 16
#: The closed form pays off only while a patch is short (1 or 3 input channels, 3x3 kernel).
MAX_PATCH = 27


def fusable_first_block(layers: nn.Sequential) -> bool:
    """Whether ``layers[0:4]`` is ``Conv2d(stride 1) -> GroupNorm(C, C) -> ReLU -> AvgPool2d(2)``."""
    if len(layers) < 4:
        return False
    conv, norm, act, pool = layers[0], layers[1], layers[2], layers[3]
    return (
        isinstance(conv, nn.Conv2d)
        and conv.stride == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and isinstance(conv.padding, tuple)
        and conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1] <= MAX_PATCH
        and isinstance(norm, nn.GroupNorm)
        and norm.num_groups == norm.num_channels == conv.out_channels
        and type(act) is nn.ReLU
        and _is_pool2x2(pool)
    )


def _is_pool2x2(pool: nn.Module) -> bool:
    """Whether ``pool`` is ``nn.AvgPool2d(2, 2)`` without padding or ceil mode."""
    return (
        isinstance(pool, nn.AvgPool2d)
        and pool.kernel_size in (2, (2, 2))
        and pool.stride in (2, (2, 2))
        and pool.padding in (0, (0, 0))
        and not pool.ceil_mode
    )


def conv_instance_norm_relu_pool(x: Tensor, conv: nn.Conv2d, norm: nn.GroupNorm) -> Tensor:
    """``avg_pool2x2(relu(instance_norm(conv(x))))`` by the closed form of the module docstring."""
    n = x.shape[0]
    out_h, out_w = _conv_out_hw(x, conv)
    patches = F.unfold(x, conv.kernel_size, padding=_padding(conv))  # [N, D, L]
    mean_patch = patches.mean(dim=2)  # [N, D]
    weight = conv.weight.reshape(conv.out_channels, -1)  # [C, D]
    with no_autocast(x.device.type):  # statistics in fp32 under bf16 autocast
        wide = torch.promote_types(patches.dtype, torch.float32)  # bf16 -> fp32; fp32/fp64 kept
        centred = (patches - mean_patch.unsqueeze(2)).to(wide)
        cov = centred @ centred.transpose(1, 2) / centred.shape[2]  # [N, D, D], biased like GroupNorm
        w_wide = weight.to(wide)
        var = ((w_wide @ cov) * w_wide).sum(dim=-1)  # [N, C] = w_c^T S_n w_c
    scale = torch.rsqrt(var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    per_image = scale.unsqueeze(2) * weight  # [N, C, D]
    # a * (w.P + b - mean z) + beta with mean z = w.Pbar + b: the bias cancels but stays in the
    # graph (its gradient is exactly 0), so autograd.grad over all parameters keeps working.
    bias = conv.bias if conv.bias is not None else weight.new_zeros(conv.out_channels)
    mean_z = mean_patch @ weight.t() + bias  # [N, C]
    shift = scale * (bias - mean_z)
    if norm.bias is not None:
        shift = shift + norm.bias
    per_image, shift = per_image.to(patches.dtype), shift.unsqueeze(2).to(patches.dtype)  # [N, C, 1]
    # Columns reordered as (pool offset dy, dx; pooled row, col): the 2x2 average is then the
    # mean of four contiguous [C, L/4] products, each ReLU'd, never a strided pooling pass.
    ph2, pw2 = out_h // 2, out_w // 2
    by_offset = patches.view(n, -1, ph2, 2, pw2, 2).permute(0, 1, 3, 5, 2, 4).reshape(n, -1, 4, ph2 * pw2)
    grad = torch.is_grad_enabled()
    chunk = n if grad else NO_GRAD_CHUNK
    outputs: list[Tensor] = []
    for start in range(0, n, chunk):
        rows = slice(start, min(start + chunk, n))
        acc: Tensor | None = None
        for offset in range(4):
            part = torch.baddbmm(shift[rows], per_image[rows], by_offset[rows, :, offset])
            part = torch.relu(part) if grad else part.relu_()
            acc = part if acc is None else (acc + part if grad else acc.add_(part))
        assert acc is not None
        outputs.append(acc)
    pooled = outputs[0] if len(outputs) == 1 else torch.cat(outputs)
    return (pooled * 0.25).view(n, -1, ph2, pw2)


def avg_pool2x2(x: Tensor) -> Tensor:
    """``F.avg_pool2d(x, 2)`` for even maps as four strided slices (faster on CPU, same values)."""
    return (x[..., ::2, ::2] + x[..., 1::2, ::2] + x[..., ::2, 1::2] + x[..., 1::2, 1::2]) * 0.25


def _padding(conv: nn.Conv2d) -> tuple[int, int]:
    """The conv's numeric padding (string paddings are refused by :func:`fusable_first_block`)."""
    assert not isinstance(conv.padding, str)
    ph, pw = conv.padding
    return int(ph), int(pw)


def _conv_out_hw(x: Tensor, conv: nn.Conv2d) -> tuple[int, int]:
    """Height and width of ``conv(x)`` (stride 1, no dilation: checked by :func:`fusable_first_block`)."""
    (kh, kw), (ph, pw) = conv.kernel_size, _padding(conv)
    return x.shape[2] + 2 * ph - kh + 1, x.shape[3] + 2 * pw - kw + 1


def _even_map(x: Tensor, conv: nn.Conv2d) -> bool:
    """Whether the convolution's output map has even height and width (pooling drops nothing)."""
    h, w = _conv_out_hw(x, conv)
    return h > 0 and w > 0 and h % 2 == 0 and w % 2 == 0


class ConvNetFeatures(nn.Sequential):
    """``nn.Sequential`` (same children, same ``state_dict``) whose first
    ``conv -> instance norm -> ReLU -> avg-pool`` block runs through
    :func:`conv_instance_norm_relu_pool` when it has exactly that shape.

    Both rewrites (the closed form and :func:`avg_pool2x2`) save CPU memory traffic at the price
    of more, smaller operations. On any other device (CUDA) that price is what counts -- every
    operation is a kernel launch, and the launches bound the small-batch networks of dataset
    distillation -- so there the plain ``nn.Sequential`` forward runs (cuDNN convolution, one
    group-norm, one pooling kernel)."""

    def forward(self, x: Tensor) -> Tensor:
        conv, norm = cast(nn.Conv2d, self[0]), cast(nn.GroupNorm, self[1])
        if not (x.device.type == "cpu" and x.dim() == 4 and fusable_first_block(self) and _even_map(x, conv)):
            return super().forward(x)
        h = conv_instance_norm_relu_pool(x, conv, norm)
        in_place = not torch.is_grad_enabled()
        for layer in list(self)[4:]:
            if in_place and type(layer) is nn.ReLU:
                h = h.relu_()  # no graph to keep: skip the copy
            elif _is_pool2x2(layer) and h.dim() == 4 and h.shape[2] % 2 == 0 and h.shape[3] % 2 == 0:
                h = avg_pool2x2(h)
            else:
                h = layer(h)
        return h
