"""Neighbour graphs in pure torch (no torch-cluster / pyg-lib needed)."""

from __future__ import annotations

import torch


def fully_connected_edges(ptr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All ordered pairs (i, j), i ≠ j, of atoms in the same molecule.

    Args:
        ptr: (B + 1,) start offsets of each molecule's atoms.
    Returns:
        (src, dst): each (E,), E = Σ n_b (n_b − 1); grouped by ``src``.
    """
    counts = ptr[1:] - ptr[:-1]
    batch = torch.repeat_interleave(torch.arange(len(counts), device=ptr.device), counts)
    per_atom = counts[batch]  # each atom pairs with every atom of its molecule
    src = torch.repeat_interleave(torch.arange(len(batch), device=ptr.device), per_atom)
    block_start = torch.cumsum(per_atom, 0) - per_atom
    offset = torch.arange(len(src), device=ptr.device) - torch.repeat_interleave(block_start, per_atom)
    dst = ptr[:-1][batch[src]] + offset
    keep = src != dst
    return src[keep], dst[keep]
