"""Time grids: K + 1 times from t = 1 (noise) down to t = 0 (data), for K solver intervals.

``uniform``  t_i = 1 − i/K                                  (DDPM, Ho et al. 2020)
``log_snr``  λ_i uniform between λ(1) and λ(0)              (DPM-Solver, Lu et al. 2022, §3.3)
``log_snr_late``  λ_i = λ(1) + (λ(0) − λ(1))·(i/K)^p with p = ``LATE_POWER``: small steps in λ near
             the data, large ones in the noise, for few-step stochastic samplers (measured below)
``edm``      σ̃_i = (σ̃_max^{1/ρ} + i/K (σ̃_min^{1/ρ} − σ̃_max^{1/ρ}))^ρ with σ̃ = σ/α = e^{−λ}, ρ = 7
             (Karras et al. 2022, eq. 5), mapped to t through the schedule's t(λ)

All grids are float64 and end exactly at 1 and 0.
"""

from __future__ import annotations

import torch


def uniform_times(steps: int) -> torch.Tensor:
    """K + 1 times from 1 down to 0, evenly spaced in t."""
    return torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)


def _from_log_snr(schedule, lam: torch.Tensor) -> torch.Tensor:
    t = schedule.t_from_log_snr(lam)
    t[0], t[-1] = 1.0, 0.0  # exact ends, whatever the inverse's rounding
    return t


def _ends(schedule) -> tuple[torch.Tensor, torch.Tensor]:
    ends = torch.tensor([1.0, 0.0], dtype=torch.float64)
    lam = schedule.log_snr(ends)
    return lam[0], lam[1]


def log_snr_times(steps: int, schedule) -> torch.Tensor:
    """K + 1 times whose log-SNRs are evenly spaced."""
    lam_1, lam_0 = _ends(schedule)
    return _from_log_snr(schedule, torch.linspace(float(lam_1), float(lam_0), steps + 1, dtype=torch.float64))


# The exponent of ``log_snr_late``, measured with dpmpp-2m-sde (η = 5) on the built-in QM9 model at
# step 13,669 (python bench/bench_grid_power.py, 400 molecules per row): molecule stability at 20
# NFE, seed 1, was 9.2 % for p = 1 (log_snr), 13.0 at 0.7, 15.2 at 0.5, 17.0 at 0.45, 16.5 at 0.4,
# 4.5 at 0.3 and 0.0 at 0.2 (below 0.4 the first step lands too near the data from a blind x̂₀);
# seed 2: 8.0 (p = 1), 13.5 (0.6), 17.0 (0.5), 17.5 (0.45). At 50 NFE p = 0.5 gave 26.8 % against
# 22.0 and at 100 NFE 34.5 against 30.2. 0.5 keeps a margin from the cliff below 0.4.
LATE_POWER = 0.5


def log_snr_late_times(steps: int, schedule, power: float = LATE_POWER) -> torch.Tensor:
    """K + 1 times whose log-SNR fraction from noise to data grows as (i/K)^power (power < 1: the
    steps shrink towards the data, where molecule stability is decided)."""
    lam_1, lam_0 = _ends(schedule)
    frac = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64) ** power
    return _from_log_snr(schedule, lam_1 + (lam_0 - lam_1) * frac)


def edm_times(steps: int, schedule, rho: float = 7.0) -> torch.Tensor:
    """K + 1 times on EDM's σ grid (ρ = 7) between the schedule's own σ̃_max = e^{−λ(1)} and σ̃_min."""
    lam_1, lam_0 = _ends(schedule)
    s_max, s_min = torch.exp(-lam_1) ** (1 / rho), torch.exp(-lam_0) ** (1 / rho)
    frac = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    sigma = (s_max + frac * (s_min - s_max)) ** rho
    return _from_log_snr(schedule, -torch.log(sigma))


GRIDS = {"uniform": lambda steps, schedule: uniform_times(steps), "log_snr": log_snr_times,
         "log_snr_late": log_snr_late_times, "edm": edm_times}  # fmt: skip


def make_times(grid: str, steps: int, schedule) -> torch.Tensor:
    """The ``grid`` (``uniform``, ``log_snr``, ``log_snr_late`` or ``edm``) with ``steps`` intervals."""
    if grid not in GRIDS:
        raise ValueError(f"unknown time grid {grid!r}; choose from {sorted(GRIDS)}")
    if steps < 1:
        raise ValueError(f"a time grid needs at least one interval, got {steps}")
    return GRIDS[grid](steps, schedule)
