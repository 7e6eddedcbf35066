"""A tiny flow-map backbone for Gaussian toys: u_x = a(s, t)·x, u_h = b(s, t) ⊙ h + c(s, t), with
(a, b, c) from an MLP of the two times. E(3)-equivariant, and able to represent the exact flow map
of Gaussian data (which is affine in z column by column)."""

import torch
from torch import nn

from moldiff.diffusion.gaussian import GaussianData
from moldiff.diffusion.state import MolGraph


class ToyFlowNet(nn.Module):
    def __init__(self, features: int, hidden: int = 64) -> None:
        super().__init__()
        self.features = features
        self.mlp = nn.Sequential(nn.Linear(3, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, 1 + 2 * features))  # fmt: skip

    def forward(self, x, h, s, batch, ptr, cond):
        t, gap = cond[:, -2], cond[:, -1]
        coef = self.mlp(torch.stack([s, t, gap], 1).to(x.dtype))[batch]
        f = self.features
        return coef[:, :1] * x, coef[:, 1 : 1 + f] * h + coef[:, 1 + f :]


def gaussian_batch(data: GaussianData, schedule, molecules: int, atoms: int, generator: torch.Generator):
    """Clean Gaussian states z_0 and their graph."""
    graph = MolGraph.from_counts(torch.full((molecules,), atoms))
    unit = data.state(torch.randn(molecules * atoms, data.dim, generator=generator), graph).project()
    z0 = data.marginal_sample(torch.zeros(molecules), graph, unit, schedule).to(torch.float32)
    return z0, graph


class ToyEpsNet(nn.Module):
    """A tiny denoiser backbone for Gaussian toys: ε̂_x = a(t)·x, ε̂_h = b(t) ⊙ h + c(t), able to
    represent the exact noise prediction of Gaussian data (affine in z column by column)."""

    def __init__(self, features: int, hidden: int = 32) -> None:
        super().__init__()
        self.features = features
        self.mlp = nn.Sequential(nn.Linear(1, hidden), nn.SiLU(), nn.Linear(hidden, 1 + 2 * features))

    def forward(self, x, h, t, batch, ptr, cond=None):
        coef = self.mlp(t[:, None].to(x.dtype))[batch]
        f = self.features
        return coef[:, :1] * x, coef[:, 1 : 1 + f] * h + coef[:, 1 + f :]
