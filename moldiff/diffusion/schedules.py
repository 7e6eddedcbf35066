"""Noise schedules in continuous time t ∈ [0, 1]: x_t = α_t x_0 + σ_t ε, data at t = 0.

Each schedule is a frozen dataclass whose ``__call__(t)`` returns :class:`ScheduleValues`
(α_t, σ_t and their time derivatives) and which knows its log-SNR λ_t = log(α_t / σ_t) and the
inverse t(λ). Everything here is a pure function of tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch


class ScheduleValues(NamedTuple):
    alpha: torch.Tensor
    sigma: torch.Tensor
    d_alpha: torch.Tensor
    d_sigma: torch.Tensor


@dataclass(frozen=True)
class PolynomialVP:
    """EDM's variance-preserving polynomial schedule (Hoogeboom et al. 2022, appendix B):
    α_t² = (1 − 2s)(1 − t^p)² + s, σ_t² = 1 − α_t². With s = 1e-5 both endpoints keep a little
    signal and noise (σ_0 = α_1 ≈ 0.003), so every conversion stays finite.
    """

    power: float = 2.0
    s: float = 1e-5
    name: str = "polynomial"

    def alpha2(self, t: torch.Tensor) -> torch.Tensor:
        return (1 - 2 * self.s) * (1 - t**self.power) ** 2 + self.s

    def d_alpha2(self, t: torch.Tensor) -> torch.Tensor:
        return (1 - 2 * self.s) * 2 * (1 - t**self.power) * (-self.power * t ** (self.power - 1))

    def __call__(self, t: torch.Tensor) -> ScheduleValues:
        a2 = self.alpha2(t)
        da2 = self.d_alpha2(t)
        alpha, sigma = a2.sqrt(), (1 - a2).sqrt()
        return ScheduleValues(alpha, sigma, da2 / (2 * alpha), -da2 / (2 * sigma))

    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        a2 = self.alpha2(t)
        return 0.5 * (a2.log() - (1 - a2).log())

    def t_from_log_snr(self, lam: torch.Tensor) -> torch.Tensor:
        a2 = torch.sigmoid(2 * lam)  # α² = SNR / (1 + SNR)
        inner = ((a2 - self.s) / (1 - 2 * self.s)).clamp(0, 1).sqrt()  # = 1 − t^p
        return (1 - inner).clamp(0, 1) ** (1 / self.power)


SCHEDULES = {"polynomial": PolynomialVP}


def make_schedule(name: str, **kwargs) -> PolynomialVP:
    """A schedule by name (``polynomial``)."""
    try:
        return SCHEDULES[name](**kwargs)
    except KeyError:
        raise ValueError(f"unknown schedule {name!r}; choose from {sorted(SCHEDULES)}") from None


