"""Shared toys: Gaussian data with exact denoisers, conditional and unconditional."""

import torch
from torch import nn

from moldiff.diffusion.gaussian import GaussianData
from moldiff.diffusion.state import N_COORDS, MolGraph


class ConditionalGaussianNet(nn.Module):
    """Exact ε̂ of N(m_c, s²) when a molecule's condition flag (last column of cond) is 1, of
    N(m_u, s²) when it is 0: an ideally trained classifier-free model."""

    def __init__(self, cond_data: GaussianData, uncond_data: GaussianData, schedule) -> None:
        super().__init__()
        self.cond_data, self.uncond_data, self.schedule = cond_data, uncond_data, schedule

    def forward(self, x, h, t, batch, ptr, cond=None):
        graph = MolGraph(batch=batch, ptr=ptr)
        z = torch.cat([x, h], 1)
        flag = cond[batch, -1:].to(z.dtype)
        out = flag * self.cond_data.eps(z, t, graph, self.schedule) + (1 - flag) * self.uncond_data.eps(
            z, t, graph, self.schedule
        )
        return out[:, :N_COORDS], out[:, N_COORDS:]


def feature_mean(z: torch.Tensor) -> torch.Tensor:
    return z[:, N_COORDS:].mean(0)
