"""Small helpers the solvers share."""

from __future__ import annotations

import torch

from moldiff.diffusion.state import MolGraph


def time_vector(t: torch.Tensor, z: torch.Tensor, graph: MolGraph) -> torch.Tensor:
    """A scalar time as the per-molecule vector (B,) the denoiser takes, in ``z``'s dtype and device."""
    return t.to(device=z.device, dtype=z.dtype).expand(graph.num_graphs)


def per_molecule_norm(x: torch.Tensor, graph: MolGraph) -> torch.Tensor:
    """Euclidean norm of each molecule's block of ``x`` (N, D) -> (B,)."""
    sq = torch.zeros(graph.num_graphs, dtype=x.dtype, device=x.device).index_add_(0, graph.batch, (x * x).sum(1))
    return sq.sqrt()
