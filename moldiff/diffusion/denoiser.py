"""The Denoiser: a trained network, its schedule and what it predicts, wrapped once so that
solvers, guidance and likelihoods can ask for ε, x̂₀, the score or the velocity without caring
which loss trained the network.
"""

from __future__ import annotations

from contextlib import contextmanager

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
    Categorical fields (``FieldSpec.kind``) are not converted: in every kind the network's output
    for them is the logits of their clean class, and ``class_priors`` {name: (K,)} gives each one's
    path prior (``moldiff.diffusion.categorical``), as the schedule does for the Gaussian fields.
    A velocity output determines (x̂₀, ε̂) only where α σ' − α' σ ≠ 0, which fails at the flat ends
    of EDM's polynomial schedule (the config refuses that pairing). ``nfe`` counts network
    evaluations; solvers report it.
    """

    def __init__(self, net: nn.Module, schedule: Schedule, prediction: str = "eps",
                 class_priors: dict[str, torch.Tensor] | None = None) -> None:  # fmt: skip
        if prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction {prediction!r}; choose from {PREDICTIONS}")
        self.net, self.schedule, self.prediction = net, schedule, prediction
        self.class_priors = dict(class_priors or {})
        self.nfe = 0  # network evaluations, counted for the solvers' reports
        # self-conditioning (a network with ``self_conditioning``): while sampling inside
        # ``feeding_back()``, each call reads the clean estimate of the call before; in training,
        # ``feed_back_next`` makes the next call run a first pass without gradient and feed it back
        self.feed_back_next = False
        self._feeding_back = False
        self._previous = None

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

        def run(previous=None) -> MolState:
            fed = {"previous": previous} if self.self_conditioned else {}
            out = self.net(z["coords"], h, e, t, graph.batch, graph.ptr, graph.cond, pairs=graph.pairs, **fed)
            values = {"coords": out.x}
            values.update(zip((f.name for f in atoms), out.atoms.split([f.columns for f in atoms], 1)))
            values.update(zip((f.name for f in pairs), out.pairs.split([f.columns for f in pairs], 1)))
            return z.with_values(**values).project()

        previous = None
        if self.self_conditioned and self.feed_back_next:
            self.feed_back_next = False
            with torch.no_grad():
                previous = self._clean_estimate(z, run(), t, graph, atoms, pairs)
        elif self._feeding_back and self._previous is not None and self._previous.x.shape == z["coords"].shape:
            previous = self._previous
        out = run(previous)
        if self._feeding_back:
            self._previous = self._clean_estimate(z, out, t, graph, atoms, pairs)
        return out

    @property
    def self_conditioned(self) -> bool:
        """Whether the network reads its previous clean estimate (``model.self_conditioning``)."""
        return bool(getattr(getattr(self.net, "module", self.net), "self_conditioning", False))

    @contextmanager
    def feeding_back(self):
        """Within: a self-conditioned network reads the clean estimate of the call before (one
        sampling trajectory); outside, it reads none, as likelihoods and single calls want."""
        self._feeding_back, self._previous = True, None
        try:
            yield self
        finally:
            self._feeding_back, self._previous = False, None

    def _clean_estimate(self, z: MolState, out: MolState, t, graph, atoms, pairs):
        """x̂₀ of a raw output as the network's fed-back input, detached. Clamped: where α_t → 0, x̂₀
        from ε̂ grows without bound, and the estimate there carries no information anyway."""
        from moldiff.nets.egnn_pairs import PairOutput

        x0, _ = self._to_x0_eps(z, out, self.coefficients(t, graph))
        x0 = x0.detach()
        if any(f.kind == "categorical" for f in x0.specs):  # the expected scaled one-hot of each class
            from moldiff.diffusion.discrete import class_probabilities

            x0 = x0.with_values(**{f.name: class_probabilities(x0[f.name], f).to(x0[f.name].dtype) * f.scale
                                   for f in x0.specs if f.kind == "categorical"})  # fmt: skip
        return PairOutput(x0["coords"].clamp(-20.0, 20.0), torch.cat([x0[f.name] for f in atoms], 1).clamp(-2.0, 2.0),
                          torch.cat([x0[f.name] for f in pairs], 1).clamp(-2.0, 2.0))  # fmt: skip

    def predict(self, kind: str, z: MolState, t: torch.Tensor, graph: MolGraph) -> MolState:
        """The prediction of ``kind`` for ``z`` at ``t`` (B,): one network evaluation."""
        out = self.raw(z, t, graph)
        if kind == self.prediction:
            return out
        coeffs = self.coefficients(t, graph)
        if not any(f.kind == "categorical" for f in z.specs):
            x0, eps = P.to_x0_eps(self.prediction, z, out, coeffs)
            return P.from_x0_eps(kind, x0, eps, coeffs)
        x0, eps = P.to_x0_eps(self.prediction, z.of_kind("gaussian"), out.of_kind("gaussian"), coeffs)
        return out.with_values(**P.from_x0_eps(kind, x0, eps, coeffs).values)

    def x0_eps(self, z: MolState, t: torch.Tensor, graph: MolGraph) -> tuple[MolState, MolState]:
        """(x̂_0, ε̂) from one network evaluation (categorical fields: their logits in both)."""
        out = self.raw(z, t, graph)
        return self._to_x0_eps(z, out, self.coefficients(t, graph))

    def _to_x0_eps(self, z: MolState, out: MolState, coeffs) -> tuple[MolState, MolState]:
        """(x̂_0, ε̂) of a raw output, the Gaussian fields converted and the categorical logits kept."""
        if not any(f.kind == "categorical" for f in z.specs):
            return P.to_x0_eps(self.prediction, z, out, coeffs)
        x0, eps = P.to_x0_eps(self.prediction, z.of_kind("gaussian"), out.of_kind("gaussian"), coeffs)
        return out.with_values(**x0.values), out.with_values(**eps.values)
