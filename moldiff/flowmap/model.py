"""A flow-map model: a network that jumps along the probability-flow ODE from time s to time t
in one evaluation (Boffi, Albergo & Vanden-Eijnden 2024, "Flow map matching"; Geng et al. 2025,
"Mean flows").

The flow map X_{s,t} carries a point z_s at time s along dz/dτ = v(z, τ) to time t (here t < s:
toward the data). It is parameterised by an average velocity u so that its boundary condition
holds exactly, whatever the network:

    G(z_s, s, t) = z_s + (t − s) · u(z_s, s, t),        G(z, t, t) = z,
    u(z_s, s, t) → (1 / (t − s)) ∫_s^t v(z_τ, τ) dτ,     u(z, t, t) → v(z, t).

``u`` is a backbone with the usual signature ``net(x, h, τ, batch, ptr, cond)``: its time input is
the start time s and two per-molecule condition columns carry (t, s − t) after any property
condition, so the EGNN sees both times without any change to its layers (build it with
``cond_features = C + TIME_COND_FEATURES``). Coordinate outputs are E(3)-equivariant and projected
to zero CoM, so G keeps a zero-CoM z zero-CoM; type features are continuous columns of z, as in the
base model, and are read by argmax at the end.

Shapes: z (N, 3 + F), s and t (B,), graph.cond (B, C) or None.
"""

from __future__ import annotations

import torch
from torch import nn

from moldiff.diffusion.state import N_COORDS, MolGraph, project
from moldiff.nets import EGNN

TIME_COND_FEATURES = 2  # (t, s − t), appended to the per-molecule condition


def time_condition(s: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
    """The condition the backbone sees: [cond, t, s − t], (B, C + 2)."""
    times = torch.stack([t, s - t], dim=1)
    return times if cond is None else torch.cat([cond.to(times.dtype), times], dim=1)


def flowmap_egnn(in_features: int, cond_features: int = 0, **kwargs) -> EGNN:
    """An EGNN whose condition input has room for the two extra time columns; ``kwargs`` go to EGNN."""
    return EGNN(in_features, cond_features=cond_features + TIME_COND_FEATURES, **kwargs)


class FlowMapModel(nn.Module):
    """G(z_s, s, t) = z_s + (t − s) u_θ(z_s, s, t), with u_θ a backbone conditioned on both times.

    Args:
        net: ``net(x, h, s, batch, ptr, cond) -> (u_x (N, 3), u_h (N, F))`` whose ``cond`` is
            ``time_condition(s, t, graph.cond)``.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    @staticmethod
    def _check(z: torch.Tensor, s: torch.Tensor, t: torch.Tensor, graph: MolGraph) -> None:
        b = graph.num_graphs
        if z.dim() != 2 or z.shape[0] != graph.batch.shape[0] or z.shape[1] < N_COORDS:
            raise ValueError(f"flow map expects z (N, 3 + F) with N = {graph.batch.shape[0]}, got {tuple(z.shape)}")
        if s.shape != (b,) or t.shape != (b,):
            raise ValueError(f"flow map expects s and t of shape ({b},), got {tuple(s.shape)} and {tuple(t.shape)}")

    def velocity(self, z: torch.Tensor, s: torch.Tensor, t: torch.Tensor, graph: MolGraph) -> torch.Tensor:
        """The average velocity u(z_s, s, t) (N, 3 + F), coordinate columns zero-CoM."""
        self._check(z, s, t, graph)
        out_x, out_h = self.net(z[:, :N_COORDS], z[:, N_COORDS:], s, graph.batch, graph.ptr,
                                time_condition(s, t, graph.cond))  # fmt: skip
        return project(torch.cat([out_x, out_h], dim=1), graph)

    def forward(self, z: torch.Tensor, s: torch.Tensor, t: torch.Tensor, graph: MolGraph) -> torch.Tensor:
        """G(z_s, s, t) (N, 3 + F): the state at time t reached from z_s at time s."""
        u = self.velocity(z, s, t, graph)
        return z + (t - s).to(z.dtype)[graph.batch, None] * u
