"""DDPM ancestral sampling (Ho et al. 2020), in the continuous-time form of Kingma et al. 2021.

For s < t:  α_{t|s} = α_t / α_s,  σ²_{t|s} = σ_t² − α_{t|s}² σ_s²,
    q(z_s | z_t, x̂₀) = N( α_{t|s} σ_s²/σ_t² · z_t + α_s σ²_{t|s}/σ_t² · x̂₀ ,  σ²_{t|s} σ_s²/σ_t² ).
"""

from __future__ import annotations

import torch

from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.state import MolGraph, MoleculeNoise


@torch.no_grad()
def sample_ddpm(denoiser: Denoiser, z: torch.Tensor, times: torch.Tensor, graph: MolGraph,
                noise: MoleculeNoise, callback=None) -> torch.Tensor:  # fmt: skip
    b = graph.num_graphs
    for i in range(len(times) - 1):
        t, s = times[i], times[i + 1]
        t_vec = torch.full((b,), float(t), device=z.device)
        x0 = denoiser.x0(z, t_vec, graph)
        a_t, s_t, _, _ = denoiser.schedule(t)
        a_s, s_s, _, _ = denoiser.schedule(s)
        a_ts = a_t / a_s
        var_ts = s_t**2 - a_ts**2 * s_s**2
        mean = (a_ts * s_s**2 / s_t**2) * z + (a_s * var_ts / s_t**2) * x0
        std = (var_ts * s_s**2 / s_t**2).sqrt()
        z = mean + std * noise.randn(z.shape[1])
        if callback is not None:
            callback(i, z)
    return z
