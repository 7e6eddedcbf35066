"""Training objectives of a flow map G(z_s, s, t) = z_s + (t − s) u_θ(z_s, s, t), t ≤ s.

Every loss draws a start time s ~ U(0, 1) per molecule and an end time t = s·U(0, 1), except a
fraction ``diagonal`` of molecules that get t = s (where u must equal the instantaneous velocity),
noises clean states z_0 to z_s = α_s z_0 + σ_s ε with CoM-free ε, and reduces squared errors of a
velocity like ``moldiff.diffusion.losses`` (per-molecule mean over coordinates and weighted type
features, then a batch mean). Teachers are any Denoiser, queried through ``velocity``.

| name          | target                                                          | needs    | reference |
|---------------|-----------------------------------------------------------------|----------|-----------|
| ``teacher-ode``| u_θ(z_s,s,t) ≈ ū = (1/n) Σ_k ½(v_T(z_k, τ_k) + v_T(z̃_{k+1}, τ_{k+1})), the average velocity of n Heun steps of the teacher's PF-ODE from s to t | teacher | progressive / consistency distillation with the teacher's solver (Salimans & Ho 2022; Song et al. 2023, eq. 7), as flow-map regression (Boffi et al. 2024, §3.2) |
| ``lagrangian``| ∂_t G_θ(z_s,s,t) ≈ v_T(sg[G_θ(z_s,s,t)], t), with ∂_t G = u + (t − s) ∂_t u by a JVP | teacher | Lagrangian map distillation (Boffi et al. 2024, eq. 3.6) |
| ``meanflow``  | u_θ ≈ sg[v − (s − t)(v·∇_z u_θ + ∂_s u_θ)], v = α'_s z_0 + σ'_s ε    | data only| MeanFlow identity (Geng et al. 2025, eq. 6–10) |

``teacher-ode`` is a plain regression (no JVP, n·2 teacher calls); at t = s its target is exactly
v_T(z_s, s). ``lagrangian`` costs one JVP and one teacher call; at t = s it is flow matching on
the teacher's velocity. ``meanflow`` follows from differentiating (t − s) u(z_s, s, t) =
∫_s^t v dτ in s along the trajectory: −u + (t − s) du/ds = −v; with the conditional velocity of
the path in place of v it is unbiased, like conditional flow matching. Its optional adaptive weight
w = sg[1 / (‖Δ‖² + c)^p] per molecule is the paper's §4.3 (p = 0: off).
"""

from __future__ import annotations

import torch
from torch.func import jvp

from moldiff.diffusion.losses import _reduce, per_molecule_mean
from moldiff.diffusion.state import MolGraph, project

FLOWMAP_OBJECTIVES = ("teacher-ode", "lagrangian", "meanflow")


