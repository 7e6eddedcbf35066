"""The EDM bond rule and valence stability on hand-checked molecules."""

from __future__ import annotations

import numpy as np
import pytest
from chem_molecules import BENZENE_DFT, ETHANOL, GLYCINE_ZWITTERION, PYRROLE, WATER, kekule_benzene, molset_of

from moldiff.chem.bonds import (
    ALLOWED_VALENCES,
    DOUBLE_PM,
    SINGLE_PM,
    TRIPLE_PM,
    edm_bond_orders,
    molset_bonds,
    stability,
)


def _two_atoms(a: int, b: int, d: float) -> int:
    pos = np.array([[0.0, 0.0, 0.0], [d, 0.0, 0.0]])
    return int(edm_bond_orders(np.array([a, b]), pos)[0, 1])


@pytest.mark.parametrize(
    ("a", "b", "d_pm", "order"),
    [
        (6, 6, 163.9, 1), (6, 6, 164.1, 0),  # single 154 + 10
        (6, 6, 138.9, 2), (6, 6, 139.1, 1),  # double 134 + 5
        (6, 6, 122.9, 3), (6, 6, 123.1, 2),  # triple 120 + 3
        (6, 8, 124.9, 2), (8, 6, 125.1, 1),  # double 120 + 5, either order
        (6, 1, 118.9, 1), (1, 6, 119.1, 0),
        (1, 1, 83.9, 1), (7, 7, 112.9, 3),
        (9, 9, 100.0, 1),  # no double length for F-F: never above 1
        (5, 6, 100.0, 0),  # B-C has no reference length: never bonded
    ],
)  # fmt: skip
def test_thresholds_follow_the_tables(a, b, d_pm, order):
    assert _two_atoms(a, b, d_pm / 100.0) == order


def test_tables_hold_edm_reference_lengths():
    assert SINGLE_PM[("H", "C")] == 109 and SINGLE_PM[("C", "C")] == 154 and SINGLE_PM[("H", "H")] == 74
    assert DOUBLE_PM[("C", "O")] == 120 and DOUBLE_PM[("C", "S")] == 160
    assert TRIPLE_PM[("C", "N")] == 116
    assert ALLOWED_VALENCES["C"] == (4,) and ALLOWED_VALENCES["P"] == (3, 5) and ALLOWED_VALENCES["S"] == (4,)


def test_orders_are_symmetric_integers_with_zero_diagonal():
    z, pos = ETHANOL
    o = edm_bond_orders(z, pos)
    assert o.dtype.kind == "i" and (o == o.T).all() and (np.diag(o) == 0).all()


@pytest.mark.parametrize("mol", [WATER, ETHANOL], ids=["water", "ethanol"])
def test_simple_molecules_are_stable(mol):
    z, pos = mol
    mask, stable = stability(z, edm_bond_orders(z, pos))
    assert mask.all() and stable


def test_ethanol_valences():
    z, pos = ETHANOL
    assert edm_bond_orders(z, pos).sum(1).tolist() == [4, 4, 2, 1, 1, 1, 1, 1, 1]


def test_aromatic_ring_orders_give_carbon_valence_four():
    # Pyrrole (DFT geometry): the rule reads localised double bonds, so every ring carbon sums to 4
    # (an evaluator that took aromatic 1.5 and truncated it to 1 would give 3).
    z, pos = PYRROLE
    o = edm_bond_orders(z, pos)
    assert o.sum(1)[:5].tolist() == [3, 4, 4, 4, 4]
    assert sorted(o[np.triu_indices(5, 1)][o[np.triu_indices(5, 1)] > 0].tolist()) == [1, 1, 1, 2, 2]
    assert stability(z, o)[1]


def test_kekule_benzene_is_stable():
    z, pos = kekule_benzene()
    o = edm_bond_orders(z, pos)
    assert o.sum(1).tolist() == [4] * 6 + [1] * 6
    assert stability(z, o)[1]


def test_dft_benzene_is_unstable_under_the_protocol():
    # Real benzene has equal C-C bonds of 1.393 A, above the double-bond threshold (134 + 5 pm):
    # the EDM rule reads them all as single, so each carbon has valence 3. This is the protocol's
    # behaviour (part of why QM9 itself scores 95.2% molecule stability), not a defect to fix.
    z, pos = BENZENE_DFT
    mask, stable = stability(z, edm_bond_orders(z, pos))
    assert mask.tolist() == [False] * 6 + [True] * 6 and not stable


def test_carbon_with_three_bonds_is_unstable():
    # Planar methyl radical: C has valence 3, which neutral carbon may not have.
    z = np.array([6, 1, 1, 1])
    angles = np.deg2rad([0, 120, 240])
    pos = np.concatenate([[[0, 0, 0]], 1.09 * np.stack([np.cos(angles), np.sin(angles), 0 * angles], 1)])
    mask, stable = stability(z, edm_bond_orders(z, pos))
    assert mask.tolist() == [False, True, True, True] and not stable


def test_hydrogen_too_far_or_too_close():
    z, pos = ETHANOL
    far = pos.copy()
    far[8] += [0.0, -2.0, 0.0]  # hydroxyl H pulled 2 A away: O and H both lose their bond
    mask, stable = stability(z, edm_bond_orders(z, far))
    assert np.flatnonzero(~mask).tolist() == [2, 8] and not stable

    # Swing methyl H 4 towards H 3 (C-H kept at 1.09 A) until they are 0.8 A apart: an H-H bond
    # appears and both H get valence 2 (the carbon keeps 4).
    close = pos.copy()
    u = (pos[3] - pos[0]) / np.linalg.norm(pos[3] - pos[0])
    w = pos[4] - pos[0] - np.dot(pos[4] - pos[0], u) * u
    theta = 2 * np.arcsin(0.4 / 1.09)
    close[4] = pos[0] + 1.09 * (np.cos(theta) * u + np.sin(theta) * w / np.linalg.norm(w))
    o = edm_bond_orders(z, close)
    assert o[3, 4] == 1 and o.sum(1)[[0, 3, 4]].tolist() == [4, 2, 2]
    assert np.flatnonzero(~stability(z, o)[0]).tolist() == [3, 4]


def test_zwitterion_nitrogen_with_four_bonds_is_unstable():
    z, pos = GLYCINE_ZWITTERION
    o = edm_bond_orders(z, pos)
    mask, stable = stability(z, o)
    assert o.sum(1)[0] == 4 and not mask[0] and not stable


def test_molset_bonds_matches_per_molecule_rule():
    mols = [WATER, ETHANOL, PYRROLE, BENZENE_DFT, kekule_benzene(), ETHANOL]
    s = molset_of(*mols)
    valences, edges, orders = molset_bonds(s, max_pairs=50)  # tiny chunks exercise the chunking
    expected_edges, expected_orders = [], []
    for k, (z, pos) in enumerate(mols):
        o = edm_bond_orders(z, pos)
        assert valences[s.ptr[k] : s.ptr[k + 1]].tolist() == o.sum(1).tolist()
        i, j = np.nonzero(np.triu(o, 1))
        expected_edges += list(zip((i + s.ptr[k]).tolist(), (j + s.ptr[k]).tolist()))
        expected_orders += o[i, j].tolist()
    assert [tuple(e) for e in edges.tolist()] == expected_edges
    assert orders.tolist() == expected_orders


def test_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        edm_bond_orders(np.array([1, 1, 8]), np.zeros((2, 3)))
