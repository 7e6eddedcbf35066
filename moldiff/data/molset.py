"""MolSet: many molecules packed into flat numpy arrays (the in-memory format of every data source).

Atoms of molecule ``i`` occupy rows ``ptr[i]:ptr[i+1]`` of the per-atom arrays, as in
torch-geometric's ``ptr``. QM9, user SDF files and SMILES files all become a MolSet.

Shapes:
    atomic_numbers: (N,) int   positions: (N, 3) float32, Å   charges: (N,) int (formal charges)
    ptr: (M + 1,) int64        ids: (M,) int64 (row or index in the source)
    smiles: (M,) str           properties: name -> (M,) float64
    bonds: (B, 3) int (i, j, order), optional: the bond graph, each bond once with i < j, atom
        indices local to their molecule, Kekulé orders 1, 2, 3 (aromaticity is perceived from them)
    bond_ptr: (M + 1,) int64   bonds of molecule ``i`` are rows ``bond_ptr[i]:bond_ptr[i+1]``
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moldiff.errors import MoldiffError
from moldiff.paths import atomic_write_bytes


@dataclass
class MolSet:
    atomic_numbers: np.ndarray
    positions: np.ndarray
    ptr: np.ndarray
    charges: np.ndarray | None = None
    ids: np.ndarray | None = None
    smiles: np.ndarray | None = None
    properties: dict[str, np.ndarray] = field(default_factory=dict)
    bonds: np.ndarray | None = None
    bond_ptr: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.atomic_numbers = np.asarray(self.atomic_numbers, dtype=np.int64)
        self.positions = np.asarray(self.positions, dtype=np.float32)
        self.ptr = np.asarray(self.ptr, dtype=np.int64)
        n_atoms, n_mols = len(self.atomic_numbers), len(self.ptr) - 1
        if self.charges is None:
            self.charges = np.zeros(n_atoms, dtype=np.int64)
        self.charges = np.asarray(self.charges, dtype=np.int64)
        if self.ids is None:
            self.ids = np.arange(n_mols, dtype=np.int64)
        self.ids = np.asarray(self.ids, dtype=np.int64)
        if self.smiles is not None:
            self.smiles = np.asarray(self.smiles, dtype=str)
        self.properties = {k: np.asarray(v, dtype=np.float64) for k, v in self.properties.items()}
        if (self.bonds is None) != (self.bond_ptr is None):
            raise ValueError("bonds and bond_ptr come together")
        if self.bonds is not None:
            self.bonds = np.asarray(self.bonds, dtype=np.int64).reshape(-1, 3)
            self.bond_ptr = np.asarray(self.bond_ptr, dtype=np.int64)
            self._check_bonds(n_mols)
        self._check(n_atoms, n_mols)

    def _check(self, n_atoms: int, n_mols: int) -> None:
        if self.positions.shape != (n_atoms, 3):
            raise ValueError(f"positions must be ({n_atoms}, 3), got {self.positions.shape}")
        if n_mols < 0 or self.ptr[0] != 0 or self.ptr[-1] != n_atoms or (np.diff(self.ptr) < 0).any():
            raise ValueError(f"ptr must rise from 0 to {n_atoms}, got {self.ptr[:3]}...{self.ptr[-3:]}")
        if self.charges.shape != (n_atoms,):
            raise ValueError(f"charges must be ({n_atoms},), got {self.charges.shape}")
        for name, arr in [("ids", self.ids), ("smiles", self.smiles), *self.properties.items()]:
            if arr is not None and arr.shape != (n_mols,):
                raise ValueError(f"{name} must be ({n_mols},), got {arr.shape}")

    def _check_bonds(self, n_mols: int) -> None:
        b, ptr = self.bonds, self.bond_ptr
        if ptr.shape != (n_mols + 1,) or ptr[0] != 0 or ptr[-1] != len(b) or (np.diff(ptr) < 0).any():
            raise ValueError(f"bond_ptr must rise from 0 to {len(b)} over {n_mols} molecules, got shape {ptr.shape}")
        owner_atoms = np.repeat(np.diff(self.ptr), np.diff(ptr))
        if len(b) and ((b[:, 0] < 0) | (b[:, 0] >= b[:, 1]) | (b[:, 1] >= owner_atoms)).any():
            raise ValueError("each bond must be (i, j, order) with 0 <= i < j < its molecule's atom count")
        if len(b) and ((b[:, 2] < 1) | (b[:, 2] > 3)).any():
            raise ValueError("bond orders must be 1, 2 or 3 (Kekulé)")

    @property
    def has_bonds(self) -> bool:
        return self.bonds is not None

    def molecule_bonds(self, i: int) -> np.ndarray:
        """(b, 3) bonds (i, j, order) of molecule ``i``, atom indices local to it."""
        if self.bonds is None:
            raise ValueError("this molecule set carries no bonds")
        return self.bonds[self.bond_ptr[i] : self.bond_ptr[i + 1]]

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.ptr) - 1

    @property
    def n_atoms(self) -> np.ndarray:
        """Atoms per molecule, (M,)."""
        return np.diff(self.ptr)

    @property
    def batch(self) -> np.ndarray:
        """Molecule index of every atom, (N,)."""
        return np.repeat(np.arange(len(self)), self.n_atoms)

    def molecule(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(atomic_numbers (n,), positions (n, 3)) of molecule ``i``."""
        a, b = self.ptr[i], self.ptr[i + 1]
        return self.atomic_numbers[a:b], self.positions[a:b]

    def subset(self, index: np.ndarray | list[int] | slice) -> MolSet:
        """The molecules at ``index`` (in that order)."""
        idx = np.arange(len(self))[index] if isinstance(index, slice) else np.asarray(index, np.int64)
        counts = self.n_atoms[idx]
        atom_idx = _ranges(self.ptr[idx], counts)
        bonds = bond_ptr = None
        if self.bonds is not None:
            bond_counts = np.diff(self.bond_ptr)[idx]
            bonds = self.bonds[_ranges(self.bond_ptr[idx], bond_counts)]
            bond_ptr = np.concatenate([[0], np.cumsum(bond_counts)])
        return MolSet(
            atomic_numbers=self.atomic_numbers[atom_idx],
            positions=self.positions[atom_idx],
            ptr=np.concatenate([[0], np.cumsum(counts)]),
            charges=self.charges[atom_idx],
            ids=self.ids[idx],
            smiles=None if self.smiles is None else self.smiles[idx],
            properties={k: v[idx] for k, v in self.properties.items()},
            bonds=bonds,
            bond_ptr=bond_ptr,
        )

    def without_hydrogens(self) -> MolSet:
        """The same molecules with every hydrogen removed (the heavy-atom-only variant)."""
        keep = self.atomic_numbers != 1
        counts = np.add.reduceat(keep.astype(np.int64), self.ptr[:-1]) if len(self) else np.zeros(0)
        counts = np.where(self.n_atoms > 0, counts, 0)
        bonds, bond_ptr = self._bonds_among(keep)
        return MolSet(
            atomic_numbers=self.atomic_numbers[keep],
            positions=self.positions[keep],
            ptr=np.concatenate([[0], np.cumsum(counts)]),
            charges=self.charges[keep],
            ids=self.ids,
            smiles=self.smiles,
            properties=dict(self.properties),
            bonds=bonds,
            bond_ptr=bond_ptr,
        )

    def _bonds_among(self, keep: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The bonds whose two atoms are kept, renumbered among the kept atoms of their molecule."""
        if self.bonds is None:
            return None, None
        owner = np.repeat(np.arange(len(self)), np.diff(self.bond_ptr))  # each bond's molecule
        start = self.ptr[owner]
        ends = self.bonds[:, :2] + start[:, None]  # global atom indices
        both = keep[ends].all(axis=1)
        kept_before = np.concatenate([[0], np.cumsum(keep)])  # kept atoms before each global index
        local = kept_before[ends[both]] - kept_before[start[both]][:, None]
        counts = np.bincount(owner[both], minlength=len(self))
        return np.column_stack([local, self.bonds[both, 2]]), np.concatenate([[0], np.cumsum(counts)])

    # -------------------------------------------------------------- statistics
    def atom_count_histogram(self) -> dict[int, int]:
        """{number of atoms: number of molecules} over the set."""
        values, counts = np.unique(self.n_atoms, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts)}

    def element_frequencies(self) -> dict[int, float]:
        """{atomic number: fraction of all atoms}."""
        values, counts = np.unique(self.atomic_numbers, return_counts=True)
        return {int(v): float(c) / max(len(self.atomic_numbers), 1) for v, c in zip(values, counts)}

    # -------------------------------------------------------------------- I/O
    @staticmethod
    def concat(sets: list[MolSet]) -> MolSet:
        if not sets:
            raise ValueError("nothing to concatenate")
        counts = np.concatenate([s.n_atoms for s in sets])
        names = set(sets[0].properties)
        props = {k: np.concatenate([s.properties[k] for s in sets]) for k in names
                 if all(k in s.properties for s in sets)}  # fmt: skip
        has_smiles = all(s.smiles is not None for s in sets)
        has_bonds = all(s.bonds is not None for s in sets)
        return MolSet(
            atomic_numbers=np.concatenate([s.atomic_numbers for s in sets]),
            positions=np.concatenate([s.positions for s in sets]),
            ptr=np.concatenate([[0], np.cumsum(counts)]),
            charges=np.concatenate([s.charges for s in sets]),
            ids=np.concatenate([s.ids for s in sets]),
            smiles=np.concatenate([s.smiles for s in sets]) if has_smiles else None,
            properties=props,
            bonds=np.concatenate([s.bonds for s in sets]) if has_bonds else None,
            bond_ptr=np.concatenate([[0], np.cumsum(np.concatenate([np.diff(s.bond_ptr) for s in sets]))])
            if has_bonds else None,
        )

    def save(self, path: str | Path, extra: dict[str, np.ndarray] | None = None) -> None:
        """Write an uncompressed .npz atomically (fast to load again), with ``extra`` arrays beside."""
        arrays = {
            "atomic_numbers": self.atomic_numbers.astype(np.int8),
            "positions": self.positions,
            "ptr": self.ptr,
            "charges": self.charges.astype(np.int8),
            "ids": self.ids,
        }
        if self.smiles is not None:
            arrays["smiles"] = self.smiles
        if self.bonds is not None:
            arrays["bonds"], arrays["bond_ptr"] = self.bonds.astype(np.int16), self.bond_ptr
        arrays.update({f"prop:{k}": v for k, v in self.properties.items()})
        arrays.update(extra or {})
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> MolSet:
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(
                    atomic_numbers=z["atomic_numbers"],
                    positions=z["positions"],
                    ptr=z["ptr"],
                    charges=z["charges"],
                    ids=z["ids"],
                    smiles=z["smiles"] if "smiles" in z else None,
                    properties={k[5:]: z[k] for k in z.files if k.startswith("prop:")},
                    bonds=z["bonds"] if "bonds" in z else None,
                    bond_ptr=z["bond_ptr"] if "bond_ptr" in z else None,
                )
        except (OSError, KeyError, ValueError) as exc:
            raise MoldiffError(f"cannot read molecule set {path}: {exc}") from None


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + c) for each (s, c), without a Python loop."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    return np.arange(total, dtype=np.int64) + offsets
