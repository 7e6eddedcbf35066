"""Training losses of the three views of diffusion. All draw t ~ U(0, 1) per molecule and a noisy
state z_t = α_t z_0 + σ_t ε with CoM-free ε, and reduce a per-entry squared error the same way: a
per-molecule mean over coordinates and (weighted) type features, then a batch mean. Categorical
fields (``moldiff.diffusion.discrete``) add a cross-entropy on their clean class in every view.

Written as weightings of the ε-error ‖ε̂ − ε‖² (Kingma et al. 2021/2023, "Understanding diffusion
objectives"), the views differ only in w(t) and in what the network outputs:

| view          | loss                                 | as w(t) ‖ε̂ − ε‖²             | reference            |
|---------------|--------------------------------------|-------------------------------|----------------------|
| ``variational``| ‖ε̂ − ε‖²  (L_simple)                | w = 1                         | Ho et al. 2020, eq. 14 |
| ``score``     | σ_t² ‖ŝ − ∇log q(z_t|z_0)‖²          | w = 1 (λ(t) = σ_t²)           | Song et al. 2021, eq. 7 |
| ``flow``      | ‖v̂ − (α'_t z_0 + σ'_t ε)‖²           | w = (α σ' − α' σ)² / α²       | Lipman et al. 2023, eq. 9 |

* variational: the ELBO's diffusion term is ½ ∫ −dlogSNR/dt ‖ε̂ − ε‖² dt (VDM eq. 17); L_simple
  drops that weight. The ELBO itself is evaluated by ``moldiff.likelihood.elbo``.
* score: denoising score matching with Song's likelihood-agnostic weight λ(t) = σ_t²; the target
  score of q(z_t | z_0) is −ε/σ_t, so the loss equals L_simple in value and differs only when the
  network predicts the score directly (``prediction: score``).
* flow: conditional flow matching regresses the path velocity. On the linear path
  (α = 1 − t, σ = t, up to δ) the target is ε − z_0 and w = 1/α² = 1/(1 − t)², which weights the
  data end most.
"""

from __future__ import annotations

import torch

from moldiff import rng
from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.discrete import cross_entropies, noise_classes
from moldiff.diffusion.known import keep_known_shape
from moldiff.diffusion.state import MolGraph, MolState

VIEWS = ("variational", "score", "flow")


def noise_state(z0: MolState, t: torch.Tensor, graph: MolGraph, denoiser: Denoiser,
                generator: torch.Generator | None = None) -> tuple[MolState, MolState]:  # fmt: skip
    """z_t = α_t z_0 + σ_t ε with CoM-free ε. Returns (z_t, ε).

    Known atoms (``graph.known``) keep z_0's shape and types around their noised centroid, and their
    ε is the one that state implies (``moldiff.diffusion.known``). Categorical fields hold a class
    drawn from their mixture path at t instead (``moldiff.diffusion.discrete``; their ε is unused)."""
    eps = z0.randn_like(generator)
    a, s, _, _ = denoiser.coefficients(t, graph)
    z_t = a * z0 + s * eps
    if graph.known is not None and bool(graph.known.any()):
        z_t = keep_known_shape(z_t, z0, graph.known, graph)
        implied = ((z_t - a * z0) / s).to(eps.dtype)
        eps = eps.with_values(**{f.name: torch.where(graph.known[:, None], implied[f.name], eps[f.name])
                                 for f in eps.specs if f.on == "atoms"})  # fmt: skip
    if any(f.kind == "categorical" for f in z0.specs):
        z_t = noise_classes(z0, z_t, t, graph, denoiser.class_priors, generator)
    return z_t, eps


def per_molecule_mean(values: torch.Tensor, graph: MolGraph, on: str = "atoms") -> torch.Tensor:
    """Mean over each molecule's rows of a per-atom (N,) or per-pair (P,) value -> (B,). A molecule
    without rows (a one-atom molecule has no pairs) gets 0."""
    total = torch.zeros(graph.num_graphs, device=values.device, dtype=values.dtype)
    rows = graph.num_atoms if on == "atoms" else graph.num_pairs
    return total.index_add_(0, graph.index(on), values) / rows.clamp_min(1).to(values.dtype)


LOSS_NAMES = {"coords": "loss_pos", "types": "loss_type"}  # the names training logs have always used


