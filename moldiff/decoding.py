"""Reading each atom's element out of the type features of a final state.

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
