"""Seeded random draws onto any device.

A ``torch.Generator`` belongs to one device. Training and sampling keep theirs on the CPU, so that a
seed gives the same noise on every machine, and these helpers move each draw to the device of the
tensors it joins (drawing straight on that device when no generator is given).
"""

from __future__ import annotations

from functools import partial

import torch


def _draw(sample, shape, generator: torch.Generator | None, device, **kwargs) -> torch.Tensor:
    source = generator.device if generator is not None else device
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return sample(shape, generator=generator, device=source, **kwargs).to(device)


def rand(shape, *, generator: torch.Generator | None = None, device=None, dtype=None) -> torch.Tensor:
    """Uniform [0, 1) draws of ``shape`` on ``device``."""
    return _draw(torch.rand, shape, generator, device, dtype=dtype)


def randn(shape, *, generator: torch.Generator | None = None, device=None, dtype=None) -> torch.Tensor:
    """Standard Gaussian draws of ``shape`` on ``device``."""
    return _draw(torch.randn, shape, generator, device, dtype=dtype)


def randint(high: int, shape, *, generator: torch.Generator | None = None, device=None, dtype=None) -> torch.Tensor:
    """Integers in [0, high) of ``shape`` on ``device`` (int64 unless ``dtype``)."""
    return _draw(partial(torch.randint, high), shape, generator, device, dtype=dtype)
