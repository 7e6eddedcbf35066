"""Euler's method on the probability-flow ODE in t (Song et al. 2021, eq. 13), written with the
velocity of the path x_t = α_t x_0 + σ_t ε (the marginal velocity field of flow matching,
Lipman et al. 2023, eq. 8):

    dz/dt = v̂(z, t) = α'_t x̂₀ + σ'_t ε̂,       z_s = z_t + (s − t) v̂(z_t, t).

On the linear schedule this is flow matching's usual sampler.

Cost: one network evaluation per interval (K intervals, K NFE).
"""

from __future__ import annotations

import torch

from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.state import MolGraph, MoleculeNoise, MolState
from moldiff.solvers._common import time_vector


@torch.no_grad()
def sample_euler(denoiser: Denoiser, z: MolState, times: torch.Tensor, graph: MolGraph,
                 noise: MoleculeNoise, callback=None) -> MolState:  # fmt: skip
    """Euler steps of the PF-ODE along ``times`` (K + 1,) from 1 to 0: z_T -> z_0."""
    for i in range(len(times) - 1):
        t, s = times[i], times[i + 1]
        z = (z + (s - t) * denoiser.velocity(z, time_vector(t, z, graph), graph)).project()  # no CoM drift
        if callback is not None:
            callback(i, z)
    return z
