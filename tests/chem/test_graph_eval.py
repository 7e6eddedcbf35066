"""The graph evaluator: validity, connectivity and stability of the graph as written, the graph
against the coordinates, and its calibration on QM9's own graphs."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from moldiff.chem.graph_eval import VALENCES, atom_stability, evaluate_graphs, judge, written_mols
from moldiff.chem.rdmol import mol_from_edges
from moldiff.data.molset import MolSet
from moldiff.errors import MoldiffError


def embedded(smiles: str, seed: int = 3) -> Chem.Mol:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    assert AllChem.EmbedMolecule(mol, randomSeed=seed) == 0
    return mol


def as_written(mol: Chem.Mol, drop: int | None = None, order: dict | None = None) -> Chem.Mol:
    """The molecule as a generator would write it: atoms, Kekulé bonds, charges, conformer
    (optionally without bond ``drop`` or with other orders ``{bond index: order}``)."""
    kek = Chem.Mol(mol)
    Chem.Kekulize(kek, clearAromaticFlags=True)
    edges, orders = [], []
    for b in kek.GetBonds():
        if b.GetIdx() == drop:
            continue
        edges.append((b.GetBeginAtomIdx(), b.GetEndAtomIdx()))
        orders.append((order or {}).get(b.GetIdx(), int(b.GetBondTypeAsDouble())))
    return mol_from_edges([a.GetAtomicNum() for a in kek.GetAtoms()], edges, orders,
                          kek.GetConformer().GetPositions(), [a.GetFormalCharge() for a in kek.GetAtoms()])  # fmt: skip


# ------------------------------------------------------------------------------ valence table
def test_neutral_carbon_has_valence_four_only():
    assert VALENCES[("C", 0)] & {(0, v) for v in range(9)} == {(0, 4)}
    assert (0, 3) in VALENCES[("C", 1)] and (0, 3) in VALENCES[("C", -1)]


@pytest.mark.parametrize("smiles", ["c1ccccc1", "c1cc[nH]c1", "c1ccoc1", "O=c1cccc[nH]1", "c1ccc2ccccc2c1",
                                    "O=[N+]([O-])c1ccccc1", "[NH3+]CC(=O)[O-]", "CS(=O)(=O)N", "c1ccsc1"])
def test_real_molecules_are_stable_aromatic_or_kekule(smiles):
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))  # aromatic bonds, as RDKit perceives them
    stable, notes = atom_stability(mol)
    assert stable.all(), notes
    Chem.Kekulize(mol, clearAromaticFlags=True)
    stable, notes = atom_stability(mol)
    assert stable.all(), notes


def test_aromatic_bonds_are_not_summed_as_one_and_a_half():
    # furan O: 1.5 + 1.5 = 3 is the valence of O+, yet an aromatic O+ is not in the table, and the
    # neutral one is
    mol = Chem.AddHs(Chem.MolFromSmiles("c1ccoc1"))
    o = next(a for a in mol.GetAtoms() if a.GetSymbol() == "O")
    assert atom_stability(mol)[0].all()
    o.SetFormalCharge(1)
    stable, notes = atom_stability(mol)
    assert not stable[o.GetIdx()] and notes == ["O+1: 2 aromatic + 0"]


def test_a_missing_hydrogen_is_unstable_but_rdkit_valid():
    mol = as_written(embedded("CCO"))
    rw = Chem.RWMol(mol)
    rw.RemoveAtom(mol.GetNumAtoms() - 1)  # a hydrogen: its carbon or oxygen is left with an open valence
    row, _ = judge(rw.GetMol())
    assert row["valid"] and not row["stable"] and row["n_stable_atoms"] == row["n_atoms"] - 1


# ------------------------------------------------------------------------------ one molecule
def test_a_good_graph_on_its_coordinates_passes_everything():
    row, clean = judge(as_written(embedded("CC(=O)Nc1ccc(O)cc1")))
    assert row["valid"] and row["connected"] and row["stable"] and row["geometry_consistent"]
    assert row["smiles"] == "CC(=O)Nc1ccc(O)cc1" and clean is not None


def test_a_good_graph_on_bad_coordinates_is_not_consistent():
    mol = as_written(embedded("CCO"))
    conf = mol.GetConformer()
    pos = conf.GetPositions()
    pos[2] += 3.0 * (pos[2] - pos[1]) / np.linalg.norm(pos[2] - pos[1])  # pull O away from its carbon
    conf.SetAtomPosition(2, pos[2].tolist())
    row, _ = judge(mol)
    assert row["valid"] and row["stable"] and not row["geometry_consistent"] and row["n_missing_bonds"] >= 1


def test_a_missing_bond_makes_fragments_and_disagrees_with_the_geometry():
    mol = embedded("CCO")
    co = next(b.GetIdx() for b in mol.GetBonds() if {b.GetBeginAtom().GetSymbol(), b.GetEndAtom().GetSymbol()} == {"C", "O"})
    row, _ = judge(as_written(mol, drop=co))
    assert row["n_fragments"] == 2 and not row["connected"] and not row["valid_connected"]
    assert not row["geometry_consistent"] and row["n_extra_bonds"] == 1 and row["n_missing_bonds"] == 0


def test_a_wrong_order_is_invalid_with_a_reason():
    mol = embedded("CCO")
    row, clean = judge(as_written(mol, order={0: 3}))  # C#C with its hydrogens: carbon valence 6
    assert not row["valid"] and "valence" in row["failure"] and clean is None and not row["stable"]
    assert row["geometry_consistent"]  # the connectivity is right, only an order is wrong


# ------------------------------------------------------------------------------ a set
def _qm9_with_graphs(n: int) -> MolSet:
    from moldiff.chem.graphs import with_graphs
    from moldiff.data.qm9 import load_qm9

    placed, failed = with_graphs(load_qm9("test").subset(np.arange(n)))
    assert not failed
    return placed


def test_calibration_qm9_graphs_score_all_but_nothing_on_their_coordinates():
    # the data itself, with the bonds and charges of its SMILES: every check passes
    summary, frame = evaluate_graphs(_qm9_with_graphs(300), posebusters=False)
    for key in ("validity", "connectivity", "valid_connected", "atom_stability", "mol_stability",
                "geometry_consistency", "valid_connected_consistent", "uniqueness"):
        assert summary[key] == 1.0, (key, frame.loc[~frame["geometry_consistent"], ["smiles", "n_extra_bonds"]])
    assert summary["mol_stability_se"] == 0.0
    assert 0.9 < summary["edm"]["mol_stability"] < 1.0  # the EDM rule on the same coordinates misreads some


def test_rejects_count_and_novelty_uses_the_canonical_form():
    molset = MolSet.concat([_as_molset(as_written(embedded("CCO"))), _as_molset(as_written(embedded("OCC(C)C")))])
    molset.ids = np.array([0, 1])
    summary, frame = evaluate_graphs(molset, {"CCO"}, rejects=[(5, "no coordinates")], posebusters=False)
    assert summary["n"] == 3 and summary["n_rejected"] == 1 and summary["validity"] == pytest.approx(2 / 3)
    assert summary["novelty"] == 0.5 and frame["novel"].tolist()[:2] == [False, True]
    assert frame["index"].tolist() == [0, 1, 5] and frame["failure"].iloc[2] == "no coordinates"


def test_rdkit_molecules_with_aromatic_bonds_are_judged_as_written():
    mol = embedded("c1ccc2[nH]ccc2c1")  # aromatic bonds, not kekulized
    summary, frame = evaluate_graphs([mol], posebusters=False)
    assert frame["stable"].all() and frame["valid"].all() and frame["geometry_consistent"].all()
    assert set(summary["edm"]) >= {"atom_stability", "mol_stability", "validity"}  # the EDM rule reads no bonds


def test_a_set_without_bonds_is_refused():
    molset = _as_molset(as_written(embedded("CCO")))
    molset.bonds = molset.bond_ptr = None
    with pytest.raises(MoldiffError, match="needs molecules with bonds"):
        evaluate_graphs(molset)


def test_written_mols_round_trip_the_graph():
    molset = _qm9_with_graphs(20)
    mols = written_mols(molset)
    for i, mol in enumerate(mols):
        bonds = sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx(), int(b.GetBondTypeAsDouble())) for b in mol.GetBonds())
        assert bonds == sorted(map(tuple, molset.molecule_bonds(i).tolist()))


def test_posebusters_runs_on_valid_molecules_only():
    good = as_written(embedded("CCO"))
    bad = as_written(embedded("CCO"), order={0: 3})
    summary, frame = evaluate_graphs([good, bad], edm=False)
    assert frame["pb_failed"].iloc[1] == "invalid molecule" and not frame["pb_pass"].iloc[1]
    assert frame["pb_pass"].iloc[0] and summary["posebusters_pass"] == 0.5


def _as_molset(mol: Chem.Mol) -> MolSet:
    bonds = sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx(), int(b.GetBondTypeAsDouble())) for b in mol.GetBonds())
    return MolSet(atomic_numbers=[a.GetAtomicNum() for a in mol.GetAtoms()], positions=mol.GetConformer().GetPositions(),
                  ptr=[0, mol.GetNumAtoms()], charges=[a.GetFormalCharge() for a in mol.GetAtoms()],
                  bonds=np.array(bonds).reshape(-1, 3), bond_ptr=[0, len(bonds)])  # fmt: skip


def test_a_file_of_unreadable_molecules_scores_zero():
    summary, frame = evaluate_graphs([], rejects=[(0, "unparsable block")], posebusters=False)
    assert summary["n"] == 1 and summary["validity"] == 0.0 and summary["mol_stability"] == 0.0
    with pytest.raises(MoldiffError, match="no molecules"):
        evaluate_graphs([])
