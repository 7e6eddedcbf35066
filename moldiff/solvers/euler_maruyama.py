"""Euler–Maruyama on the reverse-time SDE (Song et al. 2021, eq. 6; Anderson 1982).

The forward process x_t = α_t x_0 + σ_t ε is the SDE dz = f z dt + g dW with
    f = α'/α,   g² = dσ²/dt − 2 f σ² = −2 σ² dλ/dt,
and its reverse is dz = (f z − g² ∇log p_t(z)) dt + g dW̄. With the score −ε̂/σ, one step from t to
s < t (h = s − t < 0) is

    z_s = z_t + (f z_t − 2 σ λ' ε̂) h + g √|h| ξ.

Coefficients are taken at the left end t (plain Euler–Maruyama), so a schedule that is flat at
t = 1 (EDM's polynomial: α' = σ' = 0 there) makes the first step a no-op.

Cost: one network evaluation per interval (K intervals, K NFE).
"""

from __future__ import annotations

import torch

from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.schedules import d_log_snr
from moldiff.diffusion.state import MolGraph, MoleculeNoise, MolState
from moldiff.solvers._common import time_vector


@torch.no_grad()
def sample_euler_maruyama(denoiser: Denoiser, z: MolState, times: torch.Tensor, graph: MolGraph,
                          noise: MoleculeNoise, callback=None) -> MolState:  # fmt: skip
    """Euler–Maruyama on the reverse SDE along ``times`` (K + 1,) from 1 to 0: z_T -> z_0."""
    for i in range(len(times) - 1):
        t, s = times[i], times[i + 1]
        h = s - t
        eps = denoiser.eps(z, time_vector(t, z, graph), graph)
        values = denoiser.schedule(t)
        lam_dot = d_log_snr(values)
        f = values.d_alpha / values.alpha
        g = (-2 * values.sigma**2 * lam_dot).clamp(min=0).sqrt()
        drift = f * z - 2 * values.sigma * lam_dot * eps  # −g² · score, score = −ε̂/σ
        z = (z + drift * h + g * (-h).sqrt() * noise.randn()).project()  # no CoM drift
        if callback is not None:
            callback(i, z)
    return z
