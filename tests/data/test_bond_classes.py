"""Bond graphs as classes of every unordered atom pair, in the pair order the diffused state uses."""

import numpy as np
import torch

from moldiff.data.batch import bond_classes, bonds_from_classes, collate
from moldiff.data.elements import AtomVocabulary
from moldiff.data.molset import MolSet
from moldiff.diffusion.state import MolGraph


def two_molecules() -> MolSet:
    # formaldehyde C0 O1 H2 H3 (C=O double), then HCN H0 C1 N2 (C#N triple)
    bonds = [(0, 1, 2), (0, 2, 1), (0, 3, 1), (0, 1, 1), (1, 2, 3)]
    return MolSet([6, 8, 1, 1, 1, 6, 7], np.random.default_rng(0).normal(size=(7, 3)), [0, 4, 7],
                  bonds=bonds, bond_ptr=[0, 3, 5])  # fmt: skip


def test_each_bond_lands_on_the_row_of_its_pair_in_the_states_pair_order():
    mols = two_molecules()
    classes = bond_classes(mols)
    graph = MolGraph.from_counts(torch.tensor([4, 3])).with_pairs()
    assert classes.shape == (graph.pairs.shape[0],) == (9,)
    for (i, j), cls in zip(graph.pairs.tolist(), classes.tolist()):
        m = 0 if i < 4 else 1
        local = {(a, b): o for a, b, o in mols.molecule_bonds(m).tolist()}
        start = 0 if m == 0 else 4
        assert cls == local.get((i - start, j - start), 0)


def test_classes_turn_back_into_the_same_bonds():
    mols = two_molecules()
    bonds, bond_ptr = bonds_from_classes(bond_classes(mols), mols.n_atoms)
    assert bonds.tolist() == mols.bonds.tolist() and bond_ptr.tolist() == mols.bond_ptr.tolist()


def test_a_batch_of_molecules_with_bonds_carries_their_classes():
    vocab = AtomVocabulary(("H", "C", "N", "O"))
    batch = collate(two_molecules(), [1, 0], vocab)
    assert batch.bond_class.tolist() == [1, 0, 3] + [2, 1, 1, 0, 0, 0]  # HCN first, then H2C=O
    assert collate(MolSet([6, 8], np.zeros((2, 3)), [0, 2]), [0], vocab).bond_class is None
