"""Heun's second-order method on the probability-flow ODE in EDM's variables (Karras et al. 2022,
Algorithm 1 with S_churn = 0).

With σ̃ = σ/α = e^{−λ} and x̃ = z/α, the PF-ODE of any schedule becomes (EDM eq. 4, Song et al.
2021's DDIM ODE)

    dx̃/dσ̃ = ε̂(α x̃, t(σ̃)),

whose trajectories are nearly straight. Each interval σ̃_i → σ̃_{i+1} takes an Euler step and
corrects it with the slope at its end (trapezoidal rule); the last interval, which ends at the
smallest noise level, keeps the Euler step (EDM: "second order correction unless σ_{i+1} = 0").
Any time grid works; ``heun`` is meant for EDM's ρ = 7 grid (``grids.edm_times``).

Cost: 2K − 1 network evaluations for K intervals.
"""

from __future__ import annotations

import torch

from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.state import MolGraph, MoleculeNoise, MolState
from moldiff.solvers._common import time_vector


@torch.no_grad()
def sample_heun(denoiser: Denoiser, z: MolState, times: torch.Tensor, graph: MolGraph,
                noise: MoleculeNoise, callback=None) -> MolState:  # fmt: skip
    """EDM's deterministic Heun sampler along ``times`` (K + 1,) from 1 to 0: z_T -> z_0."""
    schedule, last = denoiser.schedule, len(times) - 2
    for i in range(len(times) - 1):
        t, s = times[i], times[i + 1]
        a_t, s_t, _, _ = schedule(t)
        a_s, s_s, _, _ = schedule(s)
        x = z / a_t  # x̃_i
        step = s_s / a_s - s_t / a_t  # σ̃_{i+1} − σ̃_i (negative)
        d = denoiser.eps(z, time_vector(t, z, graph), graph)  # slope dx̃/dσ̃ at the start
        x_next = x + step * d  # Euler step
        if i < last:  # trapezoidal correction with the slope at the end
            d_next = denoiser.eps(a_s * x_next, time_vector(s, z, graph), graph)
            x_next = x + step * (0.5 * d + 0.5 * d_next)
        z = (a_s * x_next).project()  # no CoM drift from rounding
        if callback is not None:
            callback(i, z)
    return z
