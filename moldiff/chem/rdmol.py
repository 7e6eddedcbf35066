"""RDKit molecules from atoms and bonds: building, sanitizing, canonical SMILES, xyz2mol.

The SMILES of a molecule follows the EDM protocol: build the molecule from the inferred bonds with
neutral atoms (RDKit may add implicit hydrogens where an atom has fewer bonds than its default
valence, as in EDM's code), sanitize it, keep the largest fragment and write its canonical SMILES.

Every command compares molecules (uniqueness, novelty) in one SMILES form, :func:`canonical_form`:
the largest fragment, no stereochemistry, hydrogens folded into their atoms, RDKit canonical, written
once more after reading it back. A molecule built from coordinates and a SMILES string read from a
user's reference file therefore give the same text.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence

import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem import rdDetermineBonds
from rdkit.Geometry import Point3D

BOND_TYPES = {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE}
_ORDER_OF = {Chem.BondType.SINGLE: 1, Chem.BondType.DOUBLE: 2, Chem.BondType.TRIPLE: 3}


@contextlib.contextmanager
def rdkit_quiet() -> Iterator[None]:
    """Silence RDKit's log output (warnings and errors) inside the block."""
    blocker = rdBase.BlockLogs()
    try:
        yield
    finally:
        del blocker


@contextlib.contextmanager
def rdkit_errors() -> Iterator[list[str]]:
    """Capture RDKit's error messages inside the block instead of printing them.

    Yields a list that, after the block, holds the messages as clean one-line strings.
    """
    messages: list[str] = []
    with rdkit_quiet(), rdBase.CaptureErrorLog() as capture:
        yield messages
    messages.extend(_clean_log(capture.messages))


def _clean_log(text: str) -> list[str]:
    """RDKit log text -> messages: the ``ERROR:`` lines if any, else every plain line (timestamps,
    invariant banners and stack traces dropped)."""
    lines = [re.sub(r"^\[\d\d:\d\d:\d\d\]\s*", "", line).strip() for line in text.splitlines()]
    errors = [line[6:].strip() for line in lines if line.startswith("ERROR:")]
    errors = [e for e in errors if not e.startswith("moving to the beginning")]
    if errors:
        return errors
    return [line for line in lines if line and not line.startswith(("*", "-", "Violation", "Failed", "Stacktrace"))
            and not line[0].isdigit()]  # fmt: skip


def mol_from_edges(
    atomic_numbers: Sequence[int],
    edges: Sequence[tuple[int, int]],
    orders: Sequence[int],
    positions: np.ndarray | None = None,
    charges: Sequence[int] | None = None,
) -> Chem.Mol:
    """An unsanitized RDKit molecule with every atom explicit (hydrogens included).

    Args:
        atomic_numbers: (n,) ints.
        edges: (E, 2) atom indices of each bond (local to the molecule).
        orders: (E,) bond orders in {1, 2, 3}.
        positions: optional (n, 3) Å, stored as a 3D conformer.
        charges: optional (n,) formal charges (the EDM protocol uses none).
    """
    mol = Chem.RWMol()
    for z in atomic_numbers:
        mol.AddAtom(Chem.Atom(int(z)))
    if charges is not None:
        for atom, q in zip(mol.GetAtoms(), charges):
            atom.SetFormalCharge(int(q))
    for (i, j), order in zip(edges, orders):
        mol.AddBond(int(i), int(j), BOND_TYPES[int(order)])
    if positions is not None:
        pos = np.asarray(positions, dtype=np.float64)
        if pos.shape != (len(atomic_numbers), 3):
            raise ValueError(f"positions must be ({len(atomic_numbers)}, 3), got {pos.shape}")
        conf = Chem.Conformer(len(atomic_numbers))
        for k, (x, y, z) in enumerate(pos.tolist()):
            conf.SetAtomPosition(k, Point3D(x, y, z))
        conf.Set3D(True)
        mol.AddConformer(conf, assignId=True)
    return mol.GetMol()


def mol_from_orders(
    atomic_numbers: Sequence[int],
    orders: np.ndarray,
    positions: np.ndarray | None = None,
    charges: Sequence[int] | None = None,
) -> Chem.Mol:
    """An unsanitized RDKit molecule from an (n, n) bond-order matrix (see :func:`mol_from_edges`)."""
    orders = np.asarray(orders)
    if orders.shape != (len(atomic_numbers), len(atomic_numbers)):
        raise ValueError(f"orders must be ({len(atomic_numbers)}, {len(atomic_numbers)}), got {orders.shape}")
    i, j = np.nonzero(np.triu(orders, k=1))
    return mol_from_edges(atomic_numbers, zip(i.tolist(), j.tolist()), orders[i, j].tolist(), positions, charges)


SMILES_FORM = "largest fragment (atoms with their hydrogens; ties by SMILES), no stereo, RDKit canonical, read back; v2"
"""What :func:`canonical_form` writes (caches of reference SMILES record it, so a change recomputes them)."""


