"""Gaussian data and its exact denoiser: an oracle with a known answer for testing solvers,
losses and likelihoods (as e3nn ships ``assert_equivariant``).

Data: x_0 ~ N(m, diag(s²)) on the state of coordinates and F features per atom, with coordinates in the zero-CoM
subspace (their mean is 0, their std s_x) and feature columns of mean μ (F,) and std s_h (s_h = 0:
a constant feature). Under x_t = α x_0 + σ ε, column by column,

    x_t ~ N(α m, v),  v = α² s² + σ²,    E[ε | x_t] = σ (x_t − α m) / v,

and the probability-flow ODE moves every point along (x_t − α_t m) / √v_t = const.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from moldiff.diffusion.state import FieldSpec, MolGraph, MolState, coordinate_fields


class GaussianData:
    """x_0 ~ N(m, diag(s²)): zero-CoM coordinates of std ``std``, features of mean ``mean_h`` (F,)
    and std ``std_h`` (default ``std``)."""

    def __init__(self, mean_h: torch.Tensor, std: float, std_h: float | None = None) -> None:
        self.mean_h, self.std = torch.as_tensor(mean_h, dtype=torch.float64), float(std)
        self.std_h = self.std if std_h is None else float(std_h)

    @property
    def fields(self) -> tuple[FieldSpec, ...]:
        return coordinate_fields(self.mean_h.shape[0])

    @property
    def dim(self) -> int:
        """Numbers per atom: 3 + F."""
        return sum(f.columns for f in self.fields)

    def state(self, z: torch.Tensor, graph: MolGraph) -> MolState:
        """Coordinates and features side by side (N, 3 + F) as a state of these data's fields."""
        return MolState.from_columns(z, self.fields, graph)

    def mean(self, graph: MolGraph, like: MolState | None = None) -> MolState:
        """m: zero coordinates and features ``mean_h``."""
        n = graph.batch.shape[0]
        m = MolState({"coords": torch.zeros(n, 3, dtype=torch.float64), "types": self.mean_h.expand(n, -1)},
                     self.fields, graph)  # fmt: skip
        return m if like is None else m.to(dtype=like.dtype, device=like.device)

    def _av(self, schedule, t: torch.Tensor, graph: MolGraph):
        """α, σ (B,) and the marginal variance v of each field, (N, 1) per atom."""
        values = schedule(t)
        a, s = values.alpha, values.sigma
        v_x, v_h = a**2 * self.std**2 + s**2, a**2 * self.std_h**2 + s**2
        return a, s, MolState({"coords": v_x[graph.batch, None], "types": v_h[graph.batch, None]}, self.fields, graph)

    def eps(self, z: MolState, t: torch.Tensor, graph: MolGraph, schedule) -> MolState:
        """The exact ε̂(z_t, t) = σ (z_t − α m) / v."""
        a, s, v = self._av(schedule, t, graph)
        return (s * (z - a * self.mean(graph, z)) / v).project()

    def marginal_sample(self, t: torch.Tensor, graph: MolGraph, unit_noise: MolState, schedule) -> MolState:
        """A draw of x_t from unit (CoM-free) noise."""
        a, _, v = self._av(schedule, t, graph)
        return a * self.mean(graph, unit_noise) + v**0.5 * unit_noise

    def flow(self, z: MolState, t: torch.Tensor, s: torch.Tensor, graph: MolGraph, schedule) -> MolState:
        """The exact probability-flow map from time t to time s (both (B,))."""
        a_t, _, v_t = self._av(schedule, t, graph)
        a_s, _, v_s = self._av(schedule, s, graph)
        m = self.mean(graph, z)
        return a_s * m + (v_s / v_t) ** 0.5 * (z - a_t * m)

    def log_prob(self, z: MolState, t: torch.Tensor, graph: MolGraph, schedule) -> torch.Tensor:
        """log p_t(z) per molecule (B,), a density on the zero-CoM subspace of dimension
        (n − 1)·3 + n·F (at t = 0 it needs std_h > 0)."""
        a, _, v = self._av(schedule, t, graph)
        quad = ((z - a * self.mean(graph, z)) ** 2 / v).molecule_sum(lambda x, f: x.sum(1))
        n = graph.num_atoms.to(quad.dtype)
        v_x, v_h = v["coords"][graph.ptr[:-1], 0], v["types"][graph.ptr[:-1], 0]
        dof_x, dof_h = (n - 1) * 3, n * self.mean_h.shape[0]
        return -0.5 * quad - 0.5 * (dof_x * torch.log(2 * math.pi * v_x) + dof_h * torch.log(2 * math.pi * v_h))

    def network(self, schedule) -> nn.Module:
        """A module with the backbone signature whose output is the exact ε̂."""
        return _ExactEps(self, schedule)


class _ExactEps(nn.Module):
    """net(x, h, t, batch, ptr, cond) -> exact (ε̂_x, ε̂_h) of Gaussian data."""

    def __init__(self, data: GaussianData, schedule) -> None:
        super().__init__()
        self.data, self.schedule = data, schedule

    def forward(self, x, h, t, batch, ptr, cond=None):
        graph = MolGraph(batch=batch, ptr=ptr)
        out = self.data.eps(MolState({"coords": x, "types": h}, self.data.fields, graph), t, graph, self.schedule)
        return out["coords"], out["types"]
