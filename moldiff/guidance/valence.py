"""The valence guard of scaffold inpainting: new atoms may bond to a scaffold atom only where it
has room.

A scaffold atom j comes with its *open valence* v_j, the hydrogens it carries in the full
scaffold but not in the fixed atoms (pyridine's nitrogen 0, each of its carbons 1; with ``*``
attachment points, the number of ``*`` on it). Left alone, a model readily puts a hydrogen or a
carbon on pyridine's nitrogen or furan's oxygen, and the molecule is lost. The guard acts on each
prediction x̂₀ of the inpainting denoiser: for every scaffold atom j, the free atoms are ranked by
their distance to it; the nearest v_j may bond, and every other free atom i closer than

    r_ij = (EDM single-bond threshold of the pair, as in ``moldiff.chem.bonds``) + margin

is moved radially out to r_ij (the free atom's element is the argmax of its x̂₀ type features;
pairs the bond rule never bonds are never pushed). A few sweeps settle atoms pushed by two
scaffold atoms at once; the result is re-projected to zero CoM, which shifts the whole molecule
and keeps the scaffold's shape. The solver then sees ε̂ = (z − α x̂₀)/σ, so it steers the
trajectory, not just the final molecule: atoms that cannot bond where they were drift to where
they can. It is a projection onto a constraint, no gradient and no network call.

A model that generates the bond graph says itself which atoms bond, so there the room is enforced
on its bonds (:func:`cap_new_bonds`): the open valence counts bond orders (a hydrogen left out is
one order of room), and a scaffold atom whose new bonds add up to more keeps its strongest ones by
the model's own bond-class scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from moldiff.chem.bonds import THRESHOLDS_PM
from moldiff.data.elements import AtomVocabulary
from moldiff.diffusion.state import MolGraph, MolState

MARGIN = 0.15  # Å beyond the bond threshold: out of bonding range, well inside 1-3 distances (≥ 2.1 Å)
SWEEPS = 3


def bond_radii(vocab: AtomVocabulary, margin: float = MARGIN) -> torch.Tensor:
    """(T, T) Å: the EDM single-bond threshold of each type pair plus ``margin``; 0 where the
    pair is never bonded."""
    z = vocab.atomic_numbers
    pm = THRESHOLDS_PM[0][np.ix_(z, z)]
    return torch.from_numpy(np.where(np.isfinite(pm), pm / 100.0 + margin, 0.0))


@dataclass(frozen=True)
class ValenceGuard:
    """Keeps free atoms out of bonding range of scaffold atoms that have no room for them.

    ``types`` (k,) and ``open_valence`` (k,) are the scaffold atoms' vocabulary types and open
    valences; ``radii`` (T, T) from :func:`bond_radii`."""

    types: torch.Tensor
    open_valence: torch.Tensor
    radii: torch.Tensor

    def __post_init__(self) -> None:
        if self.types.shape != self.open_valence.shape or self.types.dim() != 1:
            raise ValueError(f"ValenceGuard needs types and open valences of the same shape (k,); got "
                             f"{tuple(self.types.shape)} and {tuple(self.open_valence.shape)}")  # fmt: skip
        if (self.open_valence < 0).any():
            raise ValueError("open valences must be >= 0")

    @classmethod
    def build(cls, types: torch.Tensor, open_valence, vocab: AtomVocabulary, margin: float = MARGIN) -> ValenceGuard:
        return cls(torch.as_tensor(types).long(), torch.as_tensor(np.asarray(open_valence)).long(),
                   bond_radii(vocab, margin))  # fmt: skip

    @property
    def size(self) -> int:
        return int(self.types.shape[0])

    @torch.no_grad()
    def __call__(self, x0: MolState, graph: MolGraph) -> MolState:
        """``x0``, scaffold atoms first in every molecule, with the excess free atoms
        moved out of bonding range, re-projected to zero CoM."""
        k, b, device = self.size, graph.num_graphs, x0.device
        free = graph.num_atoms - k
        m = int(free.max()) if b else 0
        if m <= 0:
            return x0
        slot = torch.arange(m, device=device)
        present = slot[None, :] < free[:, None]  # (B, M)
        pos = x0["coords"]
        index = (graph.ptr[:-1, None] + k + slot[None, :]).clamp(max=pos.shape[0] - 1)
        known = pos[graph.leading(k)].reshape(b, k, 3)[:, :, None, :]  # (B, k, 1, 3)
        moved = pos[index]  # (B, M, 3)
        free_types = x0["types"][index].argmax(-1)  # (B, M)
        radii = self.radii.to(device=device, dtype=x0.dtype)[self.types.to(device)[None, :, None], free_types[:, None, :]]
        allowed = self.open_valence.to(device)[None, :, None]
        for _ in range(SWEEPS):
            diff = moved[:, None] - known  # (B, k, M, 3)
            dist = diff.norm(dim=-1)
            rank = dist.masked_fill(~present[:, None, :], float("inf")).argsort(-1).argsort(-1)
            excess = (rank >= allowed) & present[:, None, :] & (dist < radii)
            if not excess.any():
                break
            step = torch.where(excess, (radii - dist) / dist.clamp(min=1e-6), torch.zeros_like(dist))
            moved = moved + (step[..., None] * diff).sum(1)
        pos = pos.clone()
        pos[index[present]] = moved[present]
        return x0.with_values(coords=pos).project()


def cap_new_bonds(scores: torch.Tensor, graph: MolGraph, open_valence: torch.Tensor) -> torch.Tensor:
    """The bond class of every pair, with no scaffold atom given more new bond orders than its room.

    The scaffold is the first k atoms of every molecule. A pair (i, j), i < k ≤ j, is a new bond of
    scaffold atom i. Atom by atom, its new bonds are taken strongest first (the best bonded class's
    score minus the no-bond score), each getting the best-scoring class whose order still fits its
    remaining room (0, no bond, always fits): an excess double bond becomes single if the model
    prefers single to none, else it is dropped. Other pairs keep their argmax class.

    Args:
        scores: (P, C) the model's score of each bond class (0: none, c: order c) of every pair of
            ``graph`` (with pairs).
        graph: the molecules, each holding the k scaffold atoms first.
        open_valence: (k,) bond orders each scaffold atom may still take.

    Returns:
        (P,) long: the class of every pair.
    """
    classes = scores.argmax(1)
    k = int(open_valence.shape[0])
    local = (graph.pairs - graph.ptr[graph.pair_batch][:, None]).cpu()
    new = ((local[:, 0] < k) & (local[:, 1] >= k) & (classes.cpu() > 0)).numpy()
    if not new.any():
        return classes
    s = scores.detach().cpu().double().numpy()
    out = classes.cpu().numpy().copy()
    owner = (graph.pair_batch.cpu().numpy() * k + local[:, 0].numpy())[new]  # molecule and scaffold atom
    rows = np.flatnonzero(new)
    room = np.tile(open_valence.cpu().numpy().astype(np.int64), graph.num_graphs)
    strength = s[rows, 1:].max(1) - s[rows, 0]
    for pos in np.lexsort((-strength, owner)):  # scaffold atom by atom, strongest bond first
        row, atom = rows[pos], owner[pos]
        fits = min(int(room[atom]), s.shape[1] - 1)
        out[row] = int(s[row, : fits + 1].argmax())
        room[atom] -= out[row]
    return torch.as_tensor(out, device=classes.device)


__all__ = ["MARGIN", "ValenceGuard", "bond_radii", "cap_new_bonds"]
