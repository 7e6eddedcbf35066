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


__all__ = ["MARGIN", "ValenceGuard", "bond_radii"]
