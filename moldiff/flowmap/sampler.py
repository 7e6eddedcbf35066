"""What the ``flow-map`` solver carries where other solvers carry a Denoiser: something that
jumps, ``jump(z, s, t, graph) = G(z_s, s, t)``, knows its ``schedule`` and counts ``nfe``.

* :class:`FlowMapSampler` wraps a trained :class:`~moldiff.flowmap.model.FlowMapModel`:
  one network evaluation per jump.
* :class:`EulerFlowMap` views any Denoiser as the first-order flow map
  G(z, s, t) = z + (t − s) v̂(z, s) (one Euler step), exact on the diagonal; with it the
  ``flow-map`` solver is plain Euler, so every solver still runs on every Denoiser.
"""

from __future__ import annotations

import torch

from moldiff.diffusion.state import MolGraph, project


class FlowMapSampler:
    """A flow-map model and the schedule it was trained on, as the ``flow-map`` solver expects."""

    def __init__(self, model, schedule) -> None:
        self.model, self.schedule = model, schedule
        self.nfe = 0  # network evaluations, one per jump

    def jump(self, z: torch.Tensor, s: torch.Tensor, t: torch.Tensor, graph: MolGraph) -> torch.Tensor:
        """G(z_s, s, t) for z (N, 3 + F), s and t (B,)."""
        self.nfe += 1
        return self.model(z, s, t, graph)


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

    def jump(self, z: torch.Tensor, s: torch.Tensor, t: torch.Tensor, graph: MolGraph) -> torch.Tensor:
        v = self.denoiser.velocity(z, s, graph)
        return project(z + (t - s).to(z.dtype)[graph.batch, None] * v, graph)


def as_flow_map(model):
    """``model`` if it can jump, else a Denoiser seen as its Euler flow map."""
    return model if hasattr(model, "jump") else EulerFlowMap(model)
