"""Placing a SMILES's bonds and charges on 3D coordinates whose atom order is unknown."""

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from moldiff.chem.graphs import graph_on_coordinates, with_graphs
from moldiff.chem.rdmol import mol_from_edges
from moldiff.data.molset import MolSet


def embedded(smiles: str, seed: int = 7) -> Chem.Mol:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    assert AllChem.EmbedMolecule(mol, randomSeed=seed) == 0
    return mol


def shuffled_atoms(mol: Chem.Mol, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(atomic numbers, positions) in a random order, and order[k] = the RDKit atom at position k."""
    order = np.random.default_rng(seed).permutation(mol.GetNumAtoms())
    z = np.array([mol.GetAtomWithIdx(int(i)).GetAtomicNum() for i in order])
    return z, mol.GetConformer().GetPositions()[order], order


@pytest.mark.parametrize("smiles", ["CC(=O)O", "c1ccccc1O", "C[N+](=O)[O-]", "N#CC1CC1"])
def test_the_smiles_graph_lands_on_the_right_atoms(smiles):
    mol = embedded(smiles)
    z, pos, order = shuffled_atoms(mol)
    bonds, charges = graph_on_coordinates(z, pos, smiles)
    where = {int(atom): k for k, atom in enumerate(order)}  # RDKit atom -> position
    connected = sorted(tuple(sorted((where[b.GetBeginAtomIdx()], where[b.GetEndAtomIdx()]))) for b in mol.GetBonds())
    assert [tuple(row) for row in bonds[:, :2].tolist()] == connected
    # bond orders and charges up to the molecule's symmetry (which Kekulé form, which nitro O)
    rebuilt = mol_from_edges(z, bonds[:, :2], bonds[:, 2], charges=charges)
    Chem.SanitizeMol(rebuilt)
    assert Chem.MolToSmiles(Chem.RemoveHs(rebuilt)) == Chem.MolToSmiles(Chem.MolFromSmiles(smiles))


def test_valences_of_placed_graph_are_chemical():
    z, pos, _ = shuffled_atoms(embedded("OC(=O)c1ccncc1"))
    bonds, _ = graph_on_coordinates(z, pos, "OC(=O)c1ccncc1")
    valence = np.zeros(len(z), int)
    np.add.at(valence, bonds[:, 0], bonds[:, 2])
    np.add.at(valence, bonds[:, 1], bonds[:, 2])
    assert valence.tolist() == [{1: 1, 6: 4, 7: 3, 8: 2}[int(a)] for a in z]


def test_a_smiles_of_another_molecule_is_refused_with_its_reason():
    z, pos, _ = shuffled_atoms(embedded("CCO"))
    assert graph_on_coordinates(z, pos, "COC").startswith("connectivity differs")
    assert graph_on_coordinates(z, pos, "CCN") == "the SMILES has other atoms than the coordinates"
    assert graph_on_coordinates(z, pos, "C1C(").startswith("unparsable SMILES")


def test_a_molecule_set_gets_bonds_and_keeps_the_failures_apart():
    parts = []
    for smiles in ["CCO", "C[N+](=O)[O-]", "CC#N"]:
        z, pos, _ = shuffled_atoms(embedded(smiles))
        parts.append(MolSet(z, pos, [0, len(z)], smiles=[smiles]))
    parts[2].smiles = np.array(["CCC"])  # wrong on purpose
    graphs, failed = with_graphs(MolSet.concat(parts))
    assert len(graphs) == 2 and list(failed) == [2]
    assert graphs.smiles.tolist() == ["CCO", "C[N+](=O)[O-]"]
    assert sorted(graphs.charges[graphs.ptr[1] : graphs.ptr[2]].tolist()) == [-1, 0, 0, 0, 0, 0, 1]
