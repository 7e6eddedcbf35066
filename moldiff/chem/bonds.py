"""The EDM bond rule: bond orders from interatomic distances, and valence-based atom stability.

Hoogeboom et al. (2022) infer bonds from reference bond lengths (pm; the tables their code cites are
wiredchemist.com and chemistry-reference.com). For a pair of atoms at distance ``d``:

    order = 0  if d >= single + 10
            1  if d <  single + 10
            2  if also d < double + 5   (only where a double length exists for the pair)
            3  if also d < triple + 3   (only where a triple length exists for the pair)

An atom is stable when the sum of its bond orders is one of its element's allowed valences; a
molecule is stable when all its atoms are. Orders are integers by construction, so the known defect
of other evaluators (an aromatic order 1.5 cast to 1, leaving aromatic carbon with valence 3) cannot
occur here, and neutral carbon only ever accepts valence 4.

Pure numpy (no RDKit). Pairs without a single-bond length in the table are never bonded; elements
without an allowed valence are never stable.
"""

from __future__ import annotations

import numpy as np

from moldiff.data.elements import ATOMIC_NUMBER, SYMBOLS
from moldiff.data.molset import MolSet

MARGINS_PM = (10.0, 5.0, 3.0)  # single, double, triple (EDM's margin1, margin2, margin3)

# Reference lengths in pm, each unordered pair once (the numbers EDM's bond_analyze.py uses).
SINGLE_PM = {
    ("H", "H"): 74, ("H", "C"): 109, ("H", "N"): 101, ("H", "O"): 96, ("H", "F"): 92,
    ("H", "B"): 119, ("H", "Si"): 148, ("H", "P"): 144, ("H", "As"): 152, ("H", "S"): 134,
    ("H", "Cl"): 127, ("H", "Br"): 141, ("H", "I"): 161,
    ("C", "C"): 154, ("C", "N"): 147, ("C", "O"): 143, ("C", "F"): 135, ("C", "Si"): 185,
    ("C", "P"): 184, ("C", "S"): 182, ("C", "Cl"): 177, ("C", "Br"): 194, ("C", "I"): 214,
    ("N", "N"): 145, ("N", "O"): 140, ("N", "F"): 136, ("N", "Cl"): 175, ("N", "Br"): 214,
    ("N", "S"): 168, ("N", "I"): 222, ("N", "P"): 177,
    ("O", "O"): 148, ("O", "F"): 142, ("O", "Br"): 172, ("O", "S"): 151, ("O", "P"): 163,
    ("O", "Si"): 163, ("O", "Cl"): 164, ("O", "I"): 194,
    ("F", "F"): 142, ("F", "S"): 158, ("F", "Si"): 160, ("F", "Cl"): 166, ("F", "Br"): 178,
    ("F", "P"): 156, ("F", "I"): 187,
    ("B", "Cl"): 175,
    ("Si", "Si"): 233, ("Si", "S"): 200, ("Si", "Cl"): 202, ("Si", "Br"): 215, ("Si", "I"): 243,
    ("Cl", "Cl"): 199, ("Cl", "P"): 203, ("Cl", "S"): 207, ("Cl", "Br"): 214,
    ("S", "S"): 204, ("S", "Br"): 225, ("S", "P"): 210, ("S", "I"): 234,
    ("Br", "Br"): 228, ("Br", "P"): 222,
    ("P", "P"): 221,
    ("I", "I"): 266,
}  # fmt: skip

DOUBLE_PM = {
    ("C", "C"): 134, ("C", "N"): 129, ("C", "O"): 120, ("C", "S"): 160,
    ("N", "N"): 125, ("N", "O"): 121,
    ("O", "O"): 121, ("O", "P"): 150,
    ("P", "S"): 186,
}  # fmt: skip
# EDM's own dictionary lists C=S only under C, so its lookup is order-dependent for that pair;
# here every table is symmetric.

TRIPLE_PM = {("C", "C"): 120, ("C", "N"): 116, ("C", "O"): 113, ("N", "N"): 110}

ALLOWED_VALENCES = {
    "H": (1,), "C": (4,), "N": (3,), "O": (2,), "F": (1,),
    "B": (3,), "Al": (3,), "Si": (4,), "P": (3, 5), "S": (4,), "As": (3,),
    "Cl": (1,), "Br": (1,), "I": (1,),
}  # fmt: skip

_NZ = len(SYMBOLS)
_MAX_VALENCE = 16  # valences above this are clipped (never allowed)


def _threshold_table(lengths: dict[tuple[str, str], float], margin: float) -> np.ndarray:
    """(Z, Z) table of ``length + margin`` in pm, ``-inf`` where the pair has no length."""
    table = np.full((_NZ, _NZ), -np.inf)
    for (a, b), length in lengths.items():
        za, zb = ATOMIC_NUMBER[a], ATOMIC_NUMBER[b]
        table[za, zb] = table[zb, za] = length + margin
    return table


THRESHOLDS_PM = np.stack(
    [_threshold_table(t, m) for t, m in zip((SINGLE_PM, DOUBLE_PM, TRIPLE_PM), MARGINS_PM)]
)
"""(3, Z, Z): distance below which a pair reaches order 1, 2, 3 (pm)."""

ALLOWED = np.zeros((_NZ, _MAX_VALENCE + 1), dtype=bool)
"""(Z, 17): ``ALLOWED[z, v]`` is True when valence ``v`` is allowed for element ``z``."""
for _sym, _vals in ALLOWED_VALENCES.items():
    ALLOWED[ATOMIC_NUMBER[_sym], list(_vals)] = True