def _reduce(err: MolState, graph: MolGraph, type_weight: float, field_weights: dict[str, float] | None = None,
            pred: MolState | None = None, z0: MolState | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """Per-entry squared errors -> the loss and its part per field.

    The Gaussian atom fields form one weighted mean over their columns, per atom then per molecule
    (``types`` weighted by ``type_weight``, any other field by its ``field_weights`` entry, else 1);
    each Gaussian pair field adds its own weighted per-molecule mean over pairs and columns, since a
    molecule has far more pairs than atoms and a shared mean would let the pairs swamp the
    coordinates. A categorical field (its logits in ``pred``, its clean class in ``z0``) adds its
    weighted per-molecule mean cross-entropy instead of a squared error."""
    weights = {f.name: type_weight if f.name == "types" else (field_weights or {}).get(f.name, 1.0) for f in err.specs}
    gaussian = [f for f in err.specs if f.kind == "gaussian"]
    atom_fields = [f for f in gaussian if f.on == "atoms"]
    per_row = {f.name: err[f.name].sum(1) for f in gaussian}
    total = sum(weights[f.name] * per_row[f.name] for f in atom_fields)
    dims = sum(weights[f.name] * f.columns for f in atom_fields)
    loss = per_molecule_mean(total, graph) / dims
    ce = cross_entropies(pred, z0) if len(gaussian) < len(err.specs) else {}
    out = {}
    for f in err.specs:
        if f.kind == "categorical":
            part = per_molecule_mean(ce[f.name], graph, f.on)
            loss = loss + weights[f.name] * part
        else:
            part = per_molecule_mean(per_row[f.name], graph, f.on) / f.columns
            if f.on == "pairs":
                loss = loss + weights[f.name] * part
        out[LOSS_NAMES.get(f.name, f"loss_{f.name}")] = part.mean().detach()
    return {"loss": loss.mean()} | out


def simple_loss(denoiser: Denoiser, z0: MolState, graph: MolGraph, *, type_weight: float = 1.0,
                generator: torch.Generator | None = None,
                field_weights: dict[str, float] | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """L_simple: ‖ε̂ − ε‖² averaged per molecule over its coordinates and (weighted) features."""
    t = rng.rand(graph.num_graphs, generator=generator, device=z0.device)
    z_t, eps = noise_state(z0, t, graph, denoiser, generator)
    pred = denoiser.eps(z_t, t, graph)
    return _reduce((pred - eps) ** 2, graph, type_weight, field_weights, pred, z0)


def score_matching_loss(denoiser: Denoiser, z0: MolState, graph: MolGraph, *, type_weight: float = 1.0,
                        generator: torch.Generator | None = None,
                        field_weights: dict[str, float] | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """Denoising score matching, σ_t² ‖ŝ(z_t) + ε/σ_t‖² = ‖σ_t ŝ + ε‖² (Vincent 2011; Song et al. 2021)."""
    t = rng.rand(graph.num_graphs, generator=generator, device=z0.device)
    z_t, eps = noise_state(z0, t, graph, denoiser, generator)
    _, s, _, _ = denoiser.coefficients(t, graph)
    pred = denoiser.score(z_t, t, graph)
    return _reduce((s * pred + eps) ** 2, graph, type_weight, field_weights, pred, z0)


def flow_matching_loss(denoiser: Denoiser, z0: MolState, graph: MolGraph, *, type_weight: float = 1.0,
                       generator: torch.Generator | None = None,
                       field_weights: dict[str, float] | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """Conditional flow matching, ‖v̂(z_t) − (α'_t z_0 + σ'_t ε)‖² (Lipman et al. 2023, eq. 9)."""
    t = rng.rand(graph.num_graphs, generator=generator, device=z0.device)
    z_t, eps = noise_state(z0, t, graph, denoiser, generator)
    _, _, da, ds = denoiser.coefficients(t, graph)
    pred = denoiser.velocity(z_t, t, graph)
    return _reduce((pred - (da * z0 + ds * eps)) ** 2, graph, type_weight, field_weights, pred, z0)


LOSSES = {"variational": simple_loss, "score": score_matching_loss, "flow": flow_matching_loss}


def training_loss(denoiser: Denoiser, z0: MolState, graph: MolGraph, diffusion,
                  generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """The loss of the view a diffusion config (``DiffusionConfig``: ``view``, ``type_loss_weight``,
    ``charge_loss_weight``, ``bond_loss_weight``) chooses, for clean states ``z0``. Returns {"loss",
    "loss_pos", "loss_type"} and the part of any other field ("loss_charges", "loss_bonds")."""
    view = getattr(diffusion, "view", "variational")
    if view not in LOSSES:
        raise ValueError(f"unknown view {view!r}; choose from {VIEWS}")
    weights = {"charges": getattr(diffusion, "charge_loss_weight", 1.0),
               "bonds": getattr(diffusion, "bond_loss_weight", 1.0)}  # fmt: skip
    if getattr(denoiser, "self_conditioned", False):  # half the batches learn to read a first estimate (Chen et al. 2023)
        denoiser.feed_back_next = bool(rng.rand(1, generator=generator, device=z0.device).item() < 0.5)
    return LOSSES[view](denoiser, z0, graph, type_weight=diffusion.type_loss_weight, generator=generator,
                        field_weights=weights)  # fmt: skip
