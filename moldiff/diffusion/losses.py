"""Training losses. The variational view trains ε-prediction with L_simple (Ho et al. 2020):
the ELBO's per-time terms with their SNR weights dropped, times drawn uniformly.
"""

from __future__ import annotations

import torch

from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.state import N_COORDS, MolGraph, project


def noise_state(z0: torch.Tensor, t: torch.Tensor, graph: MolGraph, denoiser: Denoiser,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """z_t = α_t z_0 + σ_t ε with CoM-free ε. Returns (z_t, ε), each (N, 3 + F)."""
    eps = project(torch.randn(z0.shape, generator=generator, device=z0.device), graph)
    a, s, _, _ = denoiser.coefficients(t, graph)
    return a * z0 + s * eps, eps


def per_molecule_mean(values: torch.Tensor, graph: MolGraph) -> torch.Tensor:
    """Mean over each molecule's atoms of a per-atom value (N,) -> (B,)."""
    total = torch.zeros(graph.num_graphs, device=values.device, dtype=values.dtype)
    return total.index_add_(0, graph.batch, values) / graph.num_atoms.to(values.dtype)


def simple_loss(denoiser: Denoiser, z0: torch.Tensor, graph: MolGraph, *, type_weight: float = 1.0,
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """L_simple: ‖ε̂ − ε‖² averaged per molecule over its coordinates and (weighted) features."""
    t = torch.rand(graph.num_graphs, generator=generator, device=z0.device)
    z_t, eps = noise_state(z0, t, graph, denoiser, generator)
    err = (denoiser.eps(z_t, t, graph) - eps) ** 2
    err_x = err[:, :N_COORDS].sum(1)
    err_h = err[:, N_COORDS:].sum(1)
    dims = N_COORDS + type_weight * (z0.shape[1] - N_COORDS)
    loss_x = per_molecule_mean(err_x, graph) / N_COORDS
    loss_h = per_molecule_mean(err_h, graph) / max(z0.shape[1] - N_COORDS, 1)
    loss = per_molecule_mean(err_x + type_weight * err_h, graph) / dims
    return {"loss": loss.mean(), "loss_pos": loss_x.mean().detach(), "loss_type": loss_h.mean().detach()}
