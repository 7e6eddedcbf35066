"""Around the graph evaluator: SDF bonds as written, the one canonical SMILES form, GFN2-xTB
relaxation, and ``moldiff evaluate --graph``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from moldiff.chem.io import read_sdf, write_sdf
from moldiff.chem.rdmol import canonical_form, canonical_smiles, canonicalize_smiles, mol_from_edges
from moldiff.chem.xtb import lbfgs, xtb_available
from moldiff.cli.main import main


def embedded(smiles: str, seed: int = 3) -> Chem.Mol:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    assert AllChem.EmbedMolecule(mol, randomSeed=seed) == 0
    return mol


# ------------------------------------------------------------------------------ SDF bonds
def test_read_sdf_keeps_the_bonds_and_charges_as_written_in_kekule_orders(tmp_path):
    mols = [embedded("c1ccncc1"), embedded("C[N+](=O)[O-]")]
    path = tmp_path / "m.sdf"
    write_sdf(path, mols)  # aromatic bonds written as type 4
    assert "  4  0" in path.read_text()
    molset, rejects = read_sdf(path)
    assert not rejects and molset.has_bonds
    pyridine = molset.molecule_bonds(0)
    assert sorted(pyridine[pyridine[:, 2] > 1, 2].tolist()) == [2, 2, 2]  # one Kekulé form
    assert molset.charges[molset.ptr[1] : molset.ptr[2]].tolist()[:4] == [0, 1, 0, -1]
    for i, mol in enumerate(mols):
        assert len(molset.molecule_bonds(i)) == mol.GetNumBonds()


def test_bonds_without_a_kekule_form_are_dropped_or_rejected(tmp_path):
    good = Chem.MolToMolBlock(embedded("CCO"))
    lines = good.splitlines()
    first_bond = 4 + int(lines[3][:3])
    lines[first_bond] = lines[first_bond][:6] + "  4" + lines[first_bond][9:]  # an aromatic bond outside a ring
    path = tmp_path / "m.sdf"
    path.write_text(good + "$$$$\n" + "\n".join(lines) + "\n$$$$\n")
    molset, rejects = read_sdf(path)
    assert len(molset) == 2 and not rejects and not molset.has_bonds  # what other callers got before
    molset, rejects = read_sdf(path, require_bonds=True)
    assert len(molset) == 1 and molset.has_bonds and rejects[0][0] == 1 and "Kekulé" in rejects[0][1]


# ------------------------------------------------------------------------------ one SMILES form
def test_a_molecule_and_its_smiles_give_one_form():
    mol = embedded("C[C@H](N)C(=O)O.[Na+].[Cl-]")
    Chem.AssignStereochemistryFrom3D(mol)
    assert canonical_form(mol) == canonicalize_smiles("OC(=O)[C@@H](C)N.[Cl-].[Na+]") == "CC(N)C(=O)O"


def test_the_largest_fragment_counts_hydrogens_and_does_not_depend_on_atom_order():
    assert canonicalize_smiles("CO.NCC") == canonicalize_smiles("CCN.OC") == "CCN"  # 6 and 10 atoms with H
    assert canonicalize_smiles("CF.CO") == canonicalize_smiles("OC.FC") == "CO"  # 5 and 6
    assert canonicalize_smiles("CCl.CF") == canonicalize_smiles("FC.ClC") == "CCl"  # 5 each: SMILES order


def test_edm_smiles_are_in_the_same_form_as_reference_smiles():
    mol = embedded("OCC(=O)[O-].[NH4+]")
    z = [a.GetAtomicNum() for a in mol.GetAtoms()]
    bonds = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()]
    kek = Chem.Mol(mol)
    Chem.Kekulize(kek)
    built = mol_from_edges(z, bonds, [int(b.GetBondTypeAsDouble()) for b in kek.GetBonds()],
                           charges=[a.GetFormalCharge() for a in mol.GetAtoms()])  # fmt: skip
    assert canonical_smiles(built) == (canonicalize_smiles("[O-]C(=O)CO"), "")


# ------------------------------------------------------------------------------ GFN2-xTB
def test_lbfgs_finds_the_minimum_of_a_quadratic():
    a = np.diag([1.0, 10.0, 100.0])
    b = np.array([1.0, -2.0, 3.0])
    found = lbfgs(lambda x: (0.5 * x @ a @ x - b @ x, a @ x - b), np.zeros(3), gtol=1e-6, max_steps=200)
    assert found.converged and np.allclose(found.x, np.linalg.solve(a, b), atol=1e-6)


def test_lbfgs_caps_each_step():
    seen = []

    def fun(x):
        seen.append(x.copy())
        return float(x @ x), 2 * x

    lbfgs(fun, np.array([100.0, 0.0]), max_steps=3, max_step=0.5)
    assert np.abs(np.diff(np.array(seen), axis=0)).max() <= 0.5 + 1e-12


@pytest.mark.skipif(not xtb_available(), reason="tblite not installed")
def test_relaxation_energy_is_positive_then_zero_at_the_minimum():
    from moldiff.chem.xtb import relax

    mol = embedded("CC(=O)O")
    z = [a.GetAtomicNum() for a in mol.GetAtoms()]
    first = relax(z, mol.GetConformer().GetPositions())
    assert first.converged and first.failure == "" and 0.1 < first.delta_kcal < 50
    again = relax(z, first.positions)
    assert again.converged and abs(again.delta_kcal) < 0.05


@pytest.mark.skipif(not xtb_available(), reason="tblite not installed")
def test_relax_records_why_it_failed():
    from moldiff.chem.xtb import relax

    assert relax([6, 8], np.array([[0.0, 0, 0], [np.nan, 0, 0]])).failure == "non-finite coordinates"


# ------------------------------------------------------------------------------ CLI
def test_cli_graph_json(tmp_path, capsys):
    path = tmp_path / "m.sdf"
    broken = Chem.RWMol(embedded("CCO"))
    broken.GetBondWithIdx(0).SetBondType(Chem.BondType.TRIPLE)
    write_sdf(path, [embedded("CCO"), embedded("c1ccncc1"), broken.GetMol()])
    assert main(["evaluate", str(path), "--graph", "--json", "--no-novelty", "--no-posebusters"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 3 and summary["validity"] == pytest.approx(2 / 3)
    assert summary["geometry_consistency"] == 1.0 and summary["mol_stability"] == pytest.approx(2 / 3)
    assert "edm" in summary and summary["protocol"].startswith("graph")


def test_cli_graph_refuses_xyz(tmp_path, capsys):
    path = tmp_path / "m.xyz"
    path.write_text("1\n\nC 0 0 0\n")
    assert main(["evaluate", str(path), "--graph"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "not an SDF" in err and "\n" not in err


def test_cli_graph_novelty_against_a_reference_file(tmp_path, capsys):
    path = tmp_path / "m.sdf"
    write_sdf(path, [embedded("CCO"), embedded("OCC(C)C")])
    ref = tmp_path / "ref.smi"
    ref.write_text("OCC ethanol\n")
    out_csv = tmp_path / "rows.csv"
    assert main(["evaluate", str(path), "--graph", "--json", "--reference", str(ref), "--no-posebusters",
                 "--out-csv", str(out_csv)]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["novelty"] == 0.5 and summary["n_novel"] == 1 and "ref.smi" in summary["reference"]
    assert out_csv.read_text().count("\n") == 3
