"""Exact conversions between what a network can predict, for x_t = α x_0 + σ ε.

    ε = (x_t − α x_0) / σ          x_0 = (x_t − σ ε) / α
    score ∇log p(x_t) = −ε / σ     velocity dx_t/dt = α' x_0 + σ' ε

Velocity and x_t together determine (x_0, ε) by solving the 2 × 2 system
``[α σ; α' σ'] [x_0; ε] = [x_t; v]``, with determinant α σ' − α' σ = −α σ dλ/dt > 0.

All functions are pure; α, σ, α', σ' broadcast against x.
"""

from __future__ import annotations

import torch

KINDS = ("eps", "x0", "score", "velocity")


def x0_from_eps(x_t: torch.Tensor, eps: torch.Tensor, alpha, sigma) -> torch.Tensor:
    return (x_t - sigma * eps) / alpha


def eps_from_x0(x_t: torch.Tensor, x0: torch.Tensor, alpha, sigma) -> torch.Tensor:
    return (x_t - alpha * x0) / sigma


def score_from_eps(eps: torch.Tensor, sigma) -> torch.Tensor:
    return -eps / sigma


def eps_from_score(score: torch.Tensor, sigma) -> torch.Tensor:
    return -sigma * score


def velocity_from_eps(x_t: torch.Tensor, eps: torch.Tensor, alpha, sigma, d_alpha, d_sigma) -> torch.Tensor:
    return d_alpha * x0_from_eps(x_t, eps, alpha, sigma) + d_sigma * eps


def eps_from_velocity(x_t: torch.Tensor, v: torch.Tensor, alpha, sigma, d_alpha, d_sigma) -> torch.Tensor:
    # v = α'(x_t − σε)/α + σ'ε  ⇒  ε (σ' − α'σ/α) = v − α' x_t / α
    return (v - d_alpha * x_t / alpha) / (d_sigma - d_alpha * sigma / alpha)


def x0_from_velocity(x_t: torch.Tensor, v: torch.Tensor, alpha, sigma, d_alpha, d_sigma) -> torch.Tensor:
    # Cramer's rule on [α σ; α' σ'] [x_0; ε] = [x_t; v]; no division by α, so it stays exact at t → 1
    return (d_sigma * x_t - sigma * v) / (alpha * d_sigma - d_alpha * sigma)


def to_x0_eps(kind: str, x_t: torch.Tensor, out: torch.Tensor, coeffs) -> tuple[torch.Tensor, torch.Tensor]:
    """(x̂_0, ε̂) from a prediction ``out`` of the given kind; ``coeffs`` = (α, σ, α', σ')."""
    a, s, da, ds = coeffs
    if kind == "eps":
        return x0_from_eps(x_t, out, a, s), out
    if kind == "x0":
        return out, eps_from_x0(x_t, out, a, s)
    if kind == "score":
        eps = eps_from_score(out, s)
        return x0_from_eps(x_t, eps, a, s), eps
    if kind == "velocity":
        return x0_from_velocity(x_t, out, a, s, da, ds), eps_from_velocity(x_t, out, a, s, da, ds)
    raise ValueError(f"unknown prediction kind {kind!r}; choose from {KINDS}")


def from_x0_eps(kind: str, x0: torch.Tensor, eps: torch.Tensor, coeffs) -> torch.Tensor:
    """The prediction of the given kind from (x̂_0, ε̂); ``coeffs`` = (α, σ, α', σ')."""
    a, s, da, ds = coeffs
    if kind == "eps":
        return eps
    if kind == "x0":
        return x0
    if kind == "score":
        return score_from_eps(eps, s)
    if kind == "velocity":
        return da * x0 + ds * eps
    raise ValueError(f"unknown prediction kind {kind!r}; choose from {KINDS}")
