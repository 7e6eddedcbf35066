"""Samplers: each solves the reverse process from noise at t = 1 to data at t = 0 with one
signature, ``sample(denoiser, z, times, graph, noise, callback=None, **options) -> z_0`` (``z`` a
``MolState``), found by name. Every solver keeps coordinates in the zero-CoM subspace (all its updates combine z, projected
network outputs and CoM-free noise from ``MoleculeNoise``) and works with any prediction kind.

``steps`` means the same thing for every solver: its budget of network evaluations (NFE) per
molecule. ``solver_times`` turns that budget into the solver's own time grid:

| name             | what                                   | grid     | NFE for K intervals |
|------------------|----------------------------------------|----------|---------------------|
| ``ddpm``         | ancestral sampling                     | uniform  | K                   |
| ``ddim``         | DDIM, ``eta`` ≥ 0 (0: deterministic)    | uniform  | K                   |
| ``euler-maruyama``| reverse SDE, Euler–Maruyama           | uniform  | K                   |
| ``pc``           | ancestral predictor + Langevin corrector| uniform | K (1 + corrector_steps) |
| ``euler``        | PF-ODE, Euler in t                     | uniform  | K                   |
| ``heun``         | PF-ODE, EDM's Heun                     | edm ρ=7  | 2K − 1              |
| ``dpmpp-2m``     | DPM-Solver++(2M); ``eta`` > 0: SDE     | log_snr  | K                   |
| ``dpmpp-2m-sde`` | SDE-DPM-Solver++(2M), ``eta`` = 5      | log_snr_late | K               |
| ``adaptive``     | PF-ODE, embedded RK pair, rtol/atol    | —        | set by tolerances   |
| ``flow-map``     | K flow-map jumps, ``gamma`` re-noising  | uniform  | K                   |

``flow-map`` expects a ``moldiff.flowmap.FlowMapSampler`` where the others take a Denoiser; given a
Denoiser it takes Euler steps.

So ``--steps 50`` gives 50 intervals to ``ddpm``, 25 to ``heun`` (49 NFE) and to ``pc`` (50 NFE).
The exact count of a run is ``denoiser.nfe`` afterwards.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch

from moldiff.errors import MoldiffError
from moldiff.solvers.adaptive import sample_adaptive
from moldiff.solvers.ddim import sample_ddim
from moldiff.solvers.ddpm import sample_ddpm
from moldiff.solvers.dpm_solver import sample_dpmpp_2m, sample_dpmpp_2m_sde
from moldiff.solvers.euler import sample_euler
from moldiff.solvers.euler_maruyama import sample_euler_maruyama
from moldiff.solvers.flow_map import sample_flow_map
from moldiff.solvers.grids import make_times, uniform_times
from moldiff.solvers.heun import sample_heun
from moldiff.solvers.pc import sample_pc


@dataclass(frozen=True)
class SolverSpec:
    """A registered solver: its function, its default time grid and its NFE for K intervals."""

    sample: Callable
    grid: str
    cost: Callable[[int, dict], int | None]


SOLVERS: dict[str, SolverSpec] = {
    "ddpm": SolverSpec(sample_ddpm, "uniform", lambda k, o: k),
    "ddim": SolverSpec(sample_ddim, "uniform", lambda k, o: k),
    "euler-maruyama": SolverSpec(sample_euler_maruyama, "uniform", lambda k, o: k),
    "pc": SolverSpec(sample_pc, "uniform", lambda k, o: k * (1 + int(o.get("corrector_steps", 1)))),
    "euler": SolverSpec(sample_euler, "uniform", lambda k, o: k),
    "heun": SolverSpec(sample_heun, "edm", lambda k, o: 2 * k - 1),
    "dpmpp-2m": SolverSpec(sample_dpmpp_2m, "log_snr", lambda k, o: k),
    "dpmpp-2m-sde": SolverSpec(sample_dpmpp_2m_sde, "log_snr_late", lambda k, o: k),
    "adaptive": SolverSpec(sample_adaptive, "uniform", lambda k, o: None),
    "flow-map": SolverSpec(sample_flow_map, "uniform", lambda k, o: k),
}


def _spec(name: str) -> SolverSpec:
    if name not in SOLVERS:
        raise MoldiffError(f"unknown solver {name!r}; choose from {', '.join(sorted(SOLVERS))}")
    return SOLVERS[name]


def solver_options(name: str) -> dict[str, object]:
    """The keyword options a solver takes, with their defaults (e.g. ``ddim``: {'eta': 0.0})."""
    params = inspect.signature(_spec(name).sample).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def get_solver(name: str, **options) -> Callable:
    """The solver ``name`` with its keyword ``options`` bound (``get_solver("ddim", eta=0.5)``);
    unknown names or options raise MoldiffError listing what is accepted."""
    spec, allowed = _spec(name), solver_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        takes = ", ".join(f"{k}={v}" for k, v in allowed.items()) or "no options"
        raise MoldiffError(f"solver {name!r} has no option {', '.join(unknown)} (it takes {takes})")
    options = {k: _typed(name, k, v, allowed[k]) for k, v in options.items()}
    return functools.partial(spec.sample, **options) if options else spec.sample


def _typed(name: str, key: str, value, default):
    """``value`` as the type of the option's default (an int is a fine float, nothing else converts)."""
    kind = type(default)
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise MoldiffError(f"solver {name!r}: option {key} must be {kind.__name__}, got {value!r}")


def intervals_for(name: str, steps: int, **options) -> int:
    """The number of grid intervals whose NFE is the largest not above ``steps`` (at least 1)."""
    spec = _spec(name)
    if spec.cost(1, options) is None:  # adaptive: steps only set the first trial step
        return max(steps, 1)
    k = max(steps, 1)
    while k > 1 and spec.cost(k, options) > steps:
        k -= 1
    return k


def expected_nfe(name: str, steps: int, **options) -> int | None:
    """Network evaluations per molecule for an NFE budget of ``steps`` (None when adaptive)."""
    return _spec(name).cost(intervals_for(name, steps, **options), options)


def solver_times(name: str, steps: int, schedule, *, grid: str | None = None, **options) -> torch.Tensor:
    """The time grid (K + 1,) from 1 to 0 that spends at most ``steps`` network evaluations with
    solver ``name`` (its default grid unless ``grid`` is given)."""
    spec = _spec(name)
    return make_times(grid or spec.grid, intervals_for(name, steps, **options), schedule)


__all__ = [
    "SOLVERS", "SolverSpec", "expected_nfe", "get_solver", "intervals_for", "solver_options", "solver_times",
    "uniform_times", "sample_adaptive", "sample_ddim", "sample_ddpm", "sample_dpmpp_2m", "sample_dpmpp_2m_sde", "sample_euler",
    "sample_euler_maruyama", "sample_flow_map", "sample_heun", "sample_pc",
]  # fmt: skip
