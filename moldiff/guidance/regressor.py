"""Regressor (energy) guidance, as in EEGSDE (Bao et al. 2023): a time-dependent property
predictor g(z_t, t) defines an energy, and its gradient tilts the model's score,

    ∇log p̃_t(z) = ∇log p_t(z) − ∇_z E(z, t),   i.e.   ε̃ = ε̂ + σ_t ∇_z E,   x̃₀ = (z − σ_t ε̃) / α_t,

so that samples are drawn (approximately) from p(z) e^{−E}. The energy is a weighted sum over
guide terms, each in the predictor's normalised units ĝ = (g − μ)/s:

    E = λ Σ_k w_k (ĝ_k − c_k)²     (a target value c_k)
    E = λ Σ_k (∓ w_k ĝ_k)          (a direction: ``max`` lowers E as ĝ_k rises, ``min`` the reverse)

with λ the overall ``scale``. The predictor is E(3)-invariant, so ∇_z E is rotation-equivariant
and its coordinate part sums to zero over each molecule; it is projected onto the zero-CoM
subspace anyway, so rounding can never move a molecule's centre.

The tilt moves each molecule's prediction x̃₀ by (σ_t/α_t) σ_t ∇_z E; that move is capped per
molecule at an RMS of ``max_shift`` data units over the guided entries (default 1: an ångström
for coordinates), a trust region for guidance. Why: a predictor read far from its training data
can return a gradient thousands of times its usual size. On QM9, near t = 1 a few molecules in a
hundred got 10³–10⁴ times the median tilt, and α_t ≈ 0.003 there turned that into a jump of x̃₀
that threw their coordinates to infinity (9 of 100 at λ = 8); a cap on the tilt in ε units
alone (RMS 1) still let coordinates reach 130 Å and gave α's MAE outliers. Near t = 1 the cap
all but switches guidance off, where the predictor knows little; at low noise it rarely binds.
Scaling a molecule's tilt by one number keeps it zero-CoM and equivariant; a non-finite tilt is
dropped.

A model with categorical discrete fields (``moldiff.diffusion.discrete``) predicts, for each of
them, the distribution of the clean class, p(x_0 | x_t). The tilted law p(x) e^{−E(x)} tilts it
to p(x_0 | x_t) e^{−E(x_0)}: exactly so when E adds up over entries. The tilt uses E's first-order
change when an entry's scaled one-hot h moves to class k, so each class's logit gains

    −s_f ∂E/∂h_k          (s_f the field's one-hot scale),

the Taylor-approximated guidance of discrete diffusion (DiGress, Vignac et al. 2023; Nisonoff et al.
2024), on the x̂₀ that the categorical step reads. The predictor reads the state's one-hots as they
are (a masking prior's mask column dropped: a masked atom is no element yet). This log-probability
move is capped in the same way, per molecule at an RMS of ``max_shift`` nats over the guided
entries (each row's moves centred, as a softmax ignores a constant), and dropped if not finite.
With ``features=False`` the classes are left to the model and only the coordinates are tilted.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from moldiff.diffusion.state import MolGraph, MolState, grad
from moldiff.errors import MoldiffError
from moldiff.guidance.base import GuidedDenoiser
from moldiff.guidance.units import parse_assignment

DIRECTIONS = {"max": 1, "min": -1}
MAX_SHIFT = 1.0  # data units (Å for coordinates): how far guidance may move a molecule's x̂₀ per call


@dataclass(frozen=True)
class GuideTerm:
    """One property to steer: toward ``target`` (in the property's canonical unit) or, when
    ``direction`` is +1 / −1, up / down; ``weight`` multiplies its energy."""

    name: str
    target: float | None = None
    direction: int = 0
    weight: float = 1.0

    def __post_init__(self) -> None:
        if (self.target is None) == (self.direction == 0):
            raise ValueError(f"guide term {self.name!r} needs exactly one of a target or a direction")


def parse_guide(text: str, option: str = "--guide") -> GuideTerm:
    """``qed=max``, ``logp=2.5``, ``gap=4.5eV:2`` (target 4500 meV with weight 2), ``sa=min:0.5``
    (the syntax of :class:`moldiff.config.Objective`); ``option`` names the input in error messages."""
    from moldiff.config.sample import Objective

    name, rest = parse_assignment(text, option)
    return Objective.parse(rest, f"{option} {text!r}").term(name)


class PropertyEnergy:
    """E(z, t) = Σ_k w_k (ĝ_k − c_k)² or Σ_k ∓w_k ĝ_k of guide ``terms`` under a property ``model``
    (``model(z, t, graph, schedule) -> (B, P)`` normalised, with ``model.norm`` naming its outputs),
    per molecule: what regressor guidance descends and what particle steering's reward negates."""

    def __init__(self, model, terms: list[GuideTerm]) -> None:
        self.model, self.terms = model, list(terms)
        self.index = [model.norm.index(term.name) for term in self.terms]
        mean, std = model.norm.mean, model.norm.std
        self.targets = [None if term.target is None else (term.target - mean[k]) / std[k]
                        for term, k in zip(self.terms, self.index)]  # fmt: skip

    def __call__(self, z: MolState, t: torch.Tensor, graph: MolGraph, schedule) -> torch.Tensor:
        """(B,)"""
        pred = self.model(z, t, graph, schedule)
        total = torch.zeros(graph.num_graphs, dtype=pred.dtype, device=pred.device)
        for term, k, target in zip(self.terms, self.index, self.targets):
            value = pred[:, k]
            total = total + term.weight * ((value - target) ** 2 if target is not None else -term.direction * value)
        return total


class RegressorGuidedDenoiser(GuidedDenoiser):
    """Adds the scaled energy gradient of ``model`` to ``inner``'s ε̂ (see the module doc).

    Args:
        inner: a Denoiser or another wrapper.
        model: ``model(z, t, graph, schedule) -> (B, P)`` normalised predictions, with ``model.norm``
            (a :class:`~moldiff.guidance.condition.PropertyNorm`) naming its P outputs;
            a :class:`~moldiff.property_model.PropertyModel` is one.
        terms: what to steer; each name must be one of the model's outputs.
        scale: λ, the overall strength.
        features: also steer the fields other than coordinates that ``model`` reads (its
            ``reads``, default every field; EEGSDE guides the whole state); False steers coordinates
            only. Fields it does not read (a graph model's charges and bonds under a predictor of
            coordinates and types) keep the inner prediction.
        max_shift: the largest RMS move of a molecule's x̂₀ that the tilt may cause, in data units;
            None: no cap.
    """

    def __init__(self, inner, model, terms: list[GuideTerm], scale: float = 1.0, *, features: bool = True,
                 max_shift: float | None = MAX_SHIFT) -> None:  # fmt: skip
        super().__init__(inner)
        if not terms:
            raise MoldiffError("regressor guidance needs at least one term")
        if max_shift is not None and not max_shift > 0:
            raise MoldiffError(f"the guidance shift cap must be positive, got {max_shift}")
        self.model, self.terms, self.scale, self.features = model, list(terms), float(scale), features
        self.max_shift = max_shift
        self.reads = getattr(model, "reads", None)  # None: every field
        self.property_energy = PropertyEnergy(model, self.terms)

    def _guided(self, spec) -> bool:
        """Whether the tilt moves field ``spec``."""
        return (self.features or spec.centred) and (self.reads is None or spec.name in self.reads)

    def energy(self, z: MolState, t: torch.Tensor, graph: MolGraph) -> torch.Tensor:
        """E per molecule, (B,)."""
        return self.scale * self.property_energy(z, t, graph, self.schedule)

    def gradient(self, z: MolState, t: torch.Tensor, graph: MolGraph) -> MolState:
        """∇_z E, coordinates projected to zero CoM (fields that are not guided zeroed)."""
        with torch.enable_grad():
            z_in = z.requires_grad_()
            g = grad(self.energy(z_in, t, graph).sum(), z_in)
        g = g.with_values(**{f.name: torch.zeros_like(g[f.name]) for f in g.specs if not self._guided(f)})
        return g.project()

    def x0_eps(self, z: MolState, t: torch.Tensor, graph: MolGraph) -> tuple[MolState, MolState]:
        x0, eps = self.inner.x0_eps(z, t, graph)
        if self.scale == 0:
            return x0, eps
        a, s, _, _ = self.coefficients(t, graph)
        gradient = self.gradient(z, t, graph)
        if not any(f.kind == "categorical" for f in z.specs):
            eps = eps + self.tilt(s * gradient, graph, s / a)
            return (z - s * eps) / a, eps
        # the Gaussian fields as above; the categorical fields' logits by the class tilt
        eps_g = eps.of_kind("gaussian") + self.tilt(s * gradient.of_kind("gaussian"), graph, s / a)
        x0_g = (z.of_kind("gaussian") - s * eps_g) / a
        logits = self.class_tilt(x0.of_kind("categorical"), gradient.of_kind("categorical"), graph).values
        return x0.with_values(**x0_g.values, **logits), eps.with_values(**eps_g.values, **logits)

    def class_tilt(self, logits: MolState, gradient: MolState, graph: MolGraph) -> MolState:
        """The categorical fields' ``logits`` each moved by −s_f ∂E/∂h (``gradient``, ∂E/∂h of
        their one-hots), the move capped per molecule at an RMS of ``max_shift`` nats over the
        guided fields' entries (each row centred); a molecule whose move is not finite gets none."""
        guided = [f for f in logits.specs if self._guided(f)]
        if not guided:
            return logits
        moves = {}
        for f in guided:
            move = -f.scale * gradient[f.name].to(logits[f.name].dtype)
            moves[f.name] = move - move.mean(1, keepdim=True)
        move = MolState(moves, tuple(guided), graph)
        broken = move.molecule_sum(lambda v, f: (~torch.isfinite(v)).any(1).to(v.dtype)) > 0
        move = move.zeros_like().where(broken, move)
        if self.max_shift is not None:
            rms = (move.molecule_sum(lambda v, f: (v**2).sum(1)) / move.entries().to(move.dtype)).sqrt()
            move = move * (self.max_shift / rms.clamp(min=self.max_shift))
        return logits.with_values(**{f.name: logits[f.name] + move[f.name] for f in guided})

    def tilt(self, shift: MolState, graph: MolGraph, x0_gain: torch.Tensor | float = 1.0) -> MolState:
        """``shift`` scaled down, per molecule, so that ``x0_gain`` × it (σ_t/α_t per molecule: its
        effect on x̂₀) has an RMS of at most ``max_shift``; a molecule whose shift is not finite gets
        none."""
        if self.max_shift is None:
            return shift
        broken = shift.molecule_sum(lambda v, f: (~torch.isfinite(v)).any(1).to(v.dtype)) > 0
        shift = shift.zeros_like().where(broken, shift)
        guided = [f for f in shift.specs if self._guided(f)]
        columns = sum(f.columns for f in guided)
        gained = x0_gain * shift
        sq = gained.molecule_sum(lambda v, f: (v**2).sum(1) if f in guided else torch.zeros_like(v[:, 0]))
        rms = (sq / graph.num_atoms.to(sq.dtype) / columns).sqrt()
        return shift * (self.max_shift / rms.clamp(min=self.max_shift))

    def __repr__(self) -> str:
        return (f"RegressorGuidedDenoiser({self.inner!r}, terms={self.terms}, scale={self.scale}, "
                f"max_shift={self.max_shift})")
