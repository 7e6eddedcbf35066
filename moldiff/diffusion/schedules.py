"""Noise schedules in continuous time t ∈ [0, 1]: x_t = α_t x_0 + σ_t ε, data at t = 0.

Each schedule is a frozen dataclass whose ``__call__(t)`` returns :class:`ScheduleValues`
(α_t, σ_t and their time derivatives) and which knows its log-SNR λ_t = log(α_t / σ_t) and the
inverse t(λ). Everything here is a pure function of tensors; ``t`` may have any shape and every
returned tensor has the same shape.

Every schedule keeps λ finite at both ends (a little signal remains at t = 1, a little noise at
t = 0), so all conversions between predictions stay finite and λ-based solvers can reach t = 0.

| name          | α_t                     | σ_t                               | reference                  |
|---------------|-------------------------|-----------------------------------|----------------------------|
| ``polynomial``| √((1−2s)(1−t²)² + s)    | √(1 − α_t²)                       | Hoogeboom et al. 2022, B   |
| ``cosine``    | cos u(t), u linear in t | sin u(t)                          | Nichol & Dhariwal 2021     |
| ``linear-beta``| exp(−¼Δβ t'² − ½β₀t')  | √(1 − α_t²)                       | Ho et al. 2020; Song 2021  |
| ``ve``        | 1                       | σ_min (σ_max/σ_min)^t             | Song et al. 2021, eq. 31   |
| ``linear``    | 1 − (1−δ) t             | δ + (1−δ) t                       | Lipman et al. 2023 (OT path)|
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import NamedTuple

import torch


class ScheduleValues(NamedTuple):
    alpha: torch.Tensor
    sigma: torch.Tensor
    d_alpha: torch.Tensor
    d_sigma: torch.Tensor


def d_log_snr(values: ScheduleValues) -> torch.Tensor:
    """dλ/dt = α'/α − σ'/σ (negative: the SNR falls with t)."""
    return values.d_alpha / values.alpha - values.d_sigma / values.sigma


def prior_std(values: ScheduleValues) -> torch.Tensor:
    """Standard deviation of the prior at the noise end: √(α² + σ²), the marginal std of unit-variance
    data. It is 1 for variance-preserving schedules and ≈ σ_max for variance exploding."""
    return (values.alpha**2 + values.sigma**2).sqrt()


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


@dataclass(frozen=True)
class CosineVP:
    """Cosine variance-preserving schedule (Nichol & Dhariwal 2021, eq. 17): α_t = cos u, σ_t = sin u
    with u linear in t. Nichol's offset s and β-clipping are replaced by the two ends of u, set by
    the log-SNR range: u(0) = arctan e^{−λ_max}, u(1) = arctan e^{−λ_min} (λ = −log tan u).
    The defaults match the polynomial schedule's ends (λ ≈ ±5.76, σ_0 = α_1 ≈ 0.003).
    """

    log_snr_max: float = 5.756
    log_snr_min: float = -5.756
    name: str = "cosine"

    def __post_init__(self) -> None:
        if not self.log_snr_max > self.log_snr_min:
            raise ValueError(f"cosine: need log_snr_max > log_snr_min, got {self.log_snr_max}, {self.log_snr_min}")

    @property
    def _ends(self) -> tuple[float, float]:
        return math.atan(math.exp(-self.log_snr_max)), math.atan(math.exp(-self.log_snr_min))

    def __call__(self, t: torch.Tensor) -> ScheduleValues:
        u0, u1 = self._ends
        u = u0 + (u1 - u0) * t
        rate = torch.full_like(t, u1 - u0)
        return ScheduleValues(torch.cos(u), torch.sin(u), -torch.sin(u) * rate, torch.cos(u) * rate)

    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        u0, u1 = self._ends
        return -torch.log(torch.tan(u0 + (u1 - u0) * t))

    def t_from_log_snr(self, lam: torch.Tensor) -> torch.Tensor:
        u0, u1 = self._ends
        return ((torch.atan(torch.exp(-lam)) - u0) / (u1 - u0)).clamp(0, 1)


@dataclass(frozen=True)
class LinearBetaVP:
    """Variance-preserving schedule with a linear β(t') = β_min + t'(β_max − β_min) (DDPM's linear
    schedule, Ho et al. 2020, as the VP SDE of Song et al. 2021, eq. 32–33):
    log α = −¼ t'² (β_max − β_min) − ½ t' β_min, σ² = 1 − α². Time is shifted,
    t' = t_min + (1 − t_min) t, so that σ_0 > 0 (Song's ε = 1e-5) and λ stays finite.
    """

    beta_min: float = 0.1
    beta_max: float = 20.0
    t_min: float = 1e-5
    name: str = "linear-beta"

    def _shift(self, t: torch.Tensor) -> torch.Tensor:
        return self.t_min + (1 - self.t_min) * t

    def _log_alpha(self, tp: torch.Tensor) -> torch.Tensor:
        return -0.25 * tp**2 * (self.beta_max - self.beta_min) - 0.5 * tp * self.beta_min

    def __call__(self, t: torch.Tensor) -> ScheduleValues:
        tp = self._shift(t)
        log_a = self._log_alpha(tp)
        alpha = log_a.exp()
        sigma = (-torch.expm1(2 * log_a)).sqrt()  # expm1 keeps σ accurate near t = 0
        beta = self.beta_min + tp * (self.beta_max - self.beta_min)
        d_alpha = -0.5 * beta * alpha * (1 - self.t_min)
        return ScheduleValues(alpha, sigma, d_alpha, -alpha * d_alpha / sigma)

    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        log_a = self._log_alpha(self._shift(t))
        return log_a - 0.5 * torch.log(-torch.expm1(2 * log_a))

    def t_from_log_snr(self, lam: torch.Tensor) -> torch.Tensor:
        # log α = ½ log sigmoid(2λ); solve ¼Δβ t'² + ½β_min t' + log α = 0 for t' ≥ 0
        log_a = 0.5 * torch.nn.functional.logsigmoid(2 * lam)
        db = self.beta_max - self.beta_min
        tp = (-self.beta_min + (self.beta_min**2 - 4 * db * log_a).sqrt()) / db
        return ((tp - self.t_min) / (1 - self.t_min)).clamp(0, 1)


@dataclass(frozen=True)
class VarianceExploding:
    """Variance exploding schedule (Song et al. 2021, eq. 31): α_t = 1, σ_t = σ_min (σ_max/σ_min)^t,
    so λ_t = −log σ_t falls linearly in t. σ_max should be about the largest distance between two
    data points (QM9 coordinates span ~10 Å)."""

    sigma_min: float = 0.01
    sigma_max: float = 10.0
    name: str = "ve"

    def __post_init__(self) -> None:
        if not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(f"ve: need 0 < sigma_min < sigma_max, got {self.sigma_min}, {self.sigma_max}")

    @property
    def _log_ratio(self) -> float:
        return math.log(self.sigma_max / self.sigma_min)

    def __call__(self, t: torch.Tensor) -> ScheduleValues:
        sigma = self.sigma_min * torch.exp(self._log_ratio * t)
        return ScheduleValues(torch.ones_like(t), sigma, torch.zeros_like(t), sigma * self._log_ratio)

    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        return -(math.log(self.sigma_min) + self._log_ratio * t)

    def t_from_log_snr(self, lam: torch.Tensor) -> torch.Tensor:
        return ((-lam - math.log(self.sigma_min)) / self._log_ratio).clamp(0, 1)


@dataclass(frozen=True)
class LinearFlow:
    """The linear interpolation of flow matching / rectified flow (Lipman et al. 2023, eq. 20;
    Liu et al. 2023), x_t = (1 − t) x_0 + t ε, with both ends pulled in by δ so λ = log(α/σ) stays
    finite: α_t = 1 − (1 − δ) t, σ_t = δ + (1 − δ) t. The velocity is then (1 − δ)(ε − x_0)."""

    delta: float = 1e-3
    name: str = "linear"

    def __post_init__(self) -> None:
        if not 0 < self.delta < 0.5:
            raise ValueError(f"linear: delta must be in (0, 0.5), got {self.delta}")

    def __call__(self, t: torch.Tensor) -> ScheduleValues:
        rate = 1 - self.delta
        return ScheduleValues(1 - rate * t, self.delta + rate * t, torch.full_like(t, -rate), torch.full_like(t, rate))

    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        rate = 1 - self.delta
        return torch.log(1 - rate * t) - torch.log(self.delta + rate * t)

    def t_from_log_snr(self, lam: torch.Tensor) -> torch.Tensor:
        # α = e^λ σ  ⇒  1 − δ e^λ = t (1 − δ)(1 + e^λ); written with sigmoid to avoid overflow
        e = torch.sigmoid(lam)  # e^λ / (1 + e^λ)
        return ((1 - e - self.delta * e) / (1 - self.delta)).clamp(0, 1)


Schedule = PolynomialVP | CosineVP | LinearBetaVP | VarianceExploding | LinearFlow

SCHEDULES = {
    "polynomial": PolynomialVP,
    "cosine": CosineVP,
    "linear-beta": LinearBetaVP,
    "ve": VarianceExploding,
    "linear": LinearFlow,
}


def make_schedule(name: str, **kwargs) -> Schedule:
    """A schedule by name (``polynomial``, ``cosine``, ``linear-beta``, ``ve``, ``linear``) with its
    parameters as keyword arguments; unknown names or parameters raise ValueError."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose from {sorted(SCHEDULES)}")
    cls = SCHEDULES[name]
    allowed = {f.name for f in fields(cls)} - {"name"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ValueError(f"schedule {name!r} has no parameter {', '.join(unknown)}; it takes {sorted(allowed)}")
    return cls(**kwargs)
