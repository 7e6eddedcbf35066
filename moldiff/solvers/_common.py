"""Small helpers the solvers share."""

from __future__ import annotations

import torch

from moldiff.diffusion.state import MolGraph, MolState


def time_vector(t: torch.Tensor, z: MolState, graph: MolGraph) -> torch.Tensor:
    """A scalar time as the per-molecule vector (B,) the denoiser takes, in ``z``'s dtype and device."""
    return t.to(device=z.device, dtype=z.dtype).expand(graph.num_graphs)


def per_molecule_norm(x: MolState) -> torch.Tensor:
    """Euclidean norm of each molecule's state -> (B,)."""
    g, sq = x.graph, 0
    for on in ("atoms", "pairs"):
        block = x.block(on)
        if block is not None:  # a row's fields summed together: the order this sum has always had
            zeros = torch.zeros(g.num_graphs, dtype=block.dtype, device=block.device)
            sq = sq + zeros.index_add_(0, g.index(on), (block * block).sum(1))
    return sq.sqrt()
