"""Classifier-free guidance (Ho & Salimans 2022): one conditional model, asked twice.

With the condition c (carried by ``graph.cond``, flag 1) and the null condition ∅ (zeros, flag 0),

    ε̃ = ε(z, ∅) + w (ε(z, c) − ε(z, ∅)),

i.e. the score of p_t(z)^{1−w} p_t(z | c)^w. w = 1 is plain conditional sampling, w = 0
unconditional, w > 1 sharpens toward the condition (Ho & Salimans write the same rule with
w_theirs = w − 1). x̂₀ is affine in ε̂ at fixed z, so it combines with the same weights; each
step costs two network evaluations.

A categorical field's prediction is a distribution over its clean class, p(x_0 | x_t); the same
rule on its logarithm tilts it the same way,

    log p̃(x_0 | x_t) = log p(x_0 | x_t) + w (log p(x_0 | x_t, c) − log p(x_0 | x_t)) + const,

i.e. p̃ ∝ p^{1−w} p_c^w, renormalised over the classes (:func:`mix_class_logits`), as discrete
classifier-free guidance does (Nisonoff et al. 2024, on the rates; here on x̂₀, which the categorical
step reads). The guided log-probabilities are the field's logits in both x̂₀ and ε̂.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from moldiff.diffusion.discrete import clean_logits
from moldiff.diffusion.state import FieldSpec, MolGraph, MolState
from moldiff.guidance.base import GuidedDenoiser


def mix_class_logits(cond: torch.Tensor, uncond: torch.Tensor, w: float, spec: FieldSpec) -> torch.Tensor:
    """(rows, K) log p̃ = log p_u + w (log p_c − log p_u), renormalised, of the conditional and
    unconditional logits (rows, K) of a categorical field; a class both rule out (a mask) stays
    impossible. Computed in float64, returned in the logits' dtype."""
    log_c = torch.log_softmax(clean_logits(cond.double(), spec), -1)
    log_u = torch.log_softmax(clean_logits(uncond.double(), spec), -1)
    possible = torch.isfinite(log_c) & torch.isfinite(log_u)
    mixed = torch.where(possible, log_u + w * (log_c - log_u), torch.full_like(log_c, float("-inf")))
    return torch.log_softmax(mixed, -1).to(cond.dtype)


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
        x0, eps = x0_u + w * (x0_c - x0_u), eps_u + w * (eps_c - eps_u)
        logits = {f.name: mix_class_logits(x0_c[f.name], x0_u[f.name], w, f) for f in z.specs if f.kind == "categorical"}
        return x0.with_values(**logits), eps.with_values(**logits)

    def __repr__(self) -> str:
        return f"ClassifierFreeDenoiser({self.inner!r}, scale={self.scale})"
