"""A flow-map model: a network that jumps along the probability-flow ODE from time s to time t
in one evaluation (Boffi, Albergo & Vanden-Eijnden 2024, "Flow map matching"; Geng et al. 2025,
"Mean flows").

The flow map X_{s,t} carries a point z_s at time s along dz/dτ = v(z, τ) to time t (here t < s:
toward the data). Two parameterisations of the network output F make the boundary condition
G(z, t, t) = z hold exactly, whatever the network:

* ``velocity``: F is the average velocity u,

      G(z_s, s, t) = z_s + (t − s) · F,     F → (1 / (t − s)) ∫_s^t v(z_τ, τ) dτ,  F(z, t, t) → v(z, t);

* ``eps`` (VP-type schedules, α > 0 on [0, 1]): F is a noise prediction and the jump is a DDIM step
  from s to t with it (the exact PF-ODE map when x̂ = (z_s − σ_s F)/α_s is constant on [t, s]),

      G(z_s, s, t) = α_t x̂ + σ_t F = r z_s + (σ_t − r σ_s) F,   r = α_t / α_s,

  so F(z, t, t) → ε̂(z, t), the base model's noise prediction, and a network warm-started from an
  ε-predicting diffusion model (its time columns at zero) starts as that model's DDIM sampler.
  The coefficient of F is −α_t(σ_s/α_s − σ_t/α_t): long jumps from the noisy end amplify errors of
  F (by up to 1/α_1 ≈ 300 on EDM's schedule), the price of the warm start. An ``alpha_floor`` α*
  bounds that: x̂ = (z_s − σ_s F)/max(α_s, α*), so the amplification is at most 1/α*, while
  wherever α_s ≥ α* the map is still exactly the teacher's DDIM at the warm start (at low noise
  the teacher's one-call jumps land about twice as close to its ODE as an ``x0`` map distilled
  for thousands of steps: bench/results/flowmap_jumps.md);

* ``x0`` (VP-type schedules): the jump is a DDIM step with a data prediction preconditioned as in
  Karras et al. (2022) for unit-variance data, x̂ = α_s z_s + σ_s F,

      G(z_s, s, t) = q z_s + (α_t − q α_s) x̂,   q = σ_t / σ_s,

  whose coefficient on x̂ lies in [0, α_t]: well conditioned for every jump, including one jump
  from pure noise to data (G(z_1, 1, 0) ≈ x̂), as in consistency trajectory models.

Both DDIM parameterisations are x̂ = c_skip(s) z_s + c_out(s) F: (1/ᾱ_s, −σ_s/ᾱ_s) for ``eps``,
(α_s, σ_s) for ``x0``.

The network is a backbone with the usual signature ``net(x, h, τ, batch, ptr, cond)``: its time input is
the start time s and two per-molecule condition columns carry (t, s − t) after any property
condition, so the EGNN sees both times without any change to its layers (build it with
``cond_features = C + TIME_COND_FEATURES``). Coordinate outputs are E(3)-equivariant and projected
to zero CoM, so G keeps a zero-CoM z zero-CoM; type features are continuous columns of z, as in the
base model, and are read by argmax at the end.

Shapes: z (N, 3 + F), s and t (B,), graph.cond (B, C) or None. (F also names the type features'
width; the output has the width of z.)
"""

from __future__ import annotations

import torch
from torch import nn

from moldiff.diffusion.state import MolGraph, MolState
from moldiff.nets import EGNN

TIME_COND_FEATURES = 2  # (t, s − t), appended to the per-molecule condition


