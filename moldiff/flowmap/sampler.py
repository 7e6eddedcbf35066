"""What the ``flow-map`` solver carries where other solvers carry a Denoiser: something that
jumps, ``jump(z, s, t, graph) = G(z_s, s, t)``, knows its ``schedule`` and counts ``nfe``.

* :class:`FlowMapSampler` wraps a trained :class:`~moldiff.flowmap.model.FlowMapModel`:
  one network evaluation per jump. A flow map with the ``x0`` or ``eps`` parameterisation jumps
  by a DDIM step with its prediction (x̂, ε̂)(z_s, s; t), so for a set ``horizon`` t it is also a
  Denoiser at s, and every guidance wrapper (classifier-free, regressor, scaffold) can edit that
  prediction: guidance is applied per jump (:class:`GuidedFlowMap`).
* :class:`EulerFlowMap` views any Denoiser as the first-order flow map
  G(z, s, t) = z + (t − s) v̂(z, s) (one Euler step), exact on the diagonal; with it the
  ``flow-map`` solver is plain Euler, so every solver still runs on every Denoiser.
"""

from __future__ import annotations

import torch

from moldiff.diffusion import parameterization as P
from moldiff.diffusion.denoiser import PredictionViews
from moldiff.diffusion.state import MolGraph, MolState
from moldiff.errors import MoldiffError


class FlowMapSampler(PredictionViews):
    """A flow-map model and the schedule it was trained on, as the ``flow-map`` solver expects.

    With an ``x0`` or ``eps`` model it also predicts like a Denoiser: ``x0_eps(z, s, graph)`` is
    the (x̂, ε̂) of the jump from s to ``horizon`` (B,), which the caller sets per jump."""

    prediction = "x0"

    def __init__(self, model, schedule) -> None:
        self.model, self.schedule = model, schedule
        self.nfe = 0  # network evaluations, one per jump
        self.horizon: torch.Tensor | None = None

    @property
    def predicts_x0(self) -> bool:
        """Whether the jumps are DDIM steps with a prediction that guidance can edit."""
        return getattr(self.model, "parameterization", "velocity") in ("x0", "eps")

    def jump(self, z: MolState, s: torch.Tensor, t: torch.Tensor, graph: MolGraph) -> MolState:
        """G(z_s, s, t) for a state z, s and t (B,)."""
        self.nfe += 1
        return self.model(z, s, t, graph)

    def coefficients(self, t: torch.Tensor, graph: MolGraph):
        """α, σ, α', σ' per molecule, each (B,)."""
        return tuple(self.schedule(t))

    def x0_eps(self, z: MolState, s: torch.Tensor, graph: MolGraph) -> tuple[MolState, MolState]:
        """(x̂, ε̂) of the jump from s to ``self.horizon``: G = α_t x̂ + σ_t ε̂."""
        if not self.predicts_x0:
            raise MoldiffError("guidance needs a flow map with the x0 or eps parameterisation")
        if self.horizon is None:
            raise RuntimeError("set FlowMapSampler.horizon (the jump's end time) before asking for predictions")
        self.nfe += 1
        return self.model.x0_eps(z, s, self.model.output(z, s, self.horizon, graph), graph)

    def predict(self, kind: str, z: MolState, s: torch.Tensor, graph: MolGraph) -> MolState:
        x0, eps = self.x0_eps(z, s, graph)
        return P.from_x0_eps(kind, x0, eps, self.coefficients(s, graph))


class GuidedFlowMap:
    """Jumps of a flow map under guidance wrappers: for each jump s → t the innermost
    :class:`FlowMapSampler`'s horizon is set to t, the outermost wrapper gives the guided (x̂, ε̂)
    at s, and the jump is the DDIM step α_t x̂ + σ_t ε̂ (exactly G when nothing is guided)."""

    def __init__(self, guided, flow: FlowMapSampler) -> None:
        self.guided, self.flow = guided, flow

    @property
    def schedule(self):
        return self.flow.schedule

    @property
    def nfe(self) -> int:
        return self.flow.nfe

    @nfe.setter
    def nfe(self, value: int) -> None:
        self.flow.nfe = value

    def jump(self, z: MolState, s: torch.Tensor, t: torch.Tensor, graph: MolGraph) -> MolState:
        self.flow.horizon = t
        try:
            x0, eps = self.guided.x0_eps(z, s, graph)
        finally:
            self.flow.horizon = None
        alpha, sigma = (v.to(z.dtype) for v in self.schedule(t)[:2])
        return (alpha * x0 + sigma * eps).project()


class EulerFlowMap:
    """A Denoiser as a first-order flow map: G(z, s, t) = z + (t − s) v̂(z, s)."""

    def __init__(self, denoiser) -> None:
        self.denoiser = denoiser

    @property
    def schedule(self):
        return self.denoiser.schedule

    @property
    def nfe(self) -> int:
        return self.denoiser.nfe

    @nfe.setter
    def nfe(self, value: int) -> None:
        self.denoiser.nfe = value

    def jump(self, z: MolState, s: torch.Tensor, t: torch.Tensor, graph: MolGraph) -> MolState:
        v = self.denoiser.velocity(z, s, graph)
        return (z + (t - s).to(z.dtype) * v).project()


def as_flow_map(model):
    """``model`` if it can jump; guidance wrappers around a flow map as :class:`GuidedFlowMap`;
    else a Denoiser seen as its Euler flow map."""
    if hasattr(model, "jump"):
        return model
    inner = model
    while hasattr(inner, "inner"):
        inner = inner.inner
    if isinstance(inner, FlowMapSampler):
        if not inner.predicts_x0:
            raise MoldiffError("guidance needs a flow map with the x0 or eps parameterisation; this one predicts "
                               "velocities")  # fmt: skip
        return GuidedFlowMap(model, inner)
    return EulerFlowMap(model)
