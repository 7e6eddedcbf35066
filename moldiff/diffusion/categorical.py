"""Categorical noise for discrete fields (atom types, formal charges, bond orders): mixture paths
between the data class and a prior distribution, their exact reverse step, as pure functions.

With time t in [0, 1] (t = 0 data, t = 1 noise, as the Gaussian schedules), each entry keeps its
clean class x_0 with probability κ(t) and is otherwise drawn from the prior p:

    q(x_t | x_0) = κ(t) δ(x_t, x_0) + (1 − κ(t)) p(x_t),      κ(0) = 1, κ(1) = 0.

The priors are those of the discrete diffusion and flow models: ``uniform`` (SemlaFlow, D3PM),
``marginal`` (the data's class frequencies: MiDi, EQGAT-diff) and ``masking`` (every entry ends in
an extra mask class, the last: FlowMol3, masked discrete flow matching). The path is Markov: from s
to t > s an entry keeps its class with probability κ(t)/κ(s) and is otherwise redrawn from p, so the
reverse step from t to s has the closed form

    q(x_s | x_t, x_0) ∝ q(x_t | x_s) q(x_s | x_0),

which :func:`reverse_probabilities` averages over the network's estimate of p(x_0 | x_t). With the
exact posterior it moves the noised marginal at t exactly to the one at s, whatever the step size;
for small steps it is the Euler step of the continuous-time chain of discrete flow matching.
"""

from __future__ import annotations

import torch

PRIORS = ("uniform", "marginal", "masking")


def prior_probabilities(kind: str, n_classes: int, marginal: torch.Tensor | None = None) -> torch.Tensor:
    """The prior p over ``n_classes`` classes, (K,).

    ``masking``: the last class is the mask (the data never holds it); ``marginal``: the data's class
    frequencies, given as ``marginal`` (K,).
    """
    if kind == "uniform":
        return torch.full((n_classes,), 1.0 / n_classes, dtype=torch.float64)
    if kind == "masking":
        return torch.nn.functional.one_hot(torch.tensor(n_classes - 1), n_classes).double()
    if kind == "marginal":
        if marginal is None or marginal.shape != (n_classes,):
            raise ValueError(f"the marginal prior needs the data's {n_classes} class frequencies")
        marginal = marginal.double().clamp_min(0)
        return marginal / marginal.sum()
    raise ValueError(f"unknown categorical prior {kind!r}; expected one of {', '.join(PRIORS)}")


def keep_probability(t: torch.Tensor) -> torch.Tensor:
    """κ(t) = 1 − t: the chance an entry still holds its clean class at time t (a linear path)."""
    return (1.0 - t).clamp(0.0, 1.0)


def leave_rate(t: torch.Tensor) -> torch.Tensor:
    """β(t) = −κ'(t)/κ(t) = 1/(1 − t): the rate at which an entry that still holds its clean class is
    redrawn from the prior (the forward chain's jump rate to class j is β(t) p_j), for t < 1."""
    return 1.0 / (1.0 - t)


def noised_probabilities(x0_probs: torch.Tensor, t: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """q(x_t) for clean classes distributed as ``x0_probs`` (n, K) at times ``t`` (n,): (n, K)."""
    kappa = keep_probability(t).to(x0_probs)[:, None]
    return kappa * x0_probs + (1.0 - kappa) * prior.to(x0_probs)


def add_noise(x0: torch.Tensor, t: torch.Tensor, prior: torch.Tensor, generator: torch.Generator | None = None
              ) -> torch.Tensor:  # fmt: skip
    """Sample x_t ~ q(x_t | x_0) for classes ``x0`` (n,) at times ``t`` (n,)."""
    one_hot = torch.nn.functional.one_hot(x0, prior.shape[0]).double()
    return sample(noised_probabilities(one_hot, t.double(), prior), generator)


def reverse_probabilities(x_t: torch.Tensor, x0_probs: torch.Tensor, t, s, prior: torch.Tensor) -> torch.Tensor:
    """p(x_s | x_t) = Σ_c p(x_0 = c | x_t) q(x_s | x_t, x_0 = c) for s < t: (n, K).

    Args:
        x_t: (n,) current classes.
        x0_probs: (n, K) the denoiser's p(x_0 | x_t) (softmax of its logits).
        t, s: the current and the next (earlier) time, 0 <= s < t <= 1: numbers, or (n,) tensors
            (one pair per row: molecules that an adaptive solver moves on their own clocks).
        prior: (K,) the path's prior.
    """
    dtype = x0_probs.dtype
    t = torch.as_tensor(t, dtype=dtype, device=x0_probs.device).expand(x_t.shape[0])[:, None]
    s = torch.as_tensor(s, dtype=dtype, device=x0_probs.device).expand(x_t.shape[0])[:, None]
    if bool(((s < 0) | (s >= t) | (t > 1)).any()):
        bad = int(((s < 0) | (s >= t) | (t > 1)).nonzero()[0, 0])
        raise ValueError(f"a reverse step goes from t to an earlier s in [0, 1], got t={float(t[bad])}, s={float(s[bad])}")
    prior = prior.to(x0_probs)
    k = prior.shape[0]
    kappa_s, kappa_t = keep_probability(s), keep_probability(t)  # (n, 1)
    keep = torch.where(kappa_s > 0, kappa_t / kappa_s.clamp_min(1e-30), torch.zeros_like(kappa_s))
    # q(x_t | x_s = j) for the observed x_t, as a row over j: (n, K)
    current = torch.nn.functional.one_hot(x_t, k).to(x0_probs)
    forward = keep * current + (1.0 - keep) * prior[x_t][:, None]
    # q(x_s = j | x_0 = c): (n, K, K), rows c
    eye = torch.eye(k, dtype=dtype, device=x0_probs.device)
    clean = kappa_s[:, :, None] * eye + (1.0 - kappa_s[:, :, None]) * prior[None, None, :]
    joint = forward[:, None, :] * clean  # (n, c, j)
    posterior = joint / joint.sum(-1, keepdim=True).clamp_min(1e-30)
    probs = torch.einsum("nc,ncj->nj", x0_probs, posterior)
    # a network may give weight to a clean class that cannot have led to x_t (a masked path that
    # already shows another class): that weight is dropped and the rest renormalised
    return probs / probs.sum(-1, keepdim=True).clamp_min(1e-30)


def reverse_step(x_t: torch.Tensor, x0_probs: torch.Tensor, t, s, prior: torch.Tensor,
                 generator: torch.Generator | None = None, u: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """Sample x_s given x_t and the denoiser's p(x_0 | x_t); at s = 0 this is a draw of x_0
    (``u``: the rows' uniforms, as :func:`sample`)."""
    return sample(reverse_probabilities(x_t, x0_probs, t, s, prior), generator, u)


def sample(probs: torch.Tensor, generator: torch.Generator | None = None, u: torch.Tensor | None = None
           ) -> torch.Tensor:  # fmt: skip
    """One class per row of ``probs`` (n, K), by inverse-CDF sampling with one uniform each: ``u``
    (n,) in [0, 1) when given (per-molecule seeded draws), else from ``generator``."""
    if u is None:
        u = torch.rand(probs.shape[0], 1, generator=generator, dtype=probs.dtype, device=probs.device)
    else:
        u = u.to(device=probs.device, dtype=probs.dtype).reshape(-1, 1)
    cdf = probs.cumsum(-1)
    return torch.searchsorted(cdf / cdf[:, -1:], u).squeeze(-1).clamp_max(probs.shape[-1] - 1)
