"""A heavy-atom molecule with bonds and charges gets the hydrogens its graph implies, placed in 3D
beside the heavy atoms it leaves exactly where they were."""

import numpy as np
from rdkit import Chem
from rdkit.Chem import AllChem

from moldiff.chem.graph_eval import evaluate_graphs
from moldiff.chem.hydrogens import add_hydrogens
from moldiff.chem.rdmol import canonicalize_smiles
from moldiff.data.molset import MolSet


def _heavy(smiles: str, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The heavy atoms, coordinates, charges and Kekulé bonds of a SMILES embedded by RDKit."""
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMolecule(mol, randomSeed=seed)
    mol = Chem.RemoveHs(mol)
    Chem.Kekulize(mol, clearAromaticFlags=True)
    z = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])
    q = np.array([a.GetFormalCharge() for a in mol.GetAtoms()])
    order = {Chem.BondType.SINGLE: 1, Chem.BondType.DOUBLE: 2, Chem.BondType.TRIPLE: 3}
    bonds = np.array([sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx())) + [order[b.GetBondType()]]
                      for b in mol.GetBonds()]).reshape(-1, 3)  # fmt: skip
    return z, mol.GetConformer().GetPositions(), q, bonds


def _set(molecules) -> MolSet:
    counts = [len(m[0]) for m in molecules]
    return MolSet(atomic_numbers=np.concatenate([m[0] for m in molecules]),
                  positions=np.concatenate([m[1] for m in molecules]),
                  ptr=np.concatenate([[0], np.cumsum(counts)]), charges=np.concatenate([m[2] for m in molecules]),
                  bonds=np.concatenate([m[3] for m in molecules]),
                  bond_ptr=np.concatenate([[0], np.cumsum([len(m[3]) for m in molecules])]))  # fmt: skip


def test_hydrogens_complete_each_molecule_and_heavy_atoms_stay_put():
    smiles = ["CCO", "[NH3+]CC(=O)[O-]", "c1ccncc1", "C#N"]
    heavy = _set([_heavy(s) for s in smiles])
    full = add_hydrogens(heavy)
    assert list(full.n_atoms) == [9, 10, 11, 3]
    for m, s in enumerate(smiles):
        z, pos = full.molecule(m)
        n = heavy.n_atoms[m]
        assert np.array_equal(z[:n], heavy.molecule(m)[0]) and (z[n:] == 1).all()
        assert np.allclose(pos[:n], heavy.molecule(m)[1], atol=1e-5)  # heavy atoms exactly as written
        bonds = full.molecule_bonds(m)
        to_h = bonds[bonds[:, 1] >= n]
        assert len(to_h) == len(z) - n and (to_h[:, 2] == 1).all() and (to_h[:, 0] < n).all()
        lengths = np.linalg.norm(pos[to_h[:, 0]] - pos[to_h[:, 1]], axis=1)
        assert ((lengths > 0.9) & (lengths < 1.15)).all()  # X-H bond lengths
    summary, frame = evaluate_graphs(full, posebusters=False, edm=False)
    assert [canonicalize_smiles(s) for s in smiles] == list(frame["smiles"])
    assert summary["valid_connected"] == 1.0 and summary["mol_stability"] == 1.0
    assert summary["geometry_consistency"] == 1.0  # the placed hydrogens agree with the coordinates


def test_a_graph_rdkit_rejects_stays_as_written():
    z, pos, q, _ = _heavy("CC(C)(C)C")
    over = np.array([[0, 1, 1], [1, 2, 2], [1, 3, 1], [1, 4, 1]])  # the central carbon with five bonds
    full = add_hydrogens(_set([(z, pos, q, over), _heavy("CO")]))
    assert list(full.n_atoms) == [5, 6] and (full.molecule(0)[0] != 1).all()
    assert np.array_equal(full.molecule_bonds(0), [[0, 1, 1], [1, 2, 2], [1, 3, 1], [1, 4, 1]])
    assert full.molecule_bonds(1).shape == (5, 3)


def test_added_hydrogens_sit_at_a_force_field_minimum_around_the_fixed_heavy_atoms():
    from rdkit.Chem import AllChem

    from moldiff.chem.rdmol import mol_from_edges

    heavy = _set([_heavy("CC(C)CO")])
    full = add_hydrogens(heavy)
    z, pos = full.molecule(0)
    bonds = full.molecule_bonds(0)
    mol = mol_from_edges(z.tolist(), bonds[:, :2].tolist(), bonds[:, 2].tolist(), pos)
    Chem.SanitizeMol(mol)
    field = AllChem.MMFFGetMoleculeForceField(mol, AllChem.MMFFGetMoleculeProperties(mol))
    for i in range(heavy.n_atoms[0]):
        field.AddFixedPoint(i)
    before = field.CalcEnergy()
    field.Minimize(maxIts=500)
    assert before - field.CalcEnergy() < 0.5  # kcal/mol: nothing left to relax
