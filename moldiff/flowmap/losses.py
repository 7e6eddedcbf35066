"""Training objectives of a flow map G(z_s, s, t) = z_s + (t − s) u_θ(z_s, s, t), t ≤ s.

Every loss draws a start time s ~ U(0, 1) per molecule and an end time t = s·U(0, 1), except a
fraction ``diagonal`` of molecules that get t = s (where u must equal the instantaneous velocity),
noises clean states z_0 to z_s = α_s z_0 + σ_s ε with CoM-free ε, and reduces squared errors of a
velocity like ``moldiff.diffusion.losses`` (per-molecule mean over coordinates and weighted type
features, then a batch mean). Teachers are any Denoiser, queried through ``velocity``.

| name          | target                                                          | needs    | reference |
|---------------|-----------------------------------------------------------------|----------|-----------|
| ``teacher-ode``| G_θ(z_s,s,t) ≈ the teacher's PF-ODE solution from s to t by n Heun steps in t or n DPM-Solver++(2M) steps in λ (``teacher_solver``); regressed in the output space of the parameterisation: u_θ ≈ ū = (z_t − z_s)/(t − s), or F_θ ≈ the noise prediction whose DDIM jump hits z_t | teacher | progressive / consistency distillation with the teacher's solver (Salimans & Ho 2022; Song et al. 2023, eq. 7), as flow-map regression (Boffi et al. 2024, §3.2) |
| ``lagrangian``| ∂_t G_θ(z_s,s,t) ≈ v_T(sg[G_θ(z_s,s,t)], t), with ∂_t G = u + (t − s) ∂_t u by a JVP | teacher | Lagrangian map distillation (Boffi et al. 2024, eq. 3.6) |
| ``meanflow``  | u_θ ≈ sg[v − (s − t)(v·∇_z u_θ + ∂_s u_θ)], v = α'_s z_0 + σ'_s ε    | data only| MeanFlow identity (Geng et al. 2025, eq. 6–10) |

``teacher-ode`` is a plain regression (no JVP; 2n teacher calls with Heun, n with DPM-Solver++); at
t = s its target is exactly the teacher's velocity (or noise prediction, for ``eps``). ``lagrangian`` costs one JVP and one teacher call; at t = s it is flow matching on
the teacher's velocity. ``meanflow`` follows from differentiating (t − s) u(z_s, s, t) =
∫_s^t v dτ in s along the trajectory: −u + (t − s) du/ds = −v; with the conditional velocity of
the path in place of v it is unbiased, like conditional flow matching. Its optional adaptive weight
w = sg[1 / (‖Δ‖² + c)^p] per molecule is the paper's §4.3 (p = 0: off).
"""

from __future__ import annotations

import torch
from torch.func import jvp

from moldiff import rng
from moldiff.diffusion.losses import _reduce, per_molecule_mean
from moldiff.diffusion.state import MolGraph, MolState

FLOWMAP_OBJECTIVES = ("teacher-ode", "lagrangian", "meanflow")


GRID_JUMPS = (1, 2, 4, 8)  # the jump counts whose uniform grids ``grid_share`` trains on


