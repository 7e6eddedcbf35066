"""Gaussian data and its exact denoiser: an oracle with a known answer for testing solvers,
losses and likelihoods (as e3nn ships ``assert_equivariant``).

Data: x_0 ~ N(m, diag(s²)) on the state space of z (N, 3 + F), with coordinates in the zero-CoM
subspace (their mean is 0, their std s_x) and feature columns of mean μ (F,) and std s_h (s_h = 0:
a constant feature). Under x_t = α x_0 + σ ε, column by column,

    x_t ~ N(α m, v),  v = α² s² + σ²,    E[ε | x_t] = σ (x_t − α m) / v,

and the probability-flow ODE moves every point along (x_t − α_t m) / √v_t = const.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from moldiff.diffusion.state import N_COORDS, MolGraph, project


class GaussianData:
    """x_0 ~ N(m, diag(s²)): zero-CoM coordinates of std ``std``, features of mean ``mean_h`` (F,)
    and std ``std_h`` (default ``std``)."""

    def __init__(self, mean_h: torch.Tensor, std: float, std_h: float | None = None) -> None:
        self.mean_h, self.std = torch.as_tensor(mean_h, dtype=torch.float64), float(std)
        self.std_h = self.std if std_h is None else float(std_h)

    @property
    def dim(self) -> int:
        return N_COORDS + self.mean_h.shape[0]

    def mean(self, graph: MolGraph, like: torch.Tensor | None = None) -> torch.Tensor:
        """m (N, 3 + F)."""
        n = graph.batch.shape[0]
        m = torch.cat([torch.zeros(n, N_COORDS, dtype=torch.float64), self.mean_h.expand(n, -1)], 1)
        return m if like is None else m.to(like)

    def _av(self, schedule, t: torch.Tensor, graph: MolGraph):
        """α, σ (N, 1) and the marginal variance v (N, 3 + F)."""
        values = schedule(t)
        a, s = values.alpha[graph.batch, None], values.sigma[graph.batch, None]
        std = torch.tensor([self.std] * N_COORDS + [self.std_h] * self.mean_h.shape[0], dtype=a.dtype)
        return a, s, a**2 * std**2 + s**2

    def eps(self, z: torch.Tensor, t: torch.Tensor, graph: MolGraph, schedule) -> torch.Tensor:
        """The exact ε̂(z_t, t) = σ (z_t − α m) / v, (N, 3 + F)."""
        a, s, v = self._av(schedule, t, graph)
        return project(s * (z - a * self.mean(graph, z)) / v, graph)

    def marginal_sample(self, t: torch.Tensor, graph: MolGraph, unit_noise: torch.Tensor, schedule) -> torch.Tensor:
        """A draw of x_t from unit (CoM-free) noise (N, 3 + F)."""
        a, _, v = self._av(schedule, t, graph)
        return a * self.mean(graph, unit_noise) + v.sqrt() * unit_noise

    def flow(self, z: torch.Tensor, t: torch.Tensor, s: torch.Tensor, graph: MolGraph, schedule) -> torch.Tensor:
        """The exact probability-flow map from time t to time s (both (B,))."""
        a_t, _, v_t = self._av(schedule, t, graph)
        a_s, _, v_s = self._av(schedule, s, graph)
        m = self.mean(graph, z)
        return a_s * m + (v_s / v_t).sqrt() * (z - a_t * m)

    def log_prob(self, z: torch.Tensor, t: torch.Tensor, graph: MolGraph, schedule) -> torch.Tensor:
        """log p_t(z) per molecule (B,), a density on the zero-CoM subspace of dimension
        (n − 1)·3 + n·F (at t = 0 it needs std_h > 0)."""
        a, _, v = self._av(schedule, t, graph)
        sq = ((z - a * self.mean(graph, z)) ** 2 / v).sum(1)
        quad = torch.zeros(graph.num_graphs, dtype=sq.dtype).index_add_(0, graph.batch, sq)
        n = graph.num_atoms.to(sq.dtype)
        v_x, v_h = v[graph.ptr[:-1], 0], v[graph.ptr[:-1], -1]
        dof_x, dof_h = (n - 1) * N_COORDS, n * self.mean_h.shape[0]
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
        out = self.data.eps(torch.cat([x, h], 1), t, graph, self.schedule)
        return out[:, :N_COORDS], out[:, N_COORDS:]
