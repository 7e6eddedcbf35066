"""Hand-checkable molecules (atomic numbers, positions in Å) for the chemistry tests.

Water, ethanol, pyrrole and benzene are QM9's own DFT geometries (GDB indices 3, 14, 50, 214);
glycine zwitterion and pyridine are MMFF-optimised RDKit conformers.
"""

from __future__ import annotations

import numpy as np

from moldiff.data.elements import ATOMIC_NUMBER
from moldiff.data.molset import MolSet


def _mol(rows):
    z = np.array([ATOMIC_NUMBER[s] for s, *_ in rows], dtype=np.int64)
    pos = np.array([xyz for _, *xyz in rows], dtype=np.float64)
    return z, pos


WATER = _mol([
    ("O", -0.0344, 0.9775, 0.0076),
    ("H", 0.0648, 0.0206, 0.0015),
    ("H", 0.8718, 1.3008, 0.0007),
])  # fmt: skip

ETHANOL = _mol([
    ("C", -0.0086, 1.5020, -0.0068),
    ("C", 0.0110, -0.0176, -0.0138),
    ("O", 0.6809, -0.4404, -1.1931),
    ("H", 1.0115, 1.8966, -0.0192),
    ("H", -0.5316, 1.8808, -0.8897),
    ("H", -0.5167, 1.8761, 0.8871),
    ("H", 0.5238, -0.3891, 0.8882),
    ("H", -1.0203, -0.4051, 0.0169),
    ("H", 0.6953, -1.4018, -1.2015),
])  # fmt: skip

PYRROLE = _mol([
    ("N", -0.0083, 1.3536, 0.0100),
    ("C", 1.2803, 1.8246, -0.0002),
    ("C", 2.1222, 0.7370, -0.0145),
    ("C", 1.3085, -0.4311, -0.0128),
    ("C", -0.0034, -0.0184, 0.0024),
    ("H", -0.8324, 1.9277, 0.0212),
    ("H", 1.4847, 2.8831, 0.0035),
    ("H", 3.2007, 0.7734, -0.0249),
    ("H", 1.6481, -1.4554, -0.0218),
    ("H", -0.9255, -0.5770, 0.0084),
])  # fmt: skip

BENZENE_DFT = _mol([
    ("C", -0.0264, 1.3835, 0.0104),
    ("C", 1.1708, 2.0966, 0.0023),
    ("C", 2.3869, 1.4164, -0.0131),
    ("C", 2.4057, 0.0231, -0.0205),
    ("C", 1.2086, -0.6900, -0.0124),
    ("C", -0.0075, -0.0098, 0.0030),
    ("H", -0.9733, 1.9132, 0.0224),
    ("H", 1.1560, 3.1816, 0.0080),
    ("H", 3.3191, 1.9717, -0.0195),
    ("H", 3.3527, -0.5066, -0.0325),
    ("H", 1.2233, -1.7750, -0.0181),
    ("H", -0.9398, -0.5651, 0.0093),
])  # fmt: skip

GLYCINE_ZWITTERION = _mol([
    ("N", -1.1359, 0.1286, -0.0190),
    ("C", 0.1805, -0.5909, -0.2204),
    ("C", 1.3368, 0.3396, 0.2146),
    ("O", 0.8525, 1.4487, 0.6197),
    ("O", 2.4989, -0.1011, 0.1126),
    ("H", -1.7218, -0.2810, 0.7072),
    ("H", -1.6239, 0.3443, -0.8872),
    ("H", -0.7810, 1.0463, 0.3626),
    ("H", 0.2481, -0.8395, -1.2823),
    ("H", 0.1459, -1.4951, 0.3922),
])  # fmt: skip
GLYCINE_CHARGES = np.array([1, 0, 0, -1, 0, 0, 0, 0, 0, 0])  # O 3 is the one the rule single-bonds

PYRIDINE = _mol([
    ("C", -0.3899, 1.1176, 0.0206),
    ("C", -1.2807, 0.0660, -0.1676),
    ("C", -0.7769, -1.2249, -0.1843),
    ("N", 0.5314, -1.5230, -0.0281),
    ("C", 1.3722, -0.4813, 0.1528),
    ("C", 0.9637, 0.8426, 0.1844),
    ("H", -0.7476, 2.1430, 0.0396),
    ("H", -2.3415, 0.2470, -0.2982),
    ("H", -1.4319, -2.0793, -0.3280),
    ("H", 2.4181, -0.7473, 0.2758),
    ("H", 1.6833, 1.6395, 0.3330),
])  # fmt: skip


def kekule_benzene(double: float = 1.35, single: float = 1.45, ch: float = 1.08):
    """Benzene with alternating bond lengths (an equiangular hexagon), hydrogens pointing out."""
    ring = [np.zeros(3)]
    for k in range(5):
        step = double if k % 2 == 0 else single
        angle = np.deg2rad(60.0 * k)
        ring.append(ring[-1] + step * np.array([np.cos(angle), np.sin(angle), 0.0]))
    ring = np.array(ring)
    out = ring - ring.mean(axis=0)
    hydrogens = out + ch * out / np.linalg.norm(out, axis=1, keepdims=True)
    return np.array([6] * 6 + [1] * 6), np.concatenate([ring, hydrogens + ring.mean(axis=0)])


def molset_of(*molecules, charges=None) -> MolSet:
    """Pack (z, pos) pairs into a MolSet."""
    counts = [len(z) for z, _ in molecules]
    return MolSet(
        atomic_numbers=np.concatenate([z for z, _ in molecules]),
        positions=np.concatenate([p for _, p in molecules]),
        ptr=np.concatenate([[0], np.cumsum(counts)]),
        charges=charges,
    )
