"""MolSet carries an optional bond graph through subsets, concatenation, files and H removal."""

import numpy as np
import pytest

from moldiff.data.molset import MolSet


def methanol_and_hcn() -> MolSet:
    # CH3OH: C0 O1 H2 H3 H4 H5 (H5 on O); HCN: H0 C1 N2
    z = [6, 8, 1, 1, 1, 1, 1, 6, 7]
    bonds = [(0, 1, 1), (0, 2, 1), (0, 3, 1), (0, 4, 1), (1, 5, 1), (0, 1, 1), (1, 2, 3)]
    return MolSet(z, np.zeros((9, 3)), [0, 6, 9], bonds=bonds, bond_ptr=[0, 5, 7])


def test_subset_and_concat_keep_each_molecules_bonds():
    mols = methanol_and_hcn()
    swapped = mols.subset([1, 0])
    assert swapped.molecule_bonds(0).tolist() == [[0, 1, 1], [1, 2, 3]]
    assert swapped.molecule_bonds(1).tolist() == mols.molecule_bonds(0).tolist()
    both = MolSet.concat([mols, swapped])
    assert both.bond_ptr.tolist() == [0, 5, 7, 9, 14]
    assert both.molecule_bonds(3).tolist() == mols.molecule_bonds(0).tolist()


def test_bonds_survive_a_file_round_trip(tmp_path):
    mols = methanol_and_hcn()
    mols.save(tmp_path / "m.npz")
    again = MolSet.load(tmp_path / "m.npz")
    assert again.bonds.tolist() == mols.bonds.tolist() and again.bond_ptr.tolist() == mols.bond_ptr.tolist()


def test_removing_hydrogens_drops_their_bonds_and_renumbers_the_rest():
    heavy = methanol_and_hcn().without_hydrogens()
    assert heavy.n_atoms.tolist() == [2, 2]
    assert heavy.molecule_bonds(0).tolist() == [[0, 1, 1]]
    assert heavy.molecule_bonds(1).tolist() == [[0, 1, 3]]


@pytest.mark.parametrize("bonds, ptr", [([(1, 0, 1)], [0, 1]), ([(0, 5, 1)], [0, 1]), ([(0, 1, 4)], [0, 1]),
                                        ([(0, 1, 1)], [0, 2])])  # fmt: skip
def test_malformed_bonds_are_refused(bonds, ptr):
    with pytest.raises(ValueError):
        MolSet([6, 8], np.zeros((2, 3)), [0, 2], bonds=bonds, bond_ptr=ptr)
