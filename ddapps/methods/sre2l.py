"""SRe2L: squeeze, recover and relabel.

Yin, Xing & Shen, "Squeeze, Recover and Relabel: Dataset Condensation at ImageNet Scale From A
New Perspective", NeurIPS 2023.

*Squeeze*: a teacher (ResNet-18 with batch norm) is trained on the real data (``teacher=PATH``,
see :mod:`ddapps.methods.teacher_based`). *Recover*: synthetic images start as Gaussian noise in
normalised space and are optimised so that the frozen teacher classifies them as their class while
the statistics of every batch-norm layer's input match the layer's running statistics:

    L(x) = CE(f(A(x)), y) + r_bn * sum_l a_l * ( ||mu_l(A(x)) - mu_l^run||_2 + ||sigma_l^2(A(x)) - sigma_l^2,run||_2 )

with ``mu_l``/``sigma_l^2`` the per-channel mean and (biased) variance of layer ``l``'s input over
the batch and ``a_l`` = ``first_bn_multiplier`` for the first layer, 1 for the others. ``A`` is
drawn afresh at every step: a random resized crop (area ``U(crop_scale_min, 1)``) and a horizontal
flip shared by the batch, then a random circular shift of up to ``jitter`` pixels. Each batch
holds one image per class of a block of ``batch_classes`` classes at one image slot, and is
optimised for ``iterations`` steps of Adam (``lr``, betas (0.5, 0.9)) with a cosine learning-rate
decay to 0, pixels clipped to the valid range after every step. *Relabel*: the teacher's soft
labels of the stored images (:meth:`~ddapps.methods.teacher_based.TeacherDistiller.finish`).

Defaults are the paper's ImageNet-1k recover settings (its code's README command: batch 100,
lr 0.25, r_bn 0.01, 1,000 iterations -- 4,000 for the best results -- first-layer multiplier 10,
jitter 32 pixels at 224 px; here the jitter scales with the image side). Batches are independent
units, so :mod:`ddapps.distributed` splits them over ranks.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ddapps.data import Benchmark
from ddapps.errors import ConfigError
from ddapps.methods.base import METHODS, DistillRequest, IterationEvent
from ddapps.methods.crops import apply_boxes, sample_boxes
from ddapps.methods.teacher_based import SMOKE_TEACHER, TeacherConfig, TeacherDistiller, warm_slots
from ddapps.nets import batch_norm_layers
from ddapps.synthetic import SyntheticSet
from ddapps.utils.precision import autocast
from ddapps.utils.seeding import derive_seed, draw_seed, make_generator
from ddapps.validation import check_count, check_fields, check_number, check_positive, check_rate


@dataclass(frozen=True)
class SRe2LConfig(TeacherConfig):
    """SRe2L recover hyper-parameters; defaults are the paper's ImageNet-1k ones."""

    iterations: int = 1000
    lr: float = 0.25
    beta1: float = 0.5
    beta2: float = 0.9
    r_bn: float = 0.01
    first_bn_multiplier: float = 10.0
    batch_classes: int = 100
    jitter: int | None = None
    """Largest circular shift in pixels; ``None``: 32 at 224 px, scaled with the image side."""
    crop_scale_min: float = 0.08
    flip: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_count("iterations", self.iterations)
        check_fields(self, check_number, "lr", "first_bn_multiplier")
        check_number("r_bn", self.r_bn, low_inclusive=True)
        for name in ("beta1", "beta2"):
            if check_number(name, getattr(self, name), low_inclusive=True) >= 1:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        check_positive("batch_classes", self.batch_classes)
        if self.jitter is not None:
            check_count("jitter", self.jitter)
        check_rate("crop_scale_min", self.crop_scale_min)


