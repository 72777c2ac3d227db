"""Explicit, reproducible randomness: every random draw in ddapps comes from a ``torch.Generator``.

Nothing here touches the global RNG. Iterative methods derive one generator per iteration from a
base seed, so a run resumed from a checkpoint draws exactly the numbers an uninterrupted run draws.
"""

from __future__ import annotations

import hashlib

import torch

_MASK63 = (1 << 63) - 1


def make_generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed``."""
    gen = torch.Generator()
    gen.manual_seed(int(seed) & _MASK63)
    return gen


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed derived from ``parts`` by hashing (stable across processes and platforms)."""
    text = "/".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big") & _MASK63


def draw_seed(generator: torch.Generator) -> int:
    """Draw a fresh 62-bit seed from ``generator`` (advances it)."""
    return int(torch.randint(0, 2**62, (1,), generator=generator).item())
