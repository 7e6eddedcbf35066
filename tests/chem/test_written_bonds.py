"""An SDF carries a set's own bonds when it has them (a graph model's) and says where its bonds came from."""

from __future__ import annotations

import numpy as np
from chem_molecules import ETHANOL, WATER, molset_of
from rdkit import Chem

from moldiff.chem.bonds import molset_bonds
from moldiff.chem.io import EDM_BOND_SOURCE, write_sdf


def _written(path):
    return list(Chem.SDMolSupplier(str(path), sanitize=False, removeHs=False))


def test_a_set_without_bonds_gets_the_edm_rules_bonds_and_says_so(tmp_path):
    s = molset_of(WATER, ETHANOL)
    write_sdf(tmp_path / "m.sdf", s)
    assert [m.GetProp("bond_source") for m in _written(tmp_path / "m.sdf")] == [EDM_BOND_SOURCE] * 2
    written = [(start + b.GetBeginAtomIdx(), start + b.GetEndAtomIdx(), b.GetBondTypeAsDouble())
               for m, start in zip(_written(tmp_path / "m.sdf"), s.ptr) for b in m.GetBonds()]  # fmt: skip
    _, edges, orders = molset_bonds(s)
    assert sorted(written) == sorted(zip(edges[:, 0], edges[:, 1], orders.astype(float)))
    assert len(written) == 2 + 8


def test_a_set_with_its_own_bonds_writes_them_not_the_edm_rules(tmp_path):
    s = molset_of(WATER, ETHANOL)
    # bonds no distance rule would give: O-H single in water, one C=O double and nothing else in ethanol
    s.bonds, s.bond_ptr = np.array([[0, 1, 1], [1, 2, 2]]), np.array([0, 1, 2])
    write_sdf(tmp_path / "m.sdf", s)
    mols = _written(tmp_path / "m.sdf")
    assert [m.GetProp("bond_source") for m in mols] == ["model", "model"]
    assert [m.GetNumBonds() for m in mols] == [1, 1]
    bond = mols[1].GetBondWithIdx(0)
    assert (bond.GetBeginAtomIdx(), bond.GetEndAtomIdx(), bond.GetBondTypeAsDouble()) == (1, 2, 2.0)
    write_sdf(tmp_path / "n.sdf", s, bond_source="file")
    assert {m.GetProp("bond_source") for m in _written(tmp_path / "n.sdf")} == {"file"}


def test_atoms_only_files_name_no_bond_source(tmp_path):
    write_sdf(tmp_path / "m.sdf", molset_of(ETHANOL), bonds=False)
    assert not _written(tmp_path / "m.sdf")[0].HasProp("bond_source")