class BatchNormStatistics:
    """Forward hooks measuring ``||mu - running_mean||_2 + ||var - running_var||_2`` per BN layer."""

    def __init__(self, net: nn.Module) -> None:
        self.layers = batch_norm_layers(net)
        self.losses: list[Tensor] = []
        self.handles = [layer.register_forward_hook(self._hook) for layer in self.layers]

    def _hook(self, module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        x = inputs[0].float()
        dims = [d for d in range(x.ndim) if d != 1]
        mean = x.mean(dim=dims)
        var = x.var(dim=dims, unbiased=False)
        running_mean, running_var = module.running_mean, module.running_var
        assert isinstance(running_mean, Tensor) and isinstance(running_var, Tensor)
        self.losses.append(torch.linalg.vector_norm(var - running_var) + torch.linalg.vector_norm(mean - running_mean))

    def take(self, first_multiplier: float) -> Tensor:
        """The weighted sum over layers of the last forward pass (and forget it)."""
        losses, self.losses = self.losses, []
        if not losses:
            return torch.zeros(())
        return torch.stack([loss * (first_multiplier if i == 0 else 1.0) for i, loss in enumerate(losses)]).sum()

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


@METHODS.register("sre2l")
class SqueezeRecoverRelabel(TeacherDistiller):
    """SRe2L (Yin, Xing & Shen, NeurIPS 2023); see the module docstring."""

    name = "sre2l"
    config_class = SRe2LConfig
    config: SRe2LConfig
    needs_batch_norm = True
    smoke_config = {"iterations": 4, **SMOKE_TEACHER}

    def units(self, num_classes: int, ipc: int) -> list[tuple[int, list[int]]]:
        """The recover batches in order: ``(slot, classes)`` for each image slot and class block."""
        step = self.config.batch_classes
        blocks = [list(range(s, min(s + step, num_classes))) for s in range(0, num_classes, step)]
        return [(slot, block) for slot in range(ipc) for block in blocks]

    def _distill(self, request: DistillRequest) -> SyntheticSet:
        real, ipc = request.real, request.ipc
        base_seed = draw_seed(request.generator)
        teacher = self.get_teacher(real)
        channels, (height, width) = real.channels, real.image_size
        images = torch.zeros(real.num_classes * ipc, channels, height, width)
        warm = warm_slots(request.init, real.num_classes)
        units = self.units(real.num_classes, ipc)
        owned = [u for u in range(len(units)) if self.owns_unit(u)]
        hooks = BatchNormStatistics(teacher.net)
        total = len(owned) * self.config.iterations
        done = 0

        def report(loss: float, seconds: float) -> None:
            nonlocal done
            done += 1
            for callback in request.callbacks:
                callback(IterationEvent(iteration=done, total=total, loss=loss, seconds=seconds))

        try:
            for u in tqdm(owned, desc=self.name, disable=not self.progress):
                slot, classes = units[u]
                rows = torch.tensor([c * ipc + slot for c in classes])
                gen = make_generator(derive_seed(base_seed, "sre2l", slot, classes[0]))
                start = torch.randn(len(classes), channels, height, width, generator=gen)
                for i, c in enumerate(classes):
                    if c in warm and slot < warm[c].shape[0]:
                        start[i] = warm[c][slot]
                on_step = report if request.callbacks else None  # a loss read per step syncs a GPU
                images[rows] = self.recover(teacher.net, hooks, start, torch.tensor(classes), real, gen, on_step)
        finally:
            hooks.remove()
        images = self.combine_units(images)
        return self.finish(real, ipc, images, teacher, base_seed=base_seed)

    def recover(
        self,
        net: nn.Module,
        hooks: BatchNormStatistics,
        start: Tensor,
        labels: Tensor,
        real: Benchmark,
        generator: torch.Generator,
        report: Callable[[float, float], None] | None = None,
    ) -> Tensor:
        """Optimise one batch from ``start`` for ``iterations`` steps; returns the final images (CPU)."""
        cfg = self.config
        x = start.to(self.device).requires_grad_(True)
        y = labels.to(self.device)
        optimizer = torch.optim.Adam([x], lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8)
        low, high = pixel_bounds(real, self.device)
        height, width = real.image_size
        jitter = cfg.jitter if cfg.jitter is not None else round(32 * min(height, width) / 224)
        for it in range(cfg.iterations):
            for group in optimizer.param_groups:
                group["lr"] = 0.5 * cfg.lr * (1 + math.cos(math.pi * it / cfg.iterations))
            box = sample_boxes(
                1, generator=generator, scale=(cfg.crop_scale_min, 1.0), aspect=width / height, flip=cfg.flip
            )
            shift = torch.randint(0, jitter + 1, (2,), generator=generator).tolist()
            t0 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            view = apply_boxes(x, box.expand(x.shape[0], -1), (height, width))
            view = torch.roll(view, shifts=(shift[0], shift[1]), dims=(2, 3))
            with autocast(self.device):
                logits = net(view).float()
            loss = F.cross_entropy(logits, y) + cfg.r_bn * hooks.take(cfg.first_bn_multiplier).to(self.device)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                if low is not None and high is not None:
                    x.copy_(torch.maximum(torch.minimum(x, high), low))
            if report is not None:
                report(float(loss.detach()), time.perf_counter() - t0)
        return x.detach().to("cpu", torch.float32)


def pixel_bounds(real: Benchmark, device: torch.device) -> tuple[Tensor | None, Tensor | None]:
    """Per-channel ``[1, C, 1, 1]`` bounds of normalised pixels in [0, 1] (``None`` under ZCA)."""
    if real.zca is not None:
        return None, None
    mean = torch.tensor(real.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(real.std, device=device).view(1, -1, 1, 1)
    return (0 - mean) / std, (1 - mean) / std
