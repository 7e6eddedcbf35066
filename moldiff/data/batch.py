"""MolBatch: a batch of molecules as one disconnected graph, in torch-geometric conventions.

Shapes (N atoms in B molecules):
    pos: (N, 3) float, Å          atom_type: (N,) long, index into an AtomVocabulary
    charge: (N,) long             batch: (N,) long, molecule of each atom (sorted)
    ptr: (B + 1,) long            props: (B, P) float, per-molecule properties (P may be 0)
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

    def __post_init__(self) -> None:
        n, b = self.pos.shape[0], self.ptr.shape[0] - 1
        expected = {"pos": (n, 3), "atom_type": (n,), "charge": (n,), "batch": (n,), "ptr": (b + 1,)}
        for name, shape in expected.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(f"MolBatch.{name} must have shape {shape}, got {got}")
        if self.props.dim() != 2 or self.props.shape[0] != b:
            raise ValueError(f"MolBatch.props must have shape ({b}, P), got {tuple(self.props.shape)}")

    @property
    def num_graphs(self) -> int:
        return self.ptr.shape[0] - 1

    @property
    def num_atoms(self) -> torch.Tensor:
        """Atoms per molecule, (B,)."""
        return self.ptr[1:] - self.ptr[:-1]

    def to(self, device: torch.device | str) -> MolBatch:
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)})

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
    )
