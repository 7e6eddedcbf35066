"""DDPM ancestral sampling (Ho et al. 2020, Algorithm 2), in the continuous-time form of
Kingma et al. 2021 (VDM, eq. 27–29).

For s < t:  α_{t|s} = α_t / α_s,  σ²_{t|s} = σ_t² − α_{t|s}² σ_s²,
    q(z_s | z_t, x̂₀) = N( α_{t|s} σ_s²/σ_t² · z_t + α_s σ²_{t|s}/σ_t² · x̂₀ ,  σ²_{t|s} σ_s²/σ_t² ).

Cost: one network evaluation per interval (K intervals, K NFE).
"""

from __future__ import annotations

import torch

from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.state import MolGraph, MoleculeNoise, MolState
from moldiff.solvers._common import time_vector


def ancestral_step(z: MolState, x0: MolState, t: torch.Tensor, s: torch.Tensor, schedule,
                   noise: MoleculeNoise) -> MolState:  # fmt: skip
    """One draw from q(z_s | z_t, x̂₀) (VDM eq. 28): z_t -> z_s."""
    a_t, s_t, _, _ = schedule(t)
    a_s, s_s, _, _ = schedule(s)
    a_ts = a_t / a_s
    var_ts = s_t**2 - a_ts**2 * s_s**2
    mean = (a_ts * s_s**2 / s_t**2) * z + (a_s * var_ts / s_t**2) * x0
    std = (var_ts * s_s**2 / s_t**2).sqrt()
    return mean + std * noise.randn()


@torch.no_grad()
def sample_ddpm(denoiser: Denoiser, z: MolState, times: torch.Tensor, graph: MolGraph,
                noise: MoleculeNoise, callback=None) -> MolState:  # fmt: skip
    """Ancestral sampling along ``times`` (K + 1,) from 1 to 0: z_T -> z_0."""
    for i in range(len(times) - 1):
        t, s = times[i], times[i + 1]
        x0 = denoiser.x0(z, time_vector(t, z, graph), graph)
        z = ancestral_step(z, x0, t, s, denoiser.schedule, noise).project()  # no CoM drift
        if callback is not None:
            callback(i, z)
    return z
