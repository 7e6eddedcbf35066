"""The Denoiser: a trained network, its schedule and what it predicts, wrapped once so that
solvers, guidance and likelihoods can ask for ε, x̂₀, the score or the velocity without caring
which loss trained the network.
"""

from __future__ import annotations

import torch
from torch import nn

from moldiff.diffusion import parameterization as P
from moldiff.diffusion.schedules import Schedule
from moldiff.diffusion.state import MolGraph, MolState

PREDICTIONS = P.KINDS  # ("eps", "x0", "score", "velocity")


class PredictionViews:
    """``eps``, ``x0``, ``score`` and ``velocity`` as named shortcuts of ``predict(kind, ...)``;
    shared by the Denoiser and every guidance wrapper."""

    def eps(self, z: MolState, t: torch.Tensor, graph: MolGraph) -> MolState:
        return self.predict("eps", z, t, graph)

    def x0(self, z: MolState, t: torch.Tensor, graph: MolGraph) -> MolState:
        return self.predict("x0", z, t, graph)

    def score(self, z: MolState, t: torch.Tensor, graph: MolGraph) -> MolState:
        return self.predict("score", z, t, graph)

    def velocity(self, z: MolState, t: torch.Tensor, graph: MolGraph) -> MolState:
        return self.predict("velocity", z, t, graph)


class Denoiser(PredictionViews):
    """Gives predictions for a noisy state ``z_t`` (a :class:`MolState`) at times ``t`` (B,).

    ``net(x, h, t, batch, ptr, cond) -> (out_x, out_h)`` predicts ``prediction`` ∈
    {eps, x0, score, velocity} (a network on atoms and pairs, for a state with pair fields: see
    ``_raw_pairs``); every other kind is converted exactly (see ``parameterization``).
    A velocity output determines (x̂₀, ε̂) only where α σ' − α' σ ≠ 0, which fails at the flat ends
    of EDM's polynomial schedule (the config refuses that pairing). ``nfe`` counts network
    evaluations; solvers report it.
    """

    def __init__(self, net: nn.Module, schedule: Schedule, prediction: str = "eps") -> None:
        if prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction {prediction!r}; choose from {PREDICTIONS}")
        self.net, self.schedule, self.prediction = net, schedule, prediction
        self.nfe = 0  # network evaluations, counted for the solvers' reports

    def coefficients(self, t: torch.Tensor, graph: MolGraph):
        """α, σ, α', σ' per molecule, each (B,) (a state broadcasts them to its fields)."""
        return tuple(self.schedule(t))

    def raw(self, z: MolState, t: torch.Tensor, graph: MolGraph) -> MolState:
        self.nfe += 1
        if any(f.on == "pairs" for f in z.specs):
            return self._raw_pairs(z, t, graph)
        extra = {} if graph.known is None else {"known": graph.known}  # only networks that take a scaffold
        if graph.open_valence is not None:  # only networks that read open valences (model.known_valence)
            extra["open_valence"] = graph.open_valence
        out_x, out_h = self.net(z["coords"], z["types"], t, graph.batch, graph.ptr, graph.cond, **extra)
        return z.with_values(coords=out_x, types=out_h).project()

    def _raw_pairs(self, z: MolState, t: torch.Tensor, graph: MolGraph) -> MolState:
        """A network on atoms and pairs (``moldiff.nets.GRAPH_BACKBONES``): it reads the atom fields
        other than coordinates side by side as ``h`` and the pair fields as ``e``, in the specs' order,
        and its atom and pair outputs split back into those fields."""
        atoms = [f for f in z.specs if f.on == "atoms" and f.name != "coords"]
        pairs = [f for f in z.specs if f.on == "pairs"]
        h = torch.cat([z[f.name] for f in atoms], 1)
        e = torch.cat([z[f.name] for f in pairs], 1)
        out = self.net(z["coords"], h, e, t, graph.batch, graph.ptr, graph.cond, pairs=graph.pairs)
        values = {"coords": out.x}
        values.update(zip((f.name for f in atoms), out.atoms.split([f.columns for f in atoms], 1)))
        values.update(zip((f.name for f in pairs), out.pairs.split([f.columns for f in pairs], 1)))
        return z.with_values(**values).project()

    def predict(self, kind: str, z: MolState, t: torch.Tensor, graph: MolGraph) -> MolState:
        """The prediction of ``kind`` for ``z`` at ``t`` (B,): one network evaluation."""
        out = self.raw(z, t, graph)
        if kind == self.prediction:
            return out
        coeffs = self.coefficients(t, graph)
        x0, eps = P.to_x0_eps(self.prediction, z, out, coeffs)
        return P.from_x0_eps(kind, x0, eps, coeffs)

    def x0_eps(self, z: MolState, t: torch.Tensor, graph: MolGraph) -> tuple[MolState, MolState]:
        """(x̂_0, ε̂) from one network evaluation."""
        out = self.raw(z, t, graph)
        return P.to_x0_eps(self.prediction, z, out, self.coefficients(t, graph))
