"""DDIM (Song, Meng & Ermon 2021, eq. 12), for any schedule x_t = α_t x_0 + σ_t ε:

    z_s = α_s x̂₀ + √(σ_s² − c²) ε̂ + c ξ,   c = η · σ_s/σ_t · √(σ_t² − (α_t/α_s)² σ_s²).

η = 0 is the deterministic DDIM map (the first-order exponential integrator of the probability-flow
ODE); η = 1 is exactly DDPM's ancestral step; η > 1 adds more noise than DDPM.

Cost: one network evaluation per interval (K intervals, K NFE).
"""

from __future__ import annotations

import torch

from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.state import MolGraph, MoleculeNoise, MolState
from moldiff.errors import MoldiffError
from moldiff.solvers._common import time_vector


@torch.no_grad()
def sample_ddim(denoiser: Denoiser, z: MolState, times: torch.Tensor, graph: MolGraph,
                noise: MoleculeNoise, callback=None, *, eta: float = 0.0) -> MolState:  # fmt: skip
    """DDIM along ``times`` (K + 1,) from 1 to 0 with noise level ``eta`` ≥ 0: z_T -> z_0."""
    if eta < 0:
        raise MoldiffError(f"ddim: eta must be >= 0, got {eta}")
    for i in range(len(times) - 1):
        t, s = times[i], times[i + 1]
        x0, eps = denoiser.x0_eps(z, time_vector(t, z, graph), graph)
        a_t, s_t, _, _ = denoiser.schedule(t)
        a_s, s_s, _, _ = denoiser.schedule(s)
        # c² = η² σ²_{t|s} σ_s² / σ_t²: the DDPM posterior variance scaled by η²
        var_ts = (s_t**2 - (a_t / a_s) ** 2 * s_s**2).clamp(min=0)
        c = eta * s_s / s_t * var_ts.sqrt()
        z = a_s * x0 + (s_s**2 - c**2).clamp(min=0).sqrt() * eps
        if eta > 0:
            z = z + c * noise.randn()
        z = z.project()  # no CoM drift from rounding
        if callback is not None:
            callback(i, z)
    return z
