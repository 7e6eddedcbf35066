"""MolBatch: a batch of molecules as one disconnected graph, in torch-geometric conventions.

Shapes (N atoms in B molecules):
    pos: (N, 3) float, Å          atom_type: (N,) long, index into an AtomVocabulary
    charge: (N,) long             batch: (N,) long, molecule of each atom (sorted)
    ptr: (B + 1,) long            props: (B, P) float, per-molecule properties (P may be 0)
    bond_class: (P,) long or None, the bond order of every unordered atom pair i < j of each molecule
        (0: no bond), molecule by molecule and row-major within one (``MolGraph.with_pairs``'s order)
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from moldiff.data.com import remove_mean
from moldiff.data.elements import AtomVocabulary
from moldiff.data.molset import MolSet


@dataclass
class MolBatch:
    pos: torch.Tensor
    atom_type: torch.Tensor
    charge: torch.Tensor
    batch: torch.Tensor
    ptr: torch.Tensor
    props: torch.Tensor
    bond_class: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n, b = self.pos.shape[0], self.ptr.shape[0] - 1
        expected = {"pos": (n, 3), "atom_type": (n,), "charge": (n,), "batch": (n,), "ptr": (b + 1,)}
        for name, shape in expected.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(f"MolBatch.{name} must have shape {shape}, got {got}")
        if self.props.dim() != 2 or self.props.shape[0] != b:
            raise ValueError(f"MolBatch.props must have shape ({b}, P), got {tuple(self.props.shape)}")
        pairs = int((self.num_atoms * (self.num_atoms - 1) // 2).sum())
        if self.bond_class is not None and tuple(self.bond_class.shape) != (pairs,):
            raise ValueError(f"MolBatch.bond_class must have shape ({pairs},), got {tuple(self.bond_class.shape)}")

    @property
    def num_graphs(self) -> int:
        return self.ptr.shape[0] - 1

    @property
    def num_atoms(self) -> torch.Tensor:
        """Atoms per molecule, (B,)."""
        return self.ptr[1:] - self.ptr[:-1]

    def to(self, device: torch.device | str) -> MolBatch:
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)
                                if getattr(self, f.name) is not None})  # fmt: skip

    def centred(self) -> MolBatch:
        """The same batch with each molecule's positions moved to zero centre of mass."""
        return replace(self, pos=remove_mean(self.pos, self.batch, self.num_graphs))

    def to_pyg(self):
        """A ``torch_geometric.data.Batch`` with the same tensors (``x`` holds the atom types)."""
        from torch_geometric.data import Batch

        out = Batch(pos=self.pos, x=self.atom_type, charge=self.charge, batch=self.batch,
                    ptr=self.ptr, y=self.props)  # fmt: skip
        out._num_graphs = self.num_graphs
        return out


def collate(data: MolSet, index: np.ndarray | list[int], vocab: AtomVocabulary,
            property_names: tuple[str, ...] = ()) -> MolBatch:
    """Gather molecules ``index`` of ``data`` into a MolBatch (positions as stored, not centred)."""
    sub = data.subset(np.asarray(index, dtype=np.int64))
    counts = torch.from_numpy(sub.n_atoms)
    props = (np.stack([sub.properties[k] for k in property_names], axis=1)
             if property_names else np.zeros((len(sub), 0)))  # fmt: skip
    return MolBatch(
        pos=torch.from_numpy(sub.positions.copy()),
        atom_type=torch.from_numpy(vocab.encode(sub.atomic_numbers)),
        charge=torch.from_numpy(sub.charges.copy()),
        batch=torch.repeat_interleave(torch.arange(len(sub)), counts),
        ptr=torch.from_numpy(sub.ptr.copy()),
        props=torch.from_numpy(props).float(),
        bond_class=torch.from_numpy(bond_classes(sub)) if sub.has_bonds else None,
    )


def pair_offsets(n_atoms: np.ndarray) -> np.ndarray:
    """(M + 1,) where each molecule's unordered pairs start in the flat pair list."""
    return np.concatenate([[0], np.cumsum(n_atoms * (n_atoms - 1) // 2)]).astype(np.int64)


def pair_position(i: np.ndarray, j: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Row of the pair (i, j), i < j, among the row-major pairs of an n-atom molecule."""
    return i * n - i * (i + 1) // 2 + (j - i - 1)


def bond_classes(data: MolSet) -> np.ndarray:
    """(P,) bond order (0: none) of every unordered pair i < j of each molecule of ``data``."""
    offsets = pair_offsets(data.n_atoms)
    out = np.zeros(offsets[-1], dtype=np.int64)
    owner = np.repeat(np.arange(len(data)), np.diff(data.bond_ptr))
    i, j, order = data.bonds.T
    out[offsets[owner] + pair_position(i, j, data.n_atoms[owner])] = order
    return out


def bonds_from_classes(classes: np.ndarray, n_atoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`bond_classes`: (bonds (B, 3) as (i, j, order) local to their molecule,
    bond_ptr (M + 1,)) from the classes (P,) of every unordered pair."""
    offsets = pair_offsets(n_atoms)
    rows, orders, counts = [], [], []
    for m, n in enumerate(n_atoms.tolist()):
        i, j = np.triu_indices(n, 1)
        cls = classes[offsets[m] : offsets[m + 1]]
        bonded = cls > 0
        rows.append(np.stack([i[bonded], j[bonded]], 1))
        orders.append(cls[bonded])
        counts.append(int(bonded.sum()))
    bonds = np.concatenate([np.concatenate(rows), np.concatenate(orders)[:, None]], 1) if rows else np.zeros((0, 3))
    return bonds.astype(np.int64), np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
