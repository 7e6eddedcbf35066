"""Shared toys: Gaussian data with exact denoisers, conditional and unconditional."""

import torch
from torch import nn

from moldiff.diffusion.gaussian import GaussianData
from moldiff.diffusion.state import MolGraph, MolState


class ConditionalGaussianNet(nn.Module):
    """Exact ε̂ of N(m_c, s²) when a molecule's condition flag (last column of cond) is 1, of
    N(m_u, s²) when it is 0: an ideally trained classifier-free model."""

    def __init__(self, cond_data: GaussianData, uncond_data: GaussianData, schedule) -> None:
        super().__init__()
        self.cond_data, self.uncond_data, self.schedule = cond_data, uncond_data, schedule

    def forward(self, x, h, t, batch, ptr, cond=None):
        graph = MolGraph(batch=batch, ptr=ptr)
        z = MolState({"coords": x, "types": h}, self.cond_data.fields, graph)
        flag = cond[:, -1].to(x.dtype)  # per molecule
        out = flag * self.cond_data.eps(z, t, graph, self.schedule) + (1 - flag) * self.uncond_data.eps(
            z, t, graph, self.schedule
        )
        return out["coords"], out["types"]


def feature_mean(z: MolState) -> torch.Tensor:
    return z["types"].mean(0)
