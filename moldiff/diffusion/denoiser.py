"""The Denoiser: a trained network, its schedule and what it predicts, wrapped once so that
solvers, guidance and likelihoods can ask for ε, x̂₀, the score or the velocity without caring
which loss trained the network.
"""

from __future__ import annotations

import torch
from torch import nn

from moldiff.diffusion import parameterization as P
from moldiff.diffusion.schedules import PolynomialVP
from moldiff.diffusion.state import N_COORDS, MolGraph, project

PREDICTIONS = ("eps", "x0", "velocity")


class Denoiser:
    """Gives predictions for a noisy state ``z_t`` (N, 3 + F) at times ``t`` (B,).

    ``net(x, h, t, batch, ptr, cond) -> (out_x, out_h)`` predicts ``prediction`` ∈ {eps, x0, velocity}.
    """

    def __init__(self, net: nn.Module, schedule: PolynomialVP, prediction: str = "eps") -> None:
        if prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction {prediction!r}; choose from {PREDICTIONS}")
        self.net, self.schedule, self.prediction = net, schedule, prediction
        self.nfe = 0  # network evaluations, counted for the solvers' reports

    def coefficients(self, t: torch.Tensor, graph: MolGraph):
        """α, σ, α', σ' per atom, each (N, 1)."""
        return tuple(v[graph.batch, None] for v in self.schedule(t))

    def raw(self, z: torch.Tensor, t: torch.Tensor, graph: MolGraph) -> torch.Tensor:
        self.nfe += 1
        out_x, out_h = self.net(z[:, :N_COORDS], z[:, N_COORDS:], t, graph.batch, graph.ptr, graph.cond)
        return project(torch.cat([out_x, out_h], dim=1), graph)

    def eps(self, z: torch.Tensor, t: torch.Tensor, graph: MolGraph) -> torch.Tensor:
        out = self.raw(z, t, graph)
        if self.prediction == "eps":
            return out
        a, s, da, ds = self.coefficients(t, graph)
        if self.prediction == "x0":
            return P.eps_from_x0(z, out, a, s)
        return P.eps_from_velocity(z, out, a, s, da, ds)

    def x0(self, z: torch.Tensor, t: torch.Tensor, graph: MolGraph) -> torch.Tensor:
        a, s, _, _ = self.coefficients(t, graph)
        return P.x0_from_eps(z, self.eps(z, t, graph), a, s)

    def score(self, z: torch.Tensor, t: torch.Tensor, graph: MolGraph) -> torch.Tensor:
        _, s, _, _ = self.coefficients(t, graph)
        return P.score_from_eps(self.eps(z, t, graph), s)

    def velocity(self, z: torch.Tensor, t: torch.Tensor, graph: MolGraph) -> torch.Tensor:
        a, s, da, ds = self.coefficients(t, graph)
        return P.velocity_from_eps(z, self.eps(z, t, graph), a, s, da, ds)
