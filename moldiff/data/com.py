"""Zero centre-of-mass helpers. Coordinates live in the subspace where each molecule's mean
position is zero (the unweighted mean, as in EDM), which makes the diffusion translation invariant.

Shapes: ``x`` (N, 3) coordinates, ``batch`` (N,) molecule index, ``num_graphs`` B.
"""

from __future__ import annotations

import torch


def _check(x: torch.Tensor, batch: torch.Tensor) -> None:
    if x.dim() != 2 or batch.shape != (x.shape[0],):
        raise ValueError(f"expected x (N, D) and batch (N,), got {tuple(x.shape)} and {tuple(batch.shape)}")


def molecule_mean(x: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
    """Per-molecule mean of ``x``, (B, D)."""
    _check(x, batch)
    total = torch.zeros(num_graphs, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, batch, x)
    count = torch.bincount(batch, minlength=num_graphs).clamp(min=1).to(x.dtype)
    return total / count[:, None]


def remove_mean(x: torch.Tensor, batch: torch.Tensor, num_graphs: int | None = None) -> torch.Tensor:
    """Project ``x`` onto the zero-centre-of-mass subspace (subtract each molecule's mean)."""
    num_graphs = int(batch.max()) + 1 if num_graphs is None else num_graphs
    return x - molecule_mean(x, batch, num_graphs)[batch]


def max_abs_mean(x: torch.Tensor, batch: torch.Tensor, num_graphs: int | None = None) -> float:
    """Largest |mean| over molecules: 0 (up to rounding) for zero-CoM coordinates."""
    num_graphs = int(batch.max()) + 1 if num_graphs is None else num_graphs
    return float(molecule_mean(x.detach(), batch, num_graphs).abs().max()) if x.numel() else 0.0


def randn_zero_mean(shape: tuple[int, int], batch: torch.Tensor, num_graphs: int, *,
                    generator: torch.Generator | None = None, dtype=torch.float32) -> torch.Tensor:
    """Standard Gaussian noise projected to the zero-CoM subspace (CoM-free noise), (N, D)."""
    noise = torch.randn(shape, generator=generator, dtype=dtype, device=batch.device)
    return remove_mean(noise, batch, num_graphs)
