"""The variational bound on −log p(x, h, N) in the conventions of EDM (Hoogeboom et al. 2022, §3
and appendix; Kingma et al. 2021 for the continuous-time diffusion term), in nats per molecule:

    −log p(x, h, N) ≤ KL(q(z_1 | x, h) ‖ p(z_1))                         prior
                    + ∫_{λ_1}^{λ_0} E_ε ‖ε − ε̂(z_{t(λ)}, t(λ))‖² dλ          diffusion
                    + E_{q(z_0 | x, h)} [−log p(x | z_0)]                     reconstruction, coordinates
                    + E_{q(z_0 | x, h)} [−log p(h | z_0)]                     reconstruction, atom types
                    − log p(N)                                               atom count

* Coordinates live in the zero-CoM subspace: every Gaussian over them has (N − 1)·3 degrees of
  freedom; type features have N·F.
* prior: p(z_1) = N(0, (α_1² + σ_1²) I), which is EDM's N(0, I) for variance-preserving schedules.
* diffusion: the T → ∞ limit of EDM's sum T · E_t[½ (SNR(s)/SNR(t) − 1) ‖ε − ε̂‖²], i.e. VDM's
  L_∞ = −½ ∫ SNR'(t)/SNR(t) ‖ε − ε̂‖² dt rewritten over λ = ½ log SNR (the integral no longer
  depends on the schedule between its ends). It is estimated with ``samples`` stratified draws of
  λ per molecule. The continuous-time bound is at least as tight as EDM's T = 1000 sum.
* p(x | z_0) = N(x̂_0(z_0), σ_0²/α_0²) on the subspace: (N − 1)·3 (−λ_0 + ½ log 2π) + ½‖ε_x − ε̂_x‖².
* p(h | z_0): EDM's discretised Gaussian on the one-hot scale, per atom and category
  p_k ∝ Φ((u_k − 1 + ½)/σ̄) − Φ((u_k − 1 − ½)/σ̄), u = z_0,h / type_scale, σ̄ = σ_0 / type_scale,
  normalised over the F categories (EDM's ``log_pxh_given_z0_without_constants``).
* log p(N) from the training set's atom-count histogram (EDM subtracts it too).

Differences from EDM's published −110.7 nats on QM9: EDM also diffuses an integer charge channel
(a ninth feature, scaled by 1/10) with its own discretised likelihood and prior/diffusion terms;
moldiff has no charge channel. EDM evaluates the diffusion term with T = 1000 discrete steps.
"""

from __future__ import annotations

import math

import torch

from moldiff import rng
from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.schedules import prior_std
from moldiff.diffusion.state import MolGraph, MolState
from moldiff.diffusion.state import degrees_of_freedom as state_dof

LOG_2PI = math.log(2 * math.pi)


def molecule_sum(values: torch.Tensor, graph: MolGraph) -> torch.Tensor:
    """Sum over each molecule's atoms of a per-atom value (N,) -> (B,)."""
    return torch.zeros(graph.num_graphs, dtype=values.dtype, device=values.device).index_add_(0, graph.batch, values)


def degrees_of_freedom(z: MolState, field: str | None = None) -> torch.Tensor:
    """(B,) dimensions of each molecule's state, or of one ``field`` of it (zero-CoM coordinates:
    (N − 1)·3), in float64."""
    specs = z.specs if field is None else tuple(f for f in z.specs if f.name == field)
    return state_dof(specs, z.graph).double()


def noise(z0: MolState, graph: MolGraph, generator: torch.Generator | None) -> MolState:
    """Zero-CoM Gaussian noise shaped like ``z0``, in float64 (the likelihood's precision)."""
    return z0.randn_like(generator, dtype=torch.float64)


def squares(z: MolState) -> torch.Tensor:
    """(B,) each molecule's squared norm."""
    return z.molecule_sum(lambda v, f: (v**2).sum(1))


def _at(schedule, t: float, like: torch.Tensor):
    return schedule(torch.tensor(t, dtype=torch.float64, device=like.device))


