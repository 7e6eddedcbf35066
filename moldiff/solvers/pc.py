"""Predictor–corrector sampling (Song et al. 2021, Algorithm 1 and 4–5): at each time t_i, M
Langevin corrector steps at t_i, then one predictor step from t_i to t_{i+1}.

Predictor: DDPM's ancestral step (exact for one Gaussian transition; Song's "reverse diffusion"
predictor in the continuous-time form of VDM).
Corrector (Langevin MCMC with the model's score ŝ = −ε̂/σ):

    z ← z + δ ŝ + √(2δ) ξ,    δ = 2 (r √d / ‖ŝ‖)²        (Song et al. 2021, Algorithm 4–5)

The step size δ is set per molecule so that the "signal-to-noise ratio" ‖δ ŝ‖ / ‖√(2δ) ξ‖ of the
update is about r (``snr``, default 0.16 as in Song et al.). Two departures from Song's rule, both
because a molecule has few dimensions: norms are per molecule, not averaged over the batch (so
molecules stay independent), and the noise norm ‖ξ‖ is replaced by its expectation √d, with d the
molecule's degrees of freedom ((n − 1)·3 + n·F); with the realised ‖ξ‖ the step would grow with
the very noise it scales. A step size that depends on the state through ‖ŝ‖ still tilts Langevin's
stationary law from p to p / δ ∝ p ‖ŝ‖², which widens a Gaussian's variance by about (d + 2)/d:
negligible for QM9 molecules (d ≈ 140) but visible on tiny test systems. Song's VP variant
multiplies δ by α_i = 1 − β_i; in continuous time that factor is 1, so it is dropped.

Cost: (1 + M) network evaluations per interval (K intervals, K(1 + M) NFE).
"""

from __future__ import annotations

import torch

from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.state import MolGraph, MoleculeNoise, MolState
from moldiff.errors import MoldiffError
from moldiff.solvers._common import per_molecule_norm, time_vector
from moldiff.solvers.ddpm import ancestral_step


def langevin_step(z: MolState, score: MolState, xi: MolState, graph: MolGraph, snr: float) -> MolState:
    """One Langevin corrector step with the SNR step rule above."""
    dof = z.degrees_of_freedom().to(z.dtype)
    delta = 2 * snr**2 * dof / per_molecule_norm(score).clamp(min=1e-12) ** 2
    return z + delta * score + (2 * delta).sqrt() * xi


@torch.no_grad()
def sample_pc(denoiser: Denoiser, z: MolState, times: torch.Tensor, graph: MolGraph,
              noise: MoleculeNoise, callback=None, *, snr: float = 0.16,
              corrector_steps: int = 1) -> MolState:  # fmt: skip
    """Predictor–corrector along ``times`` (K + 1,) from 1 to 0: z_T -> z_0."""
    if snr <= 0 or corrector_steps < 0:
        raise MoldiffError(f"pc: need snr > 0 and corrector_steps >= 0, got {snr}, {corrector_steps}")
    for i in range(len(times) - 1):
        t, s = times[i], times[i + 1]
        t_vec = time_vector(t, z, graph)
        for _ in range(corrector_steps):  # corrector: Langevin at fixed t
            z = langevin_step(z, denoiser.score(z, t_vec, graph), noise.randn(), graph, snr).project()
        x0 = denoiser.x0(z, t_vec, graph)  # predictor: ancestral step t -> s
        z = ancestral_step(z, x0, t, s, denoiser.schedule, noise).project()  # no CoM drift
        if callback is not None:
            callback(i, z)
    return z
