"""Classifier-free guidance (Ho & Salimans 2022): one conditional model, asked twice.

With the condition c (carried by ``graph.cond``, flag 1) and the null condition ∅ (zeros, flag 0),

    ε̃ = ε(z, ∅) + w (ε(z, c) − ε(z, ∅)),

i.e. the score of p_t(z)^{1−w} p_t(z | c)^w. w = 1 is plain conditional sampling, w = 0
unconditional, w > 1 sharpens toward the condition (Ho & Salimans write the same rule with
w_theirs = w − 1). x̂₀ is affine in ε̂ at fixed z, so it combines with the same weights; each
step costs two network evaluations.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from moldiff.diffusion.state import MolGraph, MolState
from moldiff.guidance.base import GuidedDenoiser


class ClassifierFreeDenoiser(GuidedDenoiser):
    """Combines the conditional and unconditional predictions of ``inner`` with scale ``w``.

    ``graph.cond`` (B, 2P) holds each molecule's encoded condition
    (:meth:`moldiff.guidance.condition.PropertyNorm.encode`); the unconditional call replaces it
    with zeros (the null condition).
    """

    def __init__(self, inner, scale: float = 1.0) -> None:
        super().__init__(inner)
        self.scale = float(scale)

    def x0_eps(self, z: MolState, t: torch.Tensor, graph: MolGraph) -> tuple[MolState, MolState]:
        if graph.cond is None:
            raise ValueError("classifier-free guidance needs graph.cond, the encoded condition (B, 2P)")
        x0_c, eps_c = self.inner.x0_eps(z, t, graph)
        if self.scale == 1.0:
            return x0_c, eps_c
        x0_u, eps_u = self.inner.x0_eps(z, t, replace(graph, cond=torch.zeros_like(graph.cond)))
        w = self.scale
        return x0_u + w * (x0_c - x0_u), eps_u + w * (eps_c - eps_u)

    def __repr__(self) -> str:
        return f"ClassifierFreeDenoiser({self.inner!r}, scale={self.scale})"
