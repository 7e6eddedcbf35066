"""Categorical fields of a molecular state (``FieldSpec.kind == "categorical"``): a graph model's atom
types, formal charges and bond classes as classes on the mixture paths of
``moldiff.diffusion.categorical``, while the coordinates stay Gaussian.

In the state a categorical field is the scaled one-hot of its current class (what the network
reads, at the field's ``scale``); the network's output for it is the logits of the clean class,
trained by cross-entropy. A masking prior adds a last class, the mask, that the clean data never
holds, so its logit is never a clean class (:func:`clean_logits`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from moldiff import rng
from moldiff.diffusion import categorical as C
from moldiff.diffusion.state import FieldSpec, MolGraph, MolState


def field_priors(specs: tuple[FieldSpec, ...], prior: str, marginals: dict[str, list[float]] | None = None
                 ) -> dict[str, torch.Tensor]:  # fmt: skip
    """{name: (K,) float64} the path prior of every categorical field of ``specs``.

    ``marginal`` takes each field's data class frequencies from ``marginals`` {name: [K floats]}."""
    out = {}
    for f in specs:
        if f.kind != "categorical":
            continue
        given = (marginals or {}).get(f.name)
        if prior == "marginal" and given is None:
            raise ValueError(f"the marginal prior needs the class frequencies of field {f.name!r}")
        out[f.name] = C.prior_probabilities(prior, f.columns, None if given is None else torch.tensor(given))
    return out


def class_marginals(counts: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """Class frequencies {name: [K floats]} from class counts {name: (K,)}, with one pseudo-count per
    class so that no class is impossible under the prior."""
    return {name: ((c + 1.0) / (c + 1.0).sum()).tolist() for name, c in counts.items()}


def clean_logits(logits: torch.Tensor, spec: FieldSpec) -> torch.Tensor:
    """(rows, K) the logits of the clean class: a masked field's mask class can never be one."""
    if not spec.masked:
        return logits
    return logits.masked_fill(torch.arange(spec.columns, device=logits.device) == spec.columns - 1, float("-inf"))


def class_probabilities(logits: torch.Tensor, spec: FieldSpec) -> torch.Tensor:
    """(rows, K) p(x_0 | x_t) from the network's logits, in float64 (the reverse step's precision)."""
    return torch.softmax(clean_logits(logits.double(), spec), dim=-1)


def one_hot(classes: torch.Tensor, spec: FieldSpec, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(rows, K) the scaled one-hot the network reads for ``classes`` (rows,)."""
    return F.one_hot(classes, spec.columns).to(dtype) * spec.scale


def classes_of(z: MolState) -> dict[str, torch.Tensor]:
    """{name: (rows,)} the class of every row of each categorical field (its one-hot's argmax)."""
    return {f.name: z[f.name].argmax(1) for f in z.specs if f.kind == "categorical"}


def noise_classes(z0: MolState, z_t: MolState, t: torch.Tensor, graph: MolGraph, priors: dict[str, torch.Tensor],
                  generator: torch.Generator | None = None) -> MolState:  # fmt: skip
    """``z_t`` with each categorical field replaced by x_t ~ q(x_t | x_0) at each molecule's time
    ``t`` (B,), x_0 the class of ``z0``'s one-hot (training)."""
    values = {}
    for f in z0.specs:
        if f.kind == "categorical":
            x0 = z0[f.name].argmax(1)
            clean = F.one_hot(x0, f.columns).double()
            probs = C.noised_probabilities(clean, t[graph.index(f.on)].detach().double(), priors[f.name])
            u = rng.rand((x0.shape[0],), generator=generator, device=x0.device, dtype=torch.float64)
            values[f.name] = one_hot(C.sample(probs, u=u), f, z_t[f.name].dtype)
    return z_t.with_values(**values)


def cross_entropies(logits: MolState, z0: MolState) -> dict[str, torch.Tensor]:
    """{name: (rows,)} −log p(x_0 | x_t) of each categorical field's clean class (``z0``'s one-hot)
    under the network's ``logits``."""
    return {f.name: F.cross_entropy(clean_logits(logits[f.name].float(), f), z0[f.name].argmax(1), reduction="none")
            for f in z0.specs if f.kind == "categorical"}  # fmt: skip


__all__ = ["class_marginals", "class_probabilities", "classes_of", "clean_logits", "cross_entropies", "field_priors",
           "noise_classes", "one_hot"]  # fmt: skip