def time_condition(s: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
    """The condition the backbone sees: [cond, t, s − t], (B, C + 2)."""
    times = torch.stack([t, s - t], dim=1)
    return times if cond is None else torch.cat([cond.to(times.dtype), times], dim=1)


def flowmap_egnn(in_features: int, cond_features: int = 0, **kwargs) -> EGNN:
    """An EGNN whose condition input has room for the two extra time columns; ``kwargs`` go to EGNN."""
    return EGNN(in_features, cond_features=cond_features + TIME_COND_FEATURES, **kwargs)


PARAMETERIZATIONS = ("velocity", "eps", "x0")


class FlowMapModel(nn.Module):
    """G(z_s, s, t) from a backbone F_θ(z_s, s, t) conditioned on both times (module docstring).

    Args:
        net: ``net(x, h, s, batch, ptr, cond) -> (F_x (N, 3), F_h (N, F))`` whose ``cond`` is
            ``time_condition(s, t, graph.cond)``.
        parameterization: ``velocity``, ``eps`` or ``x0``.
        schedule: the path's schedule; required by ``eps`` and ``x0`` (its α must be positive at
            t = 1 and its σ at t = 0).
        alpha_floor: ``eps`` only: the α* of x̂ = (z − σ F)/max(α, α*) (0: plain DDIM).
    """

    def __init__(self, net: nn.Module, parameterization: str = "velocity", schedule=None,
                 alpha_floor: float = 0.0) -> None:  # fmt: skip
        super().__init__()
        if parameterization not in PARAMETERIZATIONS:
            raise ValueError(f"unknown flow-map parameterization {parameterization!r}; choose from {PARAMETERIZATIONS}")
        if alpha_floor and parameterization != "eps":
            raise ValueError(f"alpha_floor belongs to the eps parameterization, not {parameterization!r}")
        if not 0.0 <= alpha_floor < 1.0:
            raise ValueError(f"alpha_floor must lie in [0, 1), got {alpha_floor}")
        if parameterization != "velocity":
            if schedule is None:
                raise ValueError(f"the {parameterization} flow-map parameterization needs the schedule")
            ends = schedule(torch.tensor([0.0, 1.0], dtype=torch.float64))
            if float(ends[0][1]) <= 0 or float(ends[1][0]) <= 0:
                raise ValueError(f"the {parameterization} flow-map parameterization needs α > 0 at t = 1 and "
                                 "σ > 0 at t = 0 (a VP schedule)")  # fmt: skip
        self.net, self.parameterization, self.schedule = net, parameterization, schedule
        self.alpha_floor = alpha_floor

    @staticmethod
    def _check(z: MolState, s: torch.Tensor, t: torch.Tensor, graph: MolGraph) -> None:
        b = graph.num_graphs
        if z["coords"].shape[0] != graph.batch.shape[0]:
            raise ValueError(f"flow map expects a state of N = {graph.batch.shape[0]} atoms, got {z}")
        if s.shape != (b,) or t.shape != (b,):
            raise ValueError(f"flow map expects s and t of shape ({b},), got {tuple(s.shape)} and {tuple(t.shape)}")

    def output(self, z: MolState, s: torch.Tensor, t: torch.Tensor, graph: MolGraph) -> MolState:
        """The network output F(z_s, s, t), coordinates zero-CoM."""
        self._check(z, s, t, graph)
        out_x, out_h = self.net(z["coords"], z["types"], s, graph.batch, graph.ptr, time_condition(s, t, graph.cond))
        return z.with_values(coords=out_x, types=out_h).project()

    def _alpha_sigma(self, s: torch.Tensor, graph: MolGraph, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        return tuple(v.to(dtype) for v in self.schedule(s)[:2])

    def _floored(self, alpha: torch.Tensor) -> torch.Tensor:
        """ᾱ = max(α, α*): the α that ``eps`` divides by (α itself without a floor)."""
        return alpha.clamp(min=self.alpha_floor)

    def _preconditioning(self, s: torch.Tensor, graph: MolGraph, dtype):
        """Per molecule (B,), (c_skip, c_out) with x̂ = c_skip z_s + c_out F."""
        alpha, sig = self._alpha_sigma(s, graph, dtype)
        if self.parameterization == "eps":
            floored = self._floored(alpha)
            return 1 / floored, -sig / floored
        return alpha, sig

    def _coefficients(self, s: torch.Tensor, t: torch.Tensor, graph: MolGraph, dtype):
        """Per molecule (B,), (a, c) with G = a z + c F: exactly (1, 0) where t = s."""
        a_s, sig_s = self._alpha_sigma(s, graph, dtype)
        a_t, sig_t = self._alpha_sigma(t, graph, dtype)
        if self.parameterization == "eps" and not self.alpha_floor:
            r = a_t / a_s  # exactly 1 where t = s, so c is exactly 0 there
            return r, sig_t - r * sig_s
        q = sig_t / sig_s  # G = q z + (α_t − q α_s) x̂: exactly z where t = s
        k = a_t - q * a_s
        c_skip, c_out = self._preconditioning(s, graph, dtype)
        return q + k * c_skip, k * c_out

    def forward(self, z: MolState, s: torch.Tensor, t: torch.Tensor, graph: MolGraph) -> MolState:
        """G(z_s, s, t): the state at time t reached from z_s at time s."""
        out = self.output(z, s, t, graph)
        if self.parameterization == "velocity":
            return z + (t - s).to(z.dtype) * out
        a, c = self._coefficients(s, t, graph, z.dtype)
        return a * z + c * out

    def velocity(self, z: MolState, s: torch.Tensor, t: torch.Tensor, graph: MolGraph) -> MolState:
        """The average velocity u = (G − z_s)/(t − s); at t = s its limit ∂_t G."""
        if self.parameterization == "velocity":
            return self.output(z, s, t, graph)
        out = self.output(z, s, t, graph)
        diagonal = s == t
        a, c = self._coefficients(s, t, graph, z.dtype)
        gap = torch.where(diagonal, torch.ones_like(a), (t - s).to(z.dtype))  # no 0/0 anywhere
        average = ((a - 1) * z + c * out) / gap
        x0, eps = self.x0_eps(z, s, out, graph)
        d_alpha, d_sig = (v.to(z.dtype) for v in self.schedule(s)[2:])
        return (d_alpha * x0 + d_sig * eps).where(diagonal, average)

    def x0_eps(self, z: MolState, s: torch.Tensor, out: MolState, graph: MolGraph) -> tuple[MolState, MolState]:
        """(x̂, ε̂) at s of an ``eps`` or ``x0`` output F: every such jump is α_t x̂ + σ_t ε̂."""
        if self.parameterization == "velocity":
            raise ValueError("a velocity flow map has no (x̂, ε̂): its jumps are not DDIM steps")
        alpha, sig = self._alpha_sigma(s, graph, z.dtype)
        if self.parameterization == "eps":
            floored = self._floored(alpha)
            ratio = alpha / floored  # exactly 1 where α ≥ α*: there ε̂ is F itself
            return (z - sig * out) / floored, z * ((1 - ratio) / sig) + ratio * out  # ε̂ = (z − α x̂)/σ
        x0 = alpha * z + sig * out
        return x0, (z - alpha * x0) / sig

    def output_for_jump(self, z_s: MolState, s: torch.Tensor, t: torch.Tensor, z_t: MolState,
                        graph: MolGraph) -> MolState:  # fmt: skip
        """The output F for which G(z_s, s, t) = z_t; defined where t < s (elsewhere: garbage, no NaN)."""
        if self.parameterization == "velocity":
            gap = torch.where(s == t, torch.ones_like(s), t - s).to(z_s.dtype)
            return (z_t - z_s) / gap
        a, c = self._coefficients(s, t, graph, z_s.dtype)
        return (z_t - a * z_s) / torch.where(c == 0, torch.ones_like(c), c)

    def diagonal_output(self, teacher, z: MolState, s: torch.Tensor, graph: MolGraph) -> MolState:
        """What the output F(z, s, s) should equal: the teacher's velocity, noise prediction or, for
        ``x0``, the F whose x̂ = α_s z + σ_s F is the teacher's data prediction."""
        if self.parameterization == "velocity":
            return teacher.velocity(z, s, graph)
        if self.parameterization == "eps":  # F = (z − ᾱ x̂_T)/σ, exactly ε̂_T where α ≥ α*
            eps = teacher.eps(z, s, graph)
            if not self.alpha_floor:
                return eps
            alpha, sig = self._alpha_sigma(s, graph, z.dtype)
            ratio = self._floored(alpha) / alpha
            return z * ((1 - ratio) / sig) + ratio * eps
        alpha, sig = self._alpha_sigma(s, graph, z.dtype)
        return (teacher.x0(z, s, graph) - alpha * z) / sig