def sample_times(num: int, *, diagonal: float, generator: torch.Generator | None = None,
                 device=None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """(s, t), each (B,): s ~ U(0, 1), t = s·U(0, 1), and t = s for a fraction ``diagonal``."""
    s = torch.rand(num, generator=generator, device=device)
    frac = torch.rand(num, generator=generator, device=device)
    on_diag = torch.rand(num, generator=generator, device=device) < diagonal
    return s, torch.where(on_diag, s, s * frac)


def noised(z0: torch.Tensor, s: torch.Tensor, graph: MolGraph, schedule,
           generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """(z_s, v): z_s = α_s z_0 + σ_s ε and the conditional velocity v = α'_s z_0 + σ'_s ε, (N, 3 + F)."""
    eps = project(torch.randn(z0.shape, generator=generator, device=z0.device, dtype=z0.dtype), graph)
    a, sig, da, dsig = (c.to(z0.dtype)[graph.batch, None] for c in schedule(s))
    return a * z0 + sig * eps, da * z0 + dsig * eps


@torch.no_grad()
def teacher_average_velocity(teacher, z: torch.Tensor, s: torch.Tensor, t: torch.Tensor, graph: MolGraph,
                             substeps: int) -> torch.Tensor:  # fmt: skip
    """ū = (G_Heun(z, s, t) − z) / (t − s) for ``substeps`` equal Heun steps of the teacher's
    PF-ODE, written as a mean of slopes so that it is finite (= v_T(z, s)) at t = s."""
    total = torch.zeros_like(z)
    for k in range(substeps):
        a = (s + (t - s) * k / substeps).to(z.dtype)
        b = (s + (t - s) * (k + 1) / substeps).to(z.dtype)
        h = (b - a)[graph.batch, None]
        v1 = teacher.velocity(z, a, graph)
        v2 = teacher.velocity(project(z + h * v1, graph), b, graph)
        slope = 0.5 * (v1 + v2)
        z = project(z + h * slope, graph)
        total = total + slope
    return total / substeps


def teacher_ode_loss(model, z0: torch.Tensor, graph: MolGraph, schedule, *, teacher=None, substeps: int = 4,
                     diagonal: float = 0.25, type_weight: float = 1.0,
                     generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """‖u_θ(z_s, s, t) − ū_T(z_s, s, t)‖², ū_T the average velocity of ``substeps`` teacher Heun steps."""
    _need_teacher(teacher, "teacher-ode")
    s, t = sample_times(graph.num_graphs, diagonal=diagonal, generator=generator, device=z0.device)
    z_s, _ = noised(z0, s, graph, schedule, generator)
    target = teacher_average_velocity(teacher, z_s, s, t, graph, substeps)
    return _reduce((model.velocity(z_s, s, t, graph) - target) ** 2, graph, type_weight)


def lagrangian_loss(model, z0: torch.Tensor, graph: MolGraph, schedule, *, teacher=None, diagonal: float = 0.25,
                    type_weight: float = 1.0,
                    generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """‖∂_t G_θ(z_s, s, t) − v_T(sg[G_θ(z_s, s, t)], t)‖² (Lagrangian map distillation)."""
    _need_teacher(teacher, "lagrangian")
    s, t = sample_times(graph.num_graphs, diagonal=diagonal, generator=generator, device=z0.device)
    z_s, _ = noised(z0, s, graph, schedule, generator)
    s, t = s.to(z0.dtype), t.to(z0.dtype)
    g, dg_dt = jvp(lambda t_: model(z_s, s, t_, graph), (t,), (torch.ones_like(t),))
    with torch.no_grad():
        target = teacher.velocity(g.detach(), t, graph)
    return _reduce((dg_dt - target) ** 2, graph, type_weight)


def meanflow_loss(model, z0: torch.Tensor, graph: MolGraph, schedule, *, teacher=None, diagonal: float = 0.75,
                  adaptive_p: float = 0.0, adaptive_c: float = 1e-3, type_weight: float = 1.0,
                  generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """‖u_θ − sg[v − (s − t)(v·∇_z u_θ + ∂_s u_θ)]‖² with v the path's conditional velocity (no
    teacher needed; a given ``teacher`` is ignored). Default ``diagonal`` 0.75 as in MeanFlow."""
    s, t = sample_times(graph.num_graphs, diagonal=diagonal, generator=generator, device=z0.device)
    z_s, v = noised(z0, s, graph, schedule, generator)
    s, t = s.to(z0.dtype), t.to(z0.dtype)
    u, du_ds = jvp(lambda z_, s_: model.velocity(z_, s_, t, graph), (z_s, s), (v, torch.ones_like(s)))
    target = (v - (s - t)[graph.batch, None] * du_ds).detach()
    err = (u - target) ** 2
    if adaptive_p > 0:
        per_mol = per_molecule_mean(err.detach().sum(1), graph)
        err = err / (per_mol + adaptive_c).pow(adaptive_p)[graph.batch, None]
    return _reduce(err, graph, type_weight)


def _need_teacher(teacher, name: str) -> None:
    if teacher is None or not hasattr(teacher, "velocity"):
        raise ValueError(f"flow-map objective {name!r} distils a teacher: pass teacher= a Denoiser, got {teacher!r}")


FLOWMAP_LOSSES = {"teacher-ode": teacher_ode_loss, "lagrangian": lagrangian_loss, "meanflow": meanflow_loss}


def flowmap_loss(objective: str, model, z0: torch.Tensor, graph: MolGraph, schedule, **options) -> dict[str, torch.Tensor]:
    """The flow-map objective named ``objective`` for clean states z0 (N, 3 + F); ``options`` go to
    it (``teacher``, ``diagonal``, ``substeps``, ``type_weight``, ``generator`` …).
    Returns {"loss", "loss_pos", "loss_type"}."""
    if objective not in FLOWMAP_LOSSES:
        raise ValueError(f"unknown flow-map objective {objective!r}; choose from {FLOWMAP_OBJECTIVES}")
    return FLOWMAP_LOSSES[objective](model, z0, graph, schedule, **options)
