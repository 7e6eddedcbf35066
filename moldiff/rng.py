"""Seeded random draws onto any device.

A ``torch.Generator`` belongs to one device. Training and sampling keep theirs on the CPU, so that a
seed gives the same noise on every machine, and these helpers move each draw to the device of the
tensors it joins (drawing straight on that device when no generator is given).
"""

from __future__ import annotations

import torch


def _source(generator: torch.Generator | None, device) -> torch.device:
    return generator.device if generator is not None else torch.device(device) if device is not None else torch.device("cpu")


def rand(shape, *, generator: torch.Generator | None = None, device=None, dtype=None) -> torch.Tensor:
    """Uniform [0, 1) draws of ``shape`` on ``device``."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return torch.rand(shape, generator=generator, device=_source(generator, device), dtype=dtype).to(device)


def randn(shape, *, generator: torch.Generator | None = None, device=None, dtype=None) -> torch.Tensor:
    """Standard Gaussian draws of ``shape`` on ``device``."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return torch.randn(shape, generator=generator, device=_source(generator, device), dtype=dtype).to(device)


def randint(high: int, shape, *, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """Integers in [0, high) of ``shape`` on ``device``."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return torch.randint(high, shape, generator=generator, device=_source(generator, device)).to(device)
