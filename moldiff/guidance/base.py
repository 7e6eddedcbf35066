"""The base of every guidance wrapper: a Denoiser-compatible object built around another one.

A wrapper changes the pair (x̂₀, ε̂) its inner denoiser predicts and derives every other view from
it exactly (``moldiff.diffusion.parameterization``), so any solver, and any other wrapper, can use
it in place of a :class:`~moldiff.diffusion.denoiser.Denoiser`. The schedule and the count of
network evaluations (``nfe``) are the inner denoiser's. A state's categorical fields
(``moldiff.diffusion.discrete``) are not converted: as the Denoiser's, a wrapper's prediction of
them is the logits of their clean class in every view.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from moldiff.diffusion import parameterization as P
from moldiff.diffusion.denoiser import PredictionViews
from moldiff.diffusion.state import MolGraph, MolState


class GuidedDenoiser(PredictionViews, ABC):
    """Wraps ``inner`` (a Denoiser or another wrapper); subclasses implement :meth:`x0_eps`."""

    def __init__(self, inner) -> None:
        self.inner = inner

    @property
    def schedule(self):
        return self.inner.schedule

    @property
    def prediction(self) -> str:
        return self.inner.prediction

    @property
    def class_priors(self) -> dict[str, torch.Tensor]:
        """{name: (K,)} the path prior of each categorical field (none without them)."""
        return getattr(self.inner, "class_priors", {})

    @property
    def nfe(self) -> int:
        return self.inner.nfe

    @nfe.setter
    def nfe(self, value: int) -> None:
        self.inner.nfe = value

    def coefficients(self, t: torch.Tensor, graph: MolGraph):
        """α, σ, α', σ' per molecule, each (B,)."""
        return self.inner.coefficients(t, graph)

    def feeding_back(self):
        """The innermost denoiser's self-conditioning along a trajectory (``Denoiser.feeding_back``)."""
        return self.inner.feeding_back()

    @abstractmethod
    def x0_eps(self, z: MolState, t: torch.Tensor, graph: MolGraph) -> tuple[MolState, MolState]:
        """The guided (x̂₀, ε̂) for the state ``z`` at times ``t`` (B,)."""

    def predict(self, kind: str, z: MolState, t: torch.Tensor, graph: MolGraph) -> MolState:
        x0, eps = self.x0_eps(z, t, graph)
        coeffs = self.coefficients(t, graph)
        if not any(f.kind == "categorical" for f in z.specs):
            return P.from_x0_eps(kind, x0, eps, coeffs)
        return x0.with_values(**P.from_x0_eps(kind, x0.of_kind("gaussian"), eps.of_kind("gaussian"), coeffs).values)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"
