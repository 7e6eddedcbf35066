"""A training (or any reference) set of molecules, as scoring compares against it: novelty,
nearest-neighbour similarity, FCD and the descriptor distributions of the report.

SMILES are put in the one form every command compares in
(:func:`moldiff.chem.rdmol.canonical_form`). Canonicalising a large set takes a while
(about 20 s for QM9's 100,000), so the result is cached in ``$MOLDIFF_HOME/reference/`` keyed by a
hash of the input.

Nearest neighbours are searched in a fixed random sample of at most ``max_neighbours`` unique
reference molecules (default 20,000): an exhaustive search of 10,000 molecules against 100,000 is
10⁹ Tanimoto comparisons (about a minute). Novelty always uses the whole set.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from moldiff.chem.rdmol import SMILES_FORM, canonicalize_smiles
from moldiff.paths import atomic_write_text, moldiff_home

MAX_NEIGHBOURS = 20_000
SAMPLE_SEED = 0
_FORM = SMILES_FORM


@dataclass
class ReferenceSet:
    """Canonical SMILES of a reference set and a fixed sample of them for similarity searches.

    Attributes:
        name: what the set is (shown in reports), e.g. ``"QM9 train"``.
        smiles: every unique canonical SMILES (novelty).
        sample: at most ``max_neighbours`` of them, a seeded random choice, in a fixed order
            (nearest neighbours, FCD statistics, descriptor distributions).
    """

    name: str
    smiles: frozenset[str]
    sample: list[str]
    _fingerprints: list | None = field(default=None, repr=False)

    @classmethod
    def from_smiles(cls, smiles: Sequence[str], name: str, *, max_neighbours: int = MAX_NEIGHBOURS,
                    cache: bool = True) -> ReferenceSet:  # fmt: skip
        """Canonicalise ``smiles`` (unparsable ones are dropped) and draw the neighbour sample."""
        unique = sorted(_canonical_cached(list(smiles)) if cache else _canonical(list(smiles)))
        rng = np.random.default_rng(SAMPLE_SEED)
        picked = rng.permutation(len(unique))[:max_neighbours] if len(unique) > max_neighbours else range(len(unique))
        return cls(name=name, smiles=frozenset(unique), sample=[unique[i] for i in picked])

    def __len__(self) -> int:
        return len(self.smiles)

    def fingerprints(self) -> list:
        """Morgan fingerprints of :attr:`sample` (computed once)."""
        if self._fingerprints is None:
            from moldiff.chem.similarity import morgan_from_smiles

            self._fingerprints = morgan_from_smiles(self.sample)
        return self._fingerprints


def _canonical(smiles: list[str]) -> set[str]:
    return {c for c in (canonicalize_smiles(s) for s in smiles) if c is not None}


def _canonical_cached(smiles: list[str]) -> set[str]:
    digest = hashlib.sha256(("\n".join(smiles) + _FORM).encode()).hexdigest()[:20]
    path = moldiff_home() / "reference" / f"{digest}.txt"
    if path.exists():
        return set(path.read_text().splitlines()[1:])
    out = _canonical(smiles)
    atomic_write_text(path, "\n".join([f"# {_FORM}", *sorted(out)]) + "\n")
    return out
