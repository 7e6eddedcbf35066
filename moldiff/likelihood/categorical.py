"""The variational bound's terms for one categorical field on a mixture path
(``moldiff.diffusion.categorical``), per entry, in nats, as pure functions of classes and of the
network's p(x_0 | x_t).

The reverse model is the one every solver samples: p_θ(x_s | x_t) = Σ_c p_θ(x_0 = c | x_t)
q(x_s | x_t, x_0 = c) (:func:`moldiff.diffusion.categorical.reverse_probabilities`). With T steps
0 = t_0 < t_1 < … < t_T = 1 the discrete-time bound on −log p(x_0) of one entry is (D3PM, Austin
et al. 2021, eq. 5)

    KL(q(x_1 | x_0) ‖ p)                                               :func:`prior_kl`
    + Σ_{i≥2} E_{q(x_{t_i} | x_0)} KL(q(x_{t_{i−1}} | x_{t_i}, x_0) ‖ p_θ(x_{t_{i−1}} | x_{t_i}))   :func:`step_kl`
    + E_{q(x_{t_1} | x_0)} [−log p_θ(x_0 | x_{t_1})]                    :func:`reconstruction_nll`

As the steps shrink, each KL is (t − s) times the KL rate between the two reverse chains' jump
rates (Campbell et al. 2022, "A continuous time framework for discrete denoising models", §3):
the forward chain leaves class i for j ≠ i at rate β(t) p_j, so the reverse chain given x_0 = c
jumps from i to j at R_c(i→j) = β(t) p_i q_t(j|c)/q_t(i|c), the model at
R_θ(i→j) = Σ_c p_θ(c | x_t) R_c(i→j) (over the clean classes c that can have led to i), and

    lim KL/(t − s) = Σ_{j≠i} R_x0 log(R_x0/R_θ) − R_x0 + R_θ                :func:`kl_rate`

which ``moldiff.likelihood.elbo`` integrates over time as it does the Gaussian fields' ε-error.
With the exact p(x_0 | x_t) of an entry independent of the others every term vanishes except the
data's own −log π(x_0), at any number of steps; entries that depend on each other (bonds on their
atoms) are not moved jointly by a factorised step, which the bound charges for, less and less as
the steps shrink.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from moldiff.diffusion.categorical import (
    leave_rate,
    noised_probabilities,
    reverse_probabilities,
)


def _rows(value, like: torch.Tensor) -> torch.Tensor:
    """A number or an (n,) tensor as (n,) in ``like``'s dtype and device."""
    return torch.as_tensor(value, dtype=like.dtype, device=like.device).expand(like.shape[0])


def _kl(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Σ_j q log(q/p) per row (0 log 0 = 0; a class q holds and p cannot gives inf)."""
    return (torch.xlogy(q, q) - torch.xlogy(q, p)).sum(-1)


def prior_kl(x0: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """KL(q(x_1 | x_0) ‖ p) per entry (n,) for clean classes ``x0`` (n,): zero on a path that ends
    exactly in its prior (κ(1) = 0), as every path of ``moldiff.diffusion.categorical`` does."""
    clean = F.one_hot(x0, prior.shape[0]).to(prior)
    q_1 = noised_probabilities(clean, torch.ones(x0.shape[0], dtype=prior.dtype, device=prior.device), prior)
    return _kl(q_1, prior.expand_as(q_1))


def step_kl(x_t: torch.Tensor, x0: torch.Tensor, x0_probs: torch.Tensor, t, s, prior: torch.Tensor) -> torch.Tensor:
    """KL(q(x_s | x_t, x_0) ‖ p_θ(x_s | x_t)) per entry (n,), s < t.

    Args:
        x_t: (n,) classes at t, drawn from q(x_t | x_0).
        x0: (n,) the clean classes.
        x0_probs: (n, K) the network's p_θ(x_0 | x_t).
        t, s: the step's times (numbers or (n,) tensors), 0 <= s < t <= 1.
        prior: (K,) the path's prior.
    """
    q = reverse_probabilities(x_t, F.one_hot(x0, prior.shape[0]).to(x0_probs), t, s, prior)
    return _kl(q, reverse_probabilities(x_t, x0_probs, t, s, prior))


def reconstruction_nll(x_t: torch.Tensor, x0: torch.Tensor, x0_probs: torch.Tensor, t, prior: torch.Tensor
                       ) -> torch.Tensor:  # fmt: skip
    """−log p_θ(x_0 | x_t) per entry (n,) for the last step, from t to 0: the network's probability
    of the clean class among those that can have led to ``x_t`` (arguments as :func:`step_kl`)."""
    probs = reverse_probabilities(x_t, x0_probs, t, 0.0, prior)
    return -torch.log(probs.gather(1, x0[:, None])[:, 0])


def kl_rate(x_t: torch.Tensor, x0: torch.Tensor, x0_probs: torch.Tensor, t, prior: torch.Tensor) -> torch.Tensor:
    """The KL rate between the reverse chains given x_0 and under the network at t, per entry (n,):
    the limit of :func:`step_kl` / (t − s) as s → t (arguments as :func:`step_kl`, 0 < t < 1)."""
    dtype, k = x0_probs.dtype, prior.shape[0]
    n = x_t.shape[0]
    t = _rows(t, x0_probs)
    prior = prior.to(x0_probs)
    eye = torch.eye(k, dtype=dtype, device=x0_probs.device)
    # q_t(j | c) for every clean class c: (n, c, j)
    q_t = noised_probabilities(eye.repeat(n, 1), t.repeat_interleave(k), prior).view(n, k, k)
    at_i = q_t.gather(2, x_t[:, None, None].expand(n, k, 1))  # q_t(x_t | c): (n, c, 1)
    possible = at_i > 0
    ratio = torch.where(possible, q_t / at_i.clamp_min(1e-300), torch.zeros_like(q_t))  # q_t(j|c)/q_t(i|c)
    weights = x0_probs * possible[:, :, 0]
    weights = weights / weights.sum(-1, keepdim=True).clamp_min(1e-300)  # as the reverse step renormalises
    true = ratio.gather(1, x0[:, None, None].expand(n, 1, k))[:, 0]  # (n, j)
    model = torch.einsum("nc,ncj->nj", weights, ratio)
    per_class = torch.xlogy(true, true) - torch.xlogy(true, model) - true + model
    per_class = per_class.masked_fill(F.one_hot(x_t, k).bool(), 0.0)  # a jump leaves x_t
    return leave_rate(t) * prior[x_t] * per_class.sum(-1)


__all__ = ["kl_rate", "prior_kl", "reconstruction_nll", "step_kl"]
