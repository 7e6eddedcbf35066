"""Adaptive-step probability-flow ODE solver: an embedded Runge–Kutta pair (Bogacki–Shampine 3(2)
by default, or Dormand–Prince 5(4)) with per-molecule step-size control.

The ODE is integrated in λ = log(α/σ) for the scaled state x̃ = z/α (EDM eq. 4 with σ̃ = e^{−λ}):

    dx̃/dλ = −e^{−λ} ε̂(α x̃, t(λ)),

which involves no schedule derivatives and has the same trajectories for every schedule with the
same λ range. Each molecule carries its own λ and step h: a step is accepted when the error norm

    ‖e‖ = √(mean_i (e_i / (atol + rtol · max(|z_i|, |z_new,i|)))²)  ≤ 1

(measured on z = α x̃, per molecule; for coordinates |·| is each atom's 3D vector norm, so step
decisions are E(3)-invariant and a rotated start gives the rotated sample), and h is rescaled by
clamp(0.9 ‖e‖^(−1/(q+1)), 0.2, 5) with q the embedded order (Hairer, Nørsett & Wanner, Solving
ODEs I, §II.4). Per-molecule control keeps each molecule's result independent of its batch.
Molecules that finish wait for the others: ``denoiser.nfe`` counts batched evaluations, the most
any molecule of the batch needed.

``steps`` sets only the first trial step, (λ_end − λ_start)/K; the NFE follows from rtol and atol.
Cost per batch: 1 + (stages − 1) × (accepted + rejected steps) evaluations.
"""

from __future__ import annotations

import torch

from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.state import MolGraph, MoleculeNoise, MolState
from moldiff.errors import MoldiffError
from moldiff.solvers.rk import TABLEAUS

SAFETY, MIN_FACTOR, MAX_FACTOR = 0.9, 0.2, 5.0


def _error_norm(err: MolState, z: MolState, z_new: MolState, rtol: float, atol: float) -> torch.Tensor:
    """RMS of the scaled local error per molecule, (B,). Centred fields (coordinates) are scaled by
    each row's vector norm (not component-wise), so the norm, hence every step decision, is E(3)-invariant."""
    def scaled_sq(e, a, b):
        return (e / (atol + rtol * torch.maximum(a, b))) ** 2

    def row(e: torch.Tensor, f) -> torch.Tensor:
        a, b = z[f.name], z_new[f.name]
        if f.centred:
            return scaled_sq(e.norm(dim=1), a.norm(dim=1), b.norm(dim=1))
        return scaled_sq(e, a.abs(), b.abs()).sum(1)

    return (err.molecule_sum(row) / z.entries().to(err.dtype)).sqrt()


@torch.no_grad()
def sample_adaptive(denoiser: Denoiser, z: MolState, times: torch.Tensor, graph: MolGraph,
                    noise: MoleculeNoise, callback=None, *, rtol: float = 1e-3, atol: float = 1e-3,
                    method: str = "bosh3", max_steps: int = 10_000) -> MolState:  # fmt: skip
    """Adaptive PF-ODE solve from ``times[0]`` to ``times[-1]`` (first trial step from ``times``):
    z_T -> z_0."""
    if method not in TABLEAUS:
        raise MoldiffError(f"adaptive: unknown method {method!r}; choose from {sorted(TABLEAUS)}")
    if rtol <= 0 or atol <= 0:
        raise MoldiffError(f"adaptive: rtol and atol must be > 0, got {rtol}, {atol}")
    tab, schedule = TABLEAUS[method], denoiser.schedule
    b = graph.num_graphs
    ends = schedule.log_snr(torch.stack([times[0], times[-1]]).double())
    lam = ends[0].to(device=z.device, dtype=z.dtype).expand(b).clone()
    lam_end = ends[1].to(device=z.device, dtype=z.dtype)
    h = ((lam_end - lam) / (len(times) - 1)).clone()

    def alpha(lam_b):
        return schedule(schedule.t_from_log_snr(lam_b)).alpha

    def slope(x, lam_b):  # dx̃/dλ per atom
        t = schedule.t_from_log_snr(lam_b)
        eps = denoiser.eps(alpha(lam_b) * x, t, graph)
        return -torch.exp(-lam_b) * eps

    x = z / alpha(lam)
    k_first = slope(x, lam)
    for step in range(max_steps):
        remaining = lam_end - lam
        if bool((remaining <= 0).all()):
            break
        last = h >= remaining  # this step would reach the end: land on it exactly
        h = torch.where(last, remaining, h).clamp(min=0)
        ks = [k_first]
        for i in range(1, tab.stages):
            y = x + h * sum(a * k for a, k in zip(tab.a[i], ks) if a != 0)
            ks.append(slope(y, lam + tab.c[i] * h))
        x_new = x + h * sum(w * k for w, k in zip(tab.b, ks) if w != 0)
        err = h * sum(w * k for w, k in zip(tab.b_err, ks) if w != 0)
        a_new = alpha(lam + h)
        norm = _error_norm(a_new * err, alpha(lam) * x, a_new * x_new, rtol, atol)
        accept = norm <= 1
        x = x_new.where(accept, x).project()  # no CoM drift from rounding
        k_first = ks[-1].where(accept, k_first)  # FSAL: last stage is f(x_new)
        lam = torch.where(accept, torch.where(last, lam_end, lam + h), lam)
        factor = (SAFETY * norm.clamp(min=1e-10) ** (-1.0 / (tab.error_order + 1))).clamp(MIN_FACTOR, MAX_FACTOR)
        h = h * factor
        if callback is not None:
            callback(step, alpha(lam) * x)
    if bool((lam < lam_end).any()):
        raise MoldiffError(f"adaptive: did not reach t = {float(times[-1])} in {max_steps} steps "
                           f"(rtol={rtol}, atol={atol}); loosen the tolerances or raise max_steps")
    return alpha(lam_end.expand(b)) * x
