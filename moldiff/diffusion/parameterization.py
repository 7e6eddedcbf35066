"""Exact conversions between what a network can predict, for x_t = α x_0 + σ ε.

    ε = (x_t − α x_0) / σ          x_0 = (x_t − σ ε) / α
    score ∇log p(x_t) = −ε / σ     velocity dx_t/dt = α' x_0 + σ' ε

All functions are pure; α, σ, α', σ' broadcast against x.
"""

from __future__ import annotations

import torch


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