def _check_z(atomic_numbers: np.ndarray) -> np.ndarray:
    z = np.asarray(atomic_numbers, dtype=np.int64)
    if z.size and (z.min() < 1 or z.max() >= _NZ):
        raise ValueError(f"atomic numbers must lie in 1..{_NZ - 1}, got {z.min()}..{z.max()}")
    return z


def edm_bond_orders_padded(atomic_numbers: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Bond orders of ``m`` molecules with the same number of atoms ``n``.

    Args:
        atomic_numbers: (m, n) int.
        positions: (m, n, 3) float, Å.

    Returns:
        (m, n, n) int8 symmetric matrices with zero diagonal, entries in {0, 1, 2, 3}.
    """
    z = _check_z(atomic_numbers)
    pos = np.asarray(positions, dtype=np.float64)
    if z.ndim != 2 or pos.shape != (*z.shape, 3):
        raise ValueError(f"need atomic_numbers (m, n) and positions (m, n, 3), got {z.shape}, {pos.shape}")
    diff = pos[:, :, None, :] - pos[:, None, :, :]
    d_pm = 100.0 * np.sqrt(np.einsum("mijk,mijk->mij", diff, diff))
    zi, zj = z[:, :, None], z[:, None, :]
    b1 = d_pm < THRESHOLDS_PM[0][zi, zj]
    b2 = b1 & (d_pm < THRESHOLDS_PM[1][zi, zj])
    b3 = b2 & (d_pm < THRESHOLDS_PM[2][zi, zj])
    orders = b1.astype(np.int8) + b2 + b3
    n = z.shape[1]
    orders[:, np.arange(n), np.arange(n)] = 0
    return orders


def edm_bond_orders(atomic_numbers: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Bond-order matrix of one molecule by the EDM rule.

    Args:
        atomic_numbers: (n,) int.
        positions: (n, 3) float, Å.

    Returns:
        (n, n) int matrix, symmetric, zero diagonal, entries in {0, 1, 2, 3}.
    """
    z = np.asarray(atomic_numbers)
    pos = np.asarray(positions)
    if z.ndim != 1 or pos.shape != (len(z), 3):
        raise ValueError(f"need atomic_numbers (n,) and positions (n, 3), got {z.shape}, {pos.shape}")
    return edm_bond_orders_padded(z[None], pos[None])[0].astype(np.int64)


def atom_stable(atomic_numbers: np.ndarray, valences: np.ndarray) -> np.ndarray:
    """(N,) bool: the bond-order sum of each atom is an allowed valence of its element."""
    z = _check_z(atomic_numbers)
    v = np.clip(np.asarray(valences, dtype=np.int64), 0, _MAX_VALENCE)
    return ALLOWED[z, v]


def stability(atomic_numbers: np.ndarray, orders: np.ndarray) -> tuple[np.ndarray, bool]:
    """Atom and molecule stability of one molecule.

    Args:
        atomic_numbers: (n,) int.
        orders: (n, n) int bond-order matrix (e.g. from :func:`edm_bond_orders`).

    Returns:
        (stable_atom_mask (n,) bool, mol_stable): the molecule is stable when every atom is (a
        molecule without atoms is not).
    """
    orders = np.asarray(orders)
    if orders.shape != (len(atomic_numbers), len(atomic_numbers)):
        raise ValueError(f"orders must be ({len(atomic_numbers)}, {len(atomic_numbers)}), got {orders.shape}")
    mask = atom_stable(atomic_numbers, orders.sum(axis=1))
    return mask, bool(len(mask) > 0 and mask.all())


def molset_bonds(molset: MolSet, max_pairs: int = 4_000_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """EDM bonds of every molecule of a set, computed per group of equal atom count.

    Args:
        molset: M molecules, N atoms in all.
        max_pairs: upper bound on atom pairs held in memory at once (chunks large groups).

    Returns:
        ``valences`` (N,) int: bond-order sum per atom;
        ``edges`` (E, 2) int64: global atom indices ``i < j`` of each bond, sorted by molecule;
        ``orders`` (E,) int8: order of each bond.
    """
    n_atoms = molset.n_atoms
    valences = np.zeros(len(molset.atomic_numbers), dtype=np.int64)
    edge_parts: list[np.ndarray] = []
    order_parts: list[np.ndarray] = []
    for n in np.unique(n_atoms):
        if n < 2:
            continue
        mols = np.flatnonzero(n_atoms == n)
        step = max(1, max_pairs // int(n * n))
        for lo in range(0, len(mols), step):
            chunk = mols[lo : lo + step]
            atom_idx = molset.ptr[chunk][:, None] + np.arange(n)  # (m, n)
            orders = edm_bond_orders_padded(molset.atomic_numbers[atom_idx], molset.positions[atom_idx])
            valences[atom_idx] = orders.sum(axis=2)
            m_i, a_i, a_j = np.nonzero(np.triu(orders, k=1))
            edge_parts.append(np.stack([atom_idx[m_i, a_i], atom_idx[m_i, a_j]], axis=1))
            order_parts.append(orders[m_i, a_i, a_j])
    if not edge_parts:
        return valences, np.zeros((0, 2), np.int64), np.zeros(0, np.int8)
    edges, orders = np.concatenate(edge_parts), np.concatenate(order_parts)
    sort = np.argsort(edges[:, 0], kind="stable")  # atoms are stored molecule by molecule
    return valences, edges[sort], orders[sort]
