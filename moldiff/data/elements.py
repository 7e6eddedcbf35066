"""Element symbols, atomic numbers and masses, and the atom-type vocabularies models use."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moldiff.errors import MoldiffError

SYMBOLS = (
    "X", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S",
    "Cl", "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge",
    "As", "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd",
    "In", "Sn", "Sb", "Te", "I",
)  # fmt: skip
# Covalent radii in Å by atomic number (RDKit's periodic table; index 0, the dummy atom, is 0). Kept
# here so that training, which uses them for random known fragments, does not need RDKit.
COVALENT_RADII = (
    0.0, 0.31, 0.28, 1.28, 0.96, 0.84, 0.76, 0.71, 0.66, 0.57, 0.58, 1.66, 1.41, 1.21, 1.11, 1.07,
    1.05, 1.02, 1.06, 2.03, 1.76, 1.7, 1.6, 1.52, 1.39, 1.39, 1.32, 1.26, 1.24, 1.32, 1.22, 1.22,
    1.2, 1.19, 1.2, 1.2, 1.16, 2.2, 1.95, 1.9, 1.75, 1.64, 1.54, 1.47, 1.46, 1.42, 1.39, 1.45,
    1.44, 1.42, 1.39, 1.39, 1.38, 1.39,
)  # fmt: skip
ATOMIC_NUMBER = {s: z for z, s in enumerate(SYMBOLS) if z > 0}
_CASEFOLD = {s.lower(): z for s, z in ATOMIC_NUMBER.items()}


def atomic_number(symbol: str) -> int:
    """Atomic number of an element symbol (case-insensitive); raises MoldiffError if unknown."""
    z = _CASEFOLD.get(str(symbol).strip().lower())
    if z is None:
        raise MoldiffError(f"unknown element {symbol!r}")
    return z


def symbol(z: int) -> str:
    if not 0 < int(z) < len(SYMBOLS):
        raise MoldiffError(f"unknown atomic number {z}")
    return SYMBOLS[int(z)]


@dataclass(frozen=True)
class AtomVocabulary:
    """The ordered element list a model represents; atom type ``i`` is ``symbols[i]``."""

    symbols: tuple[str, ...]

    def __post_init__(self) -> None:
        for s in self.symbols:
            atomic_number(s)  # validates
        if len(set(self.symbols)) != len(self.symbols):
            raise MoldiffError(f"duplicate element in vocabulary {self.symbols}")

    def __len__(self) -> int:
        return len(self.symbols)

    @property
    def atomic_numbers(self) -> np.ndarray:
        return np.array([ATOMIC_NUMBER[s] for s in self.symbols], dtype=np.int64)

    def encode(self, atomic_numbers: np.ndarray) -> np.ndarray:
        """Atomic numbers (N,) -> type indices (N,); raises MoldiffError on an element outside it."""
        lookup = np.full(len(SYMBOLS), -1, dtype=np.int64)
        lookup[self.atomic_numbers] = np.arange(len(self.symbols))
        z = np.asarray(atomic_numbers, dtype=np.int64)
        types = lookup[np.clip(z, 0, len(SYMBOLS) - 1)]
        if (types < 0).any() or (z >= len(SYMBOLS)).any():
            bad = sorted({int(v) for v in z[(types < 0) | (z >= len(SYMBOLS))]})
            raise MoldiffError(f"atomic numbers {bad} are not in the vocabulary {self.symbols}")
        return types

    def decode(self, types: np.ndarray) -> np.ndarray:
        """Type indices (N,) -> atomic numbers (N,)."""
        return self.atomic_numbers[np.asarray(types, dtype=np.int64)]

    def contains(self, z: int) -> bool:
        return SYMBOLS[z] in self.symbols if 0 < z < len(SYMBOLS) else False


QM9_ELEMENTS = AtomVocabulary(("H", "C", "N", "O", "F"))
