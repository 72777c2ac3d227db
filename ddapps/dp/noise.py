"""Where a DP mechanism's randomness comes from: a secret source, or (for tests) a seeded one.

A Gaussian mechanism protects a record only if the adversary cannot predict its noise. Every
other random choice of ddapps (networks, augmentations, initial noise images) flows from one
seeded ``torch.Generator`` so that runs repeat; if the DP noise and the Poisson sampling came from
that generator too, anyone who knows the seed (written into the set's metadata, or chosen by a
federated server) could replay the noise and tell neighbouring datasets apart with certainty:
the effective epsilon would be infinite. So the two draws that the privacy proof relies on --
the sampling of the records and the Gaussian noise -- come from a :class:`NoiseSource`:

* :class:`SecretNoise` (the default): bytes from the operating system's cryptographically
  secure generator (``os.urandom``, i.e. ``getrandom(2)``), turned into uniforms with 53 random
  bits each and into normals by the Box-Muller transform in float64. Nothing about it is stored;
  two runs with the same seed release different sets. This is what Opacus' ``secure_mode`` asks
  of its generator (a CSPRNG); the float64 Box-Muller keeps the normals' tails exact to float
  precision before they are cast (Mironov, "On significance of the least significant bits for
  differential privacy", CCS 2012, concerns float artefacts of the *output*; the noise here is
  added in float32 to a clipped sum, as Opacus does).
* :class:`SeededNoise`: a ``torch.Generator`` seeded from the run's generator -- reproducible,
  for tests and debugging only. A release made with it is marked ``private: False`` in
  ``meta["privacy"]`` and the audit never calls it private.

The public randomness (networks, augmentation, initial noise images) stays on the run's
generator: DP holds for any fixed value of it, so knowing it costs nothing.
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod

import numpy as np
import torch
from torch import Tensor

SECRET = "os-urandom"
SEEDED = "seeded (deterministic; not private)"


class NoiseSource(ABC):
    """Uniform and standard-normal draws for the sampling and noise of a DP mechanism."""

    kind: str
    private: bool

    @abstractmethod
    def uniform(self, n: int) -> Tensor:
        """``n`` float64 draws from U[0, 1)."""

    @abstractmethod
    def normal(self, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> Tensor:
        """Standard normal draws of ``shape`` (on the CPU)."""

    def state(self) -> Tensor:
        """What a checkpoint must keep to resume the same draws (uint8; empty when nothing can be kept)."""
        return torch.zeros(0, dtype=torch.uint8)

    def set_state(self, state: Tensor) -> None:  # noqa: B027 - a secret source has nothing to restore
        """Restore :meth:`state` (nothing to restore for a secret source)."""

    def poisson_sample(self, indices: Tensor, rate: float) -> Tensor:
        """The entries of ``indices`` that each join independently with probability ``rate``."""
        keep = self.uniform(indices.numel()) < rate
        return indices[keep.to(indices.device)]


class SecretNoise(NoiseSource):
    """Draws from the operating system's CSPRNG; never seeded, never stored (see the module doc)."""

    kind = SECRET
    private = True

    def uniform(self, n: int) -> Tensor:
        words = np.frombuffer(os.urandom(8 * n), dtype=np.uint64)
        # the top 53 bits of each word, scaled to [0, 1): every double of that grid equally likely
        return torch.from_numpy((words >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53)))

    def normal(self, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> Tensor:
        n = math.prod(shape)
        pairs = (n + 1) // 2
        u = self.uniform(2 * pairs)
        u1, u2 = 1.0 - u[:pairs], u[pairs:]  # u1 in (0, 1]: log is finite
        radius = torch.sqrt(-2.0 * torch.log(u1))
        angle = (2.0 * math.pi) * u2
        z = torch.cat([radius * torch.cos(angle), radius * torch.sin(angle)])[:n]
        return z.view(shape).to(dtype)


class SeededNoise(NoiseSource):
    """Draws from a seeded ``torch.Generator``: reproducible, therefore not private."""

    kind = SEEDED
    private = False

    def __init__(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(int(seed))

    def state(self) -> Tensor:
        return self.generator.get_state()

    def set_state(self, state: Tensor) -> None:
        self.generator.set_state(state.clone())

    def uniform(self, n: int) -> Tensor:
        return torch.rand(n, generator=self.generator, dtype=torch.float64)

    def normal(self, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> Tensor:
        return torch.randn(shape, generator=self.generator, dtype=dtype)


def noise_source(deterministic: bool, generator: torch.Generator) -> NoiseSource:
    """The mechanism's source: :class:`SecretNoise`, or :class:`SeededNoise` when ``deterministic``.

    One seed is drawn from ``generator`` in both cases, so the public random stream (networks,
    augmentations) is the same whichever source is chosen.
    """
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return SeededNoise(seed) if deterministic else SecretNoise()