def prior_term(z0: MolState, graph: MolGraph, schedule) -> torch.Tensor:
    """KL(N(α_1 z_0, σ_1² I) ‖ N(0, p² I)) on the molecule's subspace, p² = α_1² + σ_1²: (B,)."""
    values = _at(schedule, 1.0, z0)
    a, s, p = values.alpha, values.sigma, prior_std(values)
    sq = squares(z0.to(torch.float64))
    return degrees_of_freedom(z0) * (torch.log(p / s) + s**2 / (2 * p**2) - 0.5) + a**2 * sq / (2 * p**2)


def diffusion_term(denoiser: Denoiser, z0: MolState, graph: MolGraph, *, samples: int = 1,
                   generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
    """(λ_0 − λ_1) E_{λ ~ U[λ_1, λ_0]} ‖ε − ε̂(z_t(λ), t(λ))‖², stratified over ``samples``: (B,)."""
    schedule = denoiser.schedule
    lam_1, lam_0 = schedule.log_snr(torch.tensor([1.0, 0.0], dtype=torch.float64))
    b, total = graph.num_graphs, torch.zeros(graph.num_graphs, dtype=torch.float64, device=z0.device)
    for k in range(samples):
        u = (k + rng.rand(b, generator=generator, device="cpu", dtype=torch.float64)) / samples  # λ on the CPU
        t = schedule.t_from_log_snr(lam_1 + u * (lam_0 - lam_1)).to(device=z0.device)
        eps = noise(z0, graph, generator)
        a, s, _, _ = schedule(t)
        z_t = (a * z0.to(torch.float64) + s * eps).to(z0.dtype)
        total += squares(eps - denoiser.eps(z_t, t.to(z0.dtype), graph).to(torch.float64))
    return (lam_0 - lam_1) * total / samples


def decoder_nll(denoiser: Denoiser, z0: MolState, eps: MolState, graph: MolGraph,
                type_scale: float) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """(−log p(x | z_0), −log p(h | z_0)) per molecule (B,) for z_0 = α_0 z0 + σ_0 ε. One NFE."""
    values = _at(denoiser.schedule, 0.0, z0)
    a0, s0 = values.alpha, values.sigma
    lam_0 = torch.log(a0 / s0)
    z_t0 = a0 * z0.to(torch.float64) + s0 * eps
    t = torch.zeros(graph.num_graphs, dtype=z0.dtype, device=z0.device)
    eps_hat = denoiser.eps(z_t0.to(z0.dtype), t, graph).to(torch.float64)
    sq_x = molecule_sum(((eps["coords"] - eps_hat["coords"]) ** 2).sum(1), graph)
    nll_x = degrees_of_freedom(z0, "coords") * (-lam_0 + 0.5 * LOG_2PI) + 0.5 * sq_x

    # EDM's discretised likelihood of the one-hot types, read from z_0 itself
    u = z_t0["types"] / type_scale - 1
    sigma = s0 / type_scale
    phi = torch.special.ndtr
    log_prop = torch.log(phi((u + 0.5) / sigma) - phi((u - 0.5) / sigma) + 1e-10)
    log_probs = log_prop - torch.logsumexp(log_prop, dim=1, keepdim=True)
    true = z0["types"].argmax(1)
    nll_h = -molecule_sum(log_probs.gather(1, true[:, None])[:, 0], graph)
    return nll_x, nll_h


@torch.no_grad()
def variational_bound(denoiser: Denoiser, z0: MolState, graph: MolGraph, *, type_scale: float,
                      log_p_n: torch.Tensor | None = None, samples: int = 1,
                      generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """The bound's terms and their sum ``nll`` per molecule, each (B,) in nats, for clean states
    ``z0`` (zero-CoM coordinates and scaled one-hot types). Costs ``samples`` + 1 NFE per molecule.
    ``log_p_n`` (B,): log-probability of each molecule's atom count (0 if omitted)."""
    terms = {"prior": prior_term(z0, graph, denoiser.schedule),
             "diffusion": diffusion_term(denoiser, z0, graph, samples=samples, generator=generator)}  # fmt: skip
    terms["recon_x"], terms["recon_h"] = decoder_nll(denoiser, z0, noise(z0, graph, generator), graph, type_scale)
    terms["log_p_n"] = torch.zeros_like(terms["prior"]) if log_p_n is None else log_p_n.to(terms["prior"])
    terms["nll"] = terms["prior"] + terms["diffusion"] + terms["recon_x"] + terms["recon_h"] - terms["log_p_n"]
    return terms