def sample_times(num: int, *, diagonal: float, grid_share: float = 0.0, generator: torch.Generator | None = None,
                 device=None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """(s, t), each (B,): s ~ U(0, 1), t = s·U(0, 1), and t = s for a fraction ``diagonal``; a
    further fraction ``grid_share`` gets one jump (s, t) = (j/K, (j − 1)/K) of the uniform K-jump
    grid, K ∈ GRID_JUMPS: the jumps a K-call sampler takes, seen often on a small budget
    (as shortcut models train on dyadic step sizes)."""
    s = rng.rand(num, generator=generator, device=device)
    frac = rng.rand(num, generator=generator, device=device)
    pick = rng.rand(num, generator=generator, device=device)
    t = torch.where(pick < diagonal, s, s * frac)
    if grid_share > 0:
        grid_s, grid_t = grid_jumps(num, generator=generator, device=device)
        on_grid = (pick >= diagonal) & (pick < diagonal + grid_share)
        s, t = torch.where(on_grid, grid_s, s), torch.where(on_grid, grid_t, t)
    return s, t


def grid_steps(num: int, *, grids: tuple[int, ...] = GRID_JUMPS, generator: torch.Generator | None = None,
               device=None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """(K, j), each (B,) float: a jump count K drawn from ``grids`` per molecule and the index
    j ∈ 1..K of one of its grid's jumps, (j/K → (j − 1)/K)."""
    jumps = torch.tensor(grids, device=device, dtype=torch.float32)
    k = jumps[rng.randint(len(grids), num, generator=generator, device=device)]
    j = torch.floor(rng.rand(num, generator=generator, device=device) * k) + 1  # 1..K
    return k, j


def grid_jumps(num: int, *, generator: torch.Generator | None = None, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(s, t), each (B,): one jump (j/K, (j − 1)/K) of the uniform K-jump grid per molecule."""
    k, j = grid_steps(num, generator=generator, device=device)
    return j / k, (j - 1) / k


def noised(z0: MolState, s: torch.Tensor, graph: MolGraph, schedule,
           generator: torch.Generator | None = None) -> tuple[MolState, MolState]:  # fmt: skip
    """(z_s, v): z_s = α_s z_0 + σ_s ε and the conditional velocity v = α'_s z_0 + σ'_s ε."""
    eps = z0.randn_like(generator, dtype=z0.dtype)
    a, sig, da, dsig = (c.to(z0.dtype) for c in schedule(s))
    return a * z0 + sig * eps, da * z0 + dsig * eps


@torch.no_grad()
def teacher_average_velocity(teacher, z: MolState, s: torch.Tensor, t: torch.Tensor, graph: MolGraph,
                             substeps: int) -> MolState:  # fmt: skip
    """ū = (G_Heun(z, s, t) − z) / (t − s) for ``substeps`` equal Heun steps of the teacher's
    PF-ODE, written as a mean of slopes so that it is finite (= v_T(z, s)) at t = s."""
    total = z.zeros_like()
    for k in range(substeps):
        a = (s + (t - s) * k / substeps).to(z.dtype)
        b = (s + (t - s) * (k + 1) / substeps).to(z.dtype)
        h = b - a
        v1 = teacher.velocity(z, a, graph)
        v2 = teacher.velocity((z + h * v1).project(), b, graph)
        slope = 0.5 * (v1 + v2)
        z = (z + h * slope).project()
        total = total + slope
    return total / substeps


@torch.no_grad()
def teacher_dpm_solve(teacher, z: MolState, s: torch.Tensor, t: torch.Tensor, graph: MolGraph,
                      substeps: int) -> MolState:  # fmt: skip
    """z_t from z_s by ``substeps`` DPM-Solver++(2M) steps of the teacher's PF-ODE on a grid uniform
    in λ = log(α/σ) between each molecule's own s and t (Lu et al. 2022, data-prediction form):

        z_{k+1} = (σ_{k+1}/σ_k) z_k − α_{k+1}(e^{−h} − 1) D_k,   D_0 = x̂_0,  D_k = 1.5 x̂_k − 0.5 x̂_{k−1}.

    Many times more accurate per teacher call than Euler or Heun in t for the same calls; molecules
    with t = s are returned unchanged."""
    schedule = teacher.schedule
    lam_s, lam_t = schedule.log_snr(s.double()), schedule.log_snr(t.double())
    times = [s.double()] + [schedule.t_from_log_snr(lam_s + (lam_t - lam_s) * k / substeps)
                            for k in range(1, substeps)] + [t.double()]  # fmt: skip
    h = ((lam_t - lam_s) / substeps).to(z.dtype)
    previous = None
    for k in range(substeps):
        x0 = teacher.x0(z, times[k].to(z.dtype), graph)
        d = x0 if previous is None else 1.5 * x0 - 0.5 * previous
        a_k, sig_k = (v.to(z.dtype) for v in schedule(times[k])[:2])
        a_n, sig_n = (v.to(z.dtype) for v in schedule(times[k + 1])[:2])
        z = ((sig_n / sig_k) * z - a_n * torch.expm1(-h) * d).project()
        previous = x0
    return z


TEACHER_SOLVERS = ("heun", "dpmpp-2m")
NEAR_DIAGONAL = 1e-3  # teacher-ode: pairs with s − t below this get the diagonal (t = s) target
# teacher-ode: no diagonal target where α_s is below this: there the teacher's x̂ = (z − σ ε̂)/α (and
# so its velocity) carries its ε̂ error times σ/α (≈ 300 at t = 1 on EDM's schedule); such targets
# were 10× the usual size and made the loss spike. Jumps that start there stay: a DPM-Solver++
# step multiplies x̂ by the next α, which cancels the amplification.
DIAGONAL_MIN_ALPHA = 0.1


def pseudo_huber(squared: torch.Tensor, delta: float) -> torch.Tensor:
    """2δ²(√(1 + e²/δ²) − 1) from squared errors e²: e² for |e| ≪ δ, 2δ|e| for |e| ≫ δ, so a rare
    ill-conditioned target pulls with a bounded gradient (Song & Dhariwal 2023 use it for
    consistency training). δ = 0: plain squared error."""
    if delta <= 0:
        return squared
    return 2 * squared / (torch.sqrt(1 + squared / delta**2) + 1)  # the same, without cancellation


def teacher_ode_loss(model, z0: MolState, graph: MolGraph, schedule, *, teacher=None, substeps: int = 4,
                     teacher_solver: str = "heun", diagonal: float = 0.25, huber: float = 0.0, type_weight: float = 1.0,
                     grid_share: float = 0.0, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """‖F_θ(z_s, s, t) − F*‖², F* the output whose jump lands where ``substeps`` steps of the
    teacher's ``teacher_solver`` land (for ``velocity``: ū_T, the teacher's average velocity; for
    ``eps``: the noise prediction whose DDIM step from s hits the teacher's z_t), and on the
    diagonal t = s the teacher's own velocity or noise prediction. ``huber`` δ > 0 replaces the
    squared error by its pseudo-Huber version."""
    _need_teacher(teacher, "teacher-ode")
    if teacher_solver not in TEACHER_SOLVERS:
        raise ValueError(f"unknown teacher solver {teacher_solver!r}; choose from {TEACHER_SOLVERS}")
    s, t = sample_times(graph.num_graphs, diagonal=diagonal, grid_share=grid_share, generator=generator,
                        device=z0.device)
    z_s, _ = noised(z0, s, graph, schedule, generator)
    s, t = s.to(z0.dtype), t.to(z0.dtype)
    with torch.no_grad():
        target, usable = _jump_targets(model, teacher, z_s, s, t, graph, schedule, substeps, teacher_solver)
    err = ((model.output(z_s, s, t, graph) - target) ** 2).map(lambda e: pseudo_huber(e, huber))
    if usable is not None:
        err = err.where(usable, err.zeros_like())
    return _reduce(err, graph, type_weight)


def _jump_targets(model, teacher, z_s: MolState, s: torch.Tensor, t: torch.Tensor, graph: MolGraph, schedule,
                  substeps: int, teacher_solver: str) -> tuple[MolState, torch.Tensor | None]:  # fmt: skip
    """teacher-ode: (the outputs F* whose jumps land on the teacher's solution, the molecules (B,)
    whose target is usable, or None when all are). Heun targets of a velocity model are the
    teacher's mean slope, finite everywhere; other targets are difference quotients of the
    teacher's z_t, replaced by their diagonal limit near t = s and unusable where that limit is
    ill-conditioned (DIAGONAL_MIN_ALPHA)."""
    parameterization = getattr(model, "parameterization", "velocity")
    if teacher_solver == "heun" and parameterization == "velocity":
        return teacher_average_velocity(teacher, z_s, s, t, graph, substeps), None
    if teacher_solver == "dpmpp-2m":
        z_t = teacher_dpm_solve(teacher, z_s, s, t, graph, substeps)
    else:
        z_t = z_s + (t - s) * teacher_average_velocity(teacher, z_s, s, t, graph, substeps)
    # a difference quotient amplifies the solver's rounding as t → s: take its limit there
    on_diagonal = s - t < NEAR_DIAGONAL
    target = model.output_for_jump(z_s, s, t, z_t, graph)
    if on_diagonal.any():
        target = model.diagonal_output(teacher, z_s, s, graph).where(on_diagonal, target)
    return target, ~(on_diagonal & (schedule(s)[0] < DIAGONAL_MIN_ALPHA))


def lagrangian_loss(model, z0: MolState, graph: MolGraph, schedule, *, teacher=None, diagonal: float = 0.25,
                    type_weight: float = 1.0,
                    grid_share: float = 0.0, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """‖∂_t G_θ(z_s, s, t) − v_T(sg[G_θ(z_s, s, t)], t)‖² (Lagrangian map distillation)."""
    _need_teacher(teacher, "lagrangian")
    s, t = sample_times(graph.num_graphs, diagonal=diagonal, grid_share=grid_share, generator=generator,
                        device=z0.device)
    z_s, _ = noised(z0, s, graph, schedule, generator)
    s, t = s.to(z0.dtype), t.to(z0.dtype)
    g, dg_dt = jvp(lambda t_: model(z_s, s, t_, graph), (t,), (torch.ones_like(t),))
    with torch.no_grad():
        target = teacher.velocity(g.detach(), t, graph)
    return _reduce((dg_dt - target) ** 2, graph, type_weight)


def meanflow_loss(model, z0: MolState, graph: MolGraph, schedule, *, teacher=None, diagonal: float = 0.75,
                  adaptive_p: float = 0.0, adaptive_c: float = 1e-3, type_weight: float = 1.0,
                  grid_share: float = 0.0, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """‖u_θ − sg[v − (s − t)(v·∇_z u_θ + ∂_s u_θ)]‖² with v the path's conditional velocity (no
    teacher needed; a given ``teacher`` is ignored). Default ``diagonal`` 0.75 as in MeanFlow."""
    s, t = sample_times(graph.num_graphs, diagonal=diagonal, grid_share=grid_share, generator=generator,
                        device=z0.device)
    z_s, v = noised(z0, s, graph, schedule, generator)
    s, t = s.to(z0.dtype), t.to(z0.dtype)
    u, du_ds = jvp(lambda z_, s_: model.velocity(z_, s_, t, graph), (z_s, s), (v, torch.ones_like(s)))
    target = (v - (s - t) * du_ds).detach()
    err = (u - target) ** 2
    if adaptive_p > 0:
        per_mol = per_molecule_mean(err.detach().columns().sum(1), graph)
        err = err / (per_mol + adaptive_c).pow(adaptive_p)
    return _reduce(err, graph, type_weight)


def _need_teacher(teacher, name: str) -> None:
    if teacher is None or not hasattr(teacher, "velocity"):
        raise ValueError(f"flow-map objective {name!r} distils a teacher: pass teacher= a Denoiser, got {teacher!r}")


FLOWMAP_LOSSES = {"teacher-ode": teacher_ode_loss, "lagrangian": lagrangian_loss, "meanflow": meanflow_loss}


def flowmap_loss(objective: str, model, z0: MolState, graph: MolGraph, schedule, **options) -> dict[str, torch.Tensor]:
    """The flow-map objective named ``objective`` for clean states z0; ``options`` go to
    it (``teacher``, ``diagonal``, ``substeps``, ``type_weight``, ``generator`` …).
    Returns {"loss", "loss_pos", "loss_type"}."""
    if objective not in FLOWMAP_LOSSES:
        raise ValueError(f"unknown flow-map objective {objective!r}; choose from {FLOWMAP_OBJECTIVES}")
    return FLOWMAP_LOSSES[objective](model, z0, graph, schedule, **options)
