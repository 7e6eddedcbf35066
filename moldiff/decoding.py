"""Reading each atom's element, and a graph model's bonds, out of the features of a final state.

``argmax`` takes every atom's largest type feature. ``closed-shell`` does the same and then looks
at each molecule's electron count: a neutral molecule with an odd count is a radical, which no
molecule of a closed-shell training set (QM9, MOSES) is. For such a molecule it changes the one
atom whose best element of the other parity (C ↔ N, O ↔ N, H ↔ C, ...) costs the smallest drop in
type feature, so the molecule gets the most likely element assignment, by the network's own
features, that has an even electron count. Electron parity is a global count that a network of
local messages keeps poorly: the drug-like model leaves about half its molecules odd while their
geometry is otherwise sound (see ``moldiff/models/drugs.md``).
"""

from __future__ import annotations

import numpy as np
import torch

DECODINGS = ("argmax", "closed-shell")


def decode_types(features: torch.Tensor, atomic_numbers: torch.Tensor, batch: torch.Tensor, num_graphs: int,
                 how: str = "argmax", fixed: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """Type indices (N,) from type features (N, F).

    Args:
        features: (N, F) type features (scaled one-hot-like).
        atomic_numbers: (F,) the element of each type.
        batch: (N,) molecule of each atom; ``num_graphs`` molecules.
        how: ``argmax`` or ``closed-shell`` (module docstring).
        fixed: (N,) bool, atoms whose type is given (a scaffold) and never changed, or None.
    """
    if how not in DECODINGS:
        raise ValueError(f"unknown type decoding {how!r}; choose from {', '.join(DECODINGS)}")
    types = features.argmax(dim=1)
    if how == "argmax":
        return types
    odd_type = (atomic_numbers.to(features.device) % 2).bool()  # (F,)
    odd_atom = odd_type[types]  # (N,)
    odd_count = torch.zeros(num_graphs, dtype=torch.long, device=features.device).index_add_(0, batch, odd_atom.long())
    # the best element of the other parity for every atom, and what choosing it costs
    other = features.masked_fill(odd_type[None, :] == odd_atom[:, None], float("-inf"))
    alternative = other.argmax(dim=1)
    cost = features.gather(1, types[:, None]).squeeze(1) - other.max(dim=1).values
    cost = cost.masked_fill(~(odd_count % 2).bool()[batch], float("inf"))  # molecules already even
    if fixed is not None:
        cost = cost.masked_fill(fixed, float("inf"))
    cheapest = torch.full((num_graphs,), float("inf"), dtype=cost.dtype, device=cost.device)
    cheapest = cheapest.scatter_reduce(0, batch, cost, reduce="amin")
    flip = torch.isfinite(cost) & (cost == cheapest[batch])
    # one atom per molecule: the first of any ties
    first = torch.full((num_graphs,), batch.shape[0], dtype=torch.long, device=cost.device)
    index = torch.arange(batch.shape[0], device=cost.device)
    first = first.scatter_reduce(0, batch[flip], index[flip], reduce="amin")
    chosen = flip & (index == first[batch])
    return torch.where(chosen, alternative, types)


# ------------------------------------------------------------------------------------ bonds
BOND_DECODINGS = ("argmax", "valence")


def max_valence(atomic_number: int, charge: int) -> int:
    """The largest total bond order RDKit allows an atom of this element and formal charge: that of
    its isoelectronic neutral element (N+ as C: 4; O- as F: 1; S: 6)."""
    from rdkit import Chem

    effective = atomic_number - charge
    if effective < 1:
        return 0
    return max(Chem.GetPeriodicTable().GetValenceList(int(effective)))


def decode_bonds(scores: torch.Tensor, pairs: torch.Tensor, atomic_numbers: np.ndarray, charges: np.ndarray,
                 how: str = "argmax") -> np.ndarray:  # fmt: skip
    """The bond class (0 none, c order c) of every pair from the final state's bond features.

    ``argmax`` takes each pair's largest feature. ``valence`` gives no atom more bond orders than its
    element and charge allow (:func:`max_valence`): pairs are taken strongest first (best bonded
    feature minus the no-bond one), each getting the best-scoring class whose order still fits both
    atoms' room, so an excess double bond becomes single where the model prefers single to none,
    else the bond is dropped. Pairs the argmax leaves unbonded stay so.

    Args:
        scores: (P, C) bond-class features of the pairs ``pairs`` (P, 2) (global atom indices).
        atomic_numbers, charges: (N,) of every atom.
    """
    if how not in BOND_DECODINGS:
        raise ValueError(f"unknown bond decoding {how!r}; choose from {', '.join(BOND_DECODINGS)}")
    s = scores.detach().cpu().double().numpy()
    classes = s.argmax(1)
    if how == "argmax" or not (classes > 0).any():
        return classes
    room = np.array([max_valence(int(z), int(q)) for z, q in zip(atomic_numbers, charges)], dtype=np.int64)
    ends = pairs.cpu().numpy()
    bonded = np.flatnonzero(classes > 0)
    strength = s[bonded, 1:].max(1) - s[bonded, 0]
    for row in bonded[np.argsort(-strength, kind="stable")]:
        i, j = ends[row]
        fits = min(int(room[i]), int(room[j]), s.shape[1] - 1)
        classes[row] = int(s[row, : fits + 1].argmax())
        room[i] -= classes[row]
        room[j] -= classes[row]
    return classes