def _fragment_size(frag: Chem.Mol) -> int:
    """Atoms of a fragment, hydrogens counted whether explicit or implicit (so a molecule with
    explicit hydrogens and its SMILES agree on which fragment is largest)."""
    try:
        return frag.GetNumAtoms() + sum(a.GetTotalNumHs() for a in frag.GetAtoms())
    except RuntimeError:  # unsanitized: implicit hydrogens unknown
        return frag.GetNumAtoms()


def largest_fragment(mol: Chem.Mol) -> Chem.Mol:
    """The fragment with the most atoms, hydrogens included; among equal ones the one whose
    canonical SMILES sorts first, so the choice does not depend on atom order. ``mol`` itself if
    connected."""
    frags = Chem.GetMolFrags(mol, asMols=True, sanitizeFrags=False)
    if len(frags) <= 1:
        return mol
    sizes = [_fragment_size(f) for f in frags]
    tied = [f for f, n in zip(frags, sizes) if n == max(sizes)]
    return tied[0] if len(tied) == 1 else min(tied, key=Chem.MolToSmiles)


def canonical_form(mol: Chem.Mol) -> str:
    """The SMILES by which every command compares molecules (uniqueness, novelty).

    Args:
        mol: a sanitized molecule, hydrogens explicit or implicit.

    Returns:
        The largest fragment's canonical SMILES without stereochemistry, hydrogens implicit, read
        back and written again (RDKit's writer is not always idempotent, and a reference SMILES
        passes through the reader). A SMILES that RDKit cannot read back is returned as written.
    """
    with rdkit_quiet():
        mol = Chem.RemoveHs(mol, sanitize=False)
        Chem.RemoveStereochemistry(mol)
        smiles = Chem.MolToSmiles(largest_fragment(mol))
        again = Chem.MolFromSmiles(smiles)
        return smiles if again is None else Chem.MolToSmiles(again)


def canonical_smiles(mol: Chem.Mol) -> tuple[str | None, str]:
    """Sanitize a copy of ``mol``; its :func:`canonical_form`.

    Returns:
        (smiles, "") on success, or (None, reason) where reason is RDKit's one-line complaint.
    """
    if mol.GetNumAtoms() == 0:
        return None, "no atoms"
    mol = Chem.Mol(mol)
    try:
        with rdkit_quiet():
            Chem.SanitizeMol(mol)
            return canonical_form(mol), ""
    except Exception as exc:  # RDKit raises several types (AtomValenceException, KekulizeException...)
        return None, _one_line(exc)


def smiles_from_edges(
    atomic_numbers: Sequence[int],
    edges: Sequence[tuple[int, int]],
    orders: Sequence[int],
    charges: Sequence[int] | None = None,
) -> tuple[str | None, str]:
    """EDM validity of one molecule: (largest-fragment canonical SMILES or None, failure reason)."""
    return canonical_smiles(mol_from_edges(atomic_numbers, edges, orders, charges=charges))


def canonicalize_smiles(smiles: str) -> str | None:
    """A SMILES string in :func:`canonical_form`; None if RDKit cannot parse it."""
    with rdkit_quiet():
        mol = Chem.MolFromSmiles(smiles)
    return None if mol is None else canonical_form(mol)


def determine_bonds(
    atomic_numbers: Sequence[int], positions: np.ndarray, charge: int = 0
) -> tuple[Chem.Mol | None, str]:
    """Connectivity and bond orders by RDKit's xyz2mol (for drug-like sets; needs explicit H).

    Args:
        atomic_numbers: (n,) ints.
        positions: (n, 3) Å.
        charge: the molecule's total charge.

    Returns:
        (sanitized molecule with a 3D conformer, "") or (None, reason).
    """
    if not np.isfinite(positions).all():  # a diverged sample: xyz2mol would read loose atoms
        return None, "non-finite coordinates"
    mol = mol_from_edges(atomic_numbers, [], [], positions)
    try:
        with rdkit_quiet():
            rdDetermineBonds.DetermineBonds(mol, charge=int(charge))
            Chem.SanitizeMol(mol)
    except Exception as exc:
        return None, f"xyz2mol failed: {_one_line(exc)}"
    return mol, ""


def kekule_orders(mol: Chem.Mol) -> np.ndarray:
    """(n, n) integer bond orders of an RDKit molecule, aromatic bonds kekulized.

    Aromatic bonds become alternating 1 and 2 (never 1.5 truncated to 1), so an aromatic carbon
    keeps valence 4. Raises ``ValueError`` if the molecule cannot be kekulized.
    """
    mol = Chem.Mol(mol)
    try:
        with rdkit_quiet():
            Chem.Kekulize(mol, clearAromaticFlags=True)
    except Exception as exc:
        raise ValueError(f"cannot kekulize: {_one_line(exc)}") from None
    n = mol.GetNumAtoms()
    out = np.zeros((n, n), dtype=np.int64)
    for bond in mol.GetBonds():
        order = _ORDER_OF.get(bond.GetBondType())
        if order is None:
            raise ValueError(f"bond {bond.GetIdx()} has unsupported type {bond.GetBondType()}")
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        out[i, j] = out[j, i] = order
    return out


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
