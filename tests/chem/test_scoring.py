"""Per-molecule scores and set metrics: values agree with RDKit on known molecules, failures keep
their row with a reason, alerts are named, novelty and neighbours use the reference."""

from __future__ import annotations

import numpy as np
import pytest
from chem_molecules import ETHANOL, PYRIDINE, molset_of
from rdkit import Chem
from rdkit.Chem import QED, Crippen

from moldiff.chem.conformers import smiles_to_3d
from moldiff.chem.descriptors import DESCRIPTORS, describe, lipinski_violations
from moldiff.chem.reference_set import ReferenceSet
from moldiff.chem.scoring import NUMERIC_SCORES, score_molset, score_smiles, set_metrics
from moldiff.data.molset import MolSet

BENZAMIDE = "NC(=O)c1ccccc1"
RHODANINE = "O=C1NC(=S)SC1=Cc1ccccc1"  # 5-benzylidene rhodanine: the PAINS ene_rhod family
ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
ETHANOL_SMILES = "CCO"


def _embedded(*smiles: str) -> MolSet:
    confs = [smiles_to_3d(s) for s in smiles]
    assert all(not isinstance(c, str) for c in confs), confs
    return MolSet(
        atomic_numbers=np.concatenate([c.atomic_numbers for c in confs]),
        positions=np.concatenate([c.positions for c in confs]),
        ptr=np.concatenate([[0], np.cumsum([len(c.atomic_numbers) for c in confs])]),
        charges=np.concatenate([c.charges for c in confs]),
    )


@pytest.fixture(scope="module")
def reference() -> ReferenceSet:
    return ReferenceSet.from_smiles(["CCO", "c1ccccc1", "CC(N)=O", "Oc1ccccc1", BENZAMIDE], "tiny", cache=False)


def test_descriptors_of_3d_molecules_match_rdkit_on_their_smiles(reference):
    frame = score_molset(_embedded(BENZAMIDE, ASPIRIN), reference)
    assert frame["valid"].tolist() == [True, True]
    assert frame["smiles"].tolist() == [Chem.CanonSmiles(BENZAMIDE), Chem.CanonSmiles(ASPIRIN)]
    for row, smi in zip(frame.itertuples(), (BENZAMIDE, ASPIRIN)):
        mol = Chem.MolFromSmiles(smi)
        assert row.qed == pytest.approx(QED.qed(mol))
        assert row.logp == pytest.approx(Crippen.MolLogP(mol))
        assert row.scaffold == "c1ccccc1" and row.lipinski_violations == 0 and row.n_fragments == 1
        assert 1 <= row.sa <= 10
    assert frame["novel"].tolist() == [False, True]  # benzamide is in the reference
    assert frame.loc[0, "nn_similarity"] == pytest.approx(1.0) and frame.loc[0, "nn_smiles"] == BENZAMIDE
    assert 0 < frame.loc[1, "nn_similarity"] < 1
    assert frame["edm_valid"].dtype == bool and frame["hbd"].dtype == "Int64"


def test_failed_molecules_keep_their_row_and_reason(reference):
    z, pos = ETHANOL
    scattered = MolSet(z, pos * 4.0, ptr=[0, len(z)])  # atoms 4x too far apart: no bonds
    frame = score_molset(MolSet.concat([molset_of(ETHANOL, PYRIDINE), scattered]), reference)
    assert frame["valid"].tolist() == [True, True, False]
    assert frame.loc[2, "failure"].startswith("xyz2mol failed")
    assert frame.loc[2, "smiles"] == "" and np.isnan(frame.loc[2, "qed"]) and frame["hbd"].isna()[2]
    assert frame.loc[0, "scaffold"] == "" and frame.loc[1, "scaffold"] == "c1ccncc1"
    assert frame.loc[0, "novel"] == False  # noqa: E712 (ethanol is in the reference)


def test_a_diverged_sample_fails_with_its_reason(reference):
    z, pos = ETHANOL
    diverged = MolSet(z, np.where(np.arange(len(z))[:, None] == 0, np.nan, pos), ptr=[0, len(z)])
    frame = score_molset(MolSet.concat([molset_of(ETHANOL), diverged]), reference)
    assert frame["valid"].tolist() == [True, False] and frame.loc[1, "failure"] == "non-finite coordinates"


def test_alerts_are_named():
    frame = score_smiles([RHODANINE, BENZAMIDE, "not a smiles"])
    assert frame.loc[0, "n_pains"] >= 1 and "ene_rhod" in frame.loc[0, "pains"]
    assert frame.loc[1, "n_pains"] == 0 and frame.loc[1, "pains"] == ""
    assert frame.loc[0, "n_brenk"] >= 1 and frame.loc[0, "brenk"]
    assert frame.loc[2, "failure"] == "unparsable SMILES" and not frame.loc[2, "valid"]


def test_lipinski_counts_each_rule():
    big_greasy = Chem.MolFromSmiles("CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC(=O)O")  # MW > 500 and logP > 5
    assert lipinski_violations(big_greasy) == 2
    assert lipinski_violations(Chem.MolFromSmiles(BENZAMIDE)) == 0


def test_numeric_score_names_are_the_numeric_columns():
    values = describe(Chem.MolFromSmiles(ASPIRIN))
    assert set(values) == set(DESCRIPTORS)
    frame = score_smiles([ASPIRIN])
    for name in NUMERIC_SCORES:
        assert name in frame.columns and np.issubdtype(np.asarray(frame[name], dtype=float).dtype, np.floating)


def test_set_metrics(reference):
    frame = score_smiles(["CCO", "CCO", "c1ccccc1O", "c1ccncc1", "C1CCCCC1", "xx"], reference)
    m = set_metrics(frame, reference)
    assert m["n"] == 6 and m["n_valid"] == 5 and m["validity"] == pytest.approx(5 / 6)
    assert m["n_unique"] == 4 and m["uniqueness"] == pytest.approx(4 / 5)
    assert m["n_novel"] == 2 and m["novelty"] == pytest.approx(0.5)  # pyridine and cyclohexane
    assert m["n_scaffolds"] == 3  # benzene, pyridine, cyclohexane rings
    assert 0 < m["internal_diversity"] <= 1
    same = set_metrics(score_smiles(["c1ccccc1O"] * 3, reference), reference)
    assert same["internal_diversity"] is None  # one unique molecule: no pairs


def test_fcd_is_small_for_the_reference_itself_and_larger_for_other_chemistry():
    pytest.importorskip("fcd")
    from moldiff.chem import fcd

    druglike = [BENZAMIDE, ASPIRIN, "CC(=O)Nc1ccc(O)cc1", "CN1CCC[C@H]1c1cccnc1", "O=C(O)c1ccccc1O",
                "CC(C)Cc1ccc(C(C)C(=O)O)cc1", "COc1ccc2[nH]cc(CCN)c2c1", "NC(=O)c1cccnc1"]  # fmt: skip
    small = ["C", "CC", "CCC", "CO", "CCO", "CN", "C=O", "CC#N"]
    stats = fcd.statistics(druglike)
    assert fcd.frechet_distance(druglike, stats) == pytest.approx(0.0, abs=1e-3)
    assert fcd.frechet_distance(small, stats) > 10


def test_posebusters_checks_are_columns():
    pytest.importorskip("posebusters")
    frame = score_molset(molset_of(ETHANOL, PYRIDINE), posebusters="fast")
    assert frame["pb_pass"].tolist() == [True, True]
    assert {"pb_bond_lengths", "pb_internal_steric_clash"} <= set(frame.columns)
    assert frame["pb_failed"].tolist() == ["", ""]


def test_charge_separated_molecules_are_valid_but_not_neutral():
    frame = score_molset(_embedded(BENZAMIDE, "[NH3+]CC(=O)[O-]"))  # glycine as its zwitterion
    assert frame["valid"].tolist() == [True, True] and frame["charged_atoms"].tolist() == [0, 2]
    metrics = set_metrics(frame)
    assert metrics["validity"] == 1.0 and metrics["neutral"] == metrics["neutral_connected"] == 0.5


def test_full_posebusters_gives_the_verdicts_of_its_mol_configuration():
    PoseBusters = pytest.importorskip("posebusters").PoseBusters
    from moldiff.chem.posebusters import posebusters_checks
    from moldiff.chem.scoring import bonded_molecules

    mols, _ = bonded_molecules(_embedded(ETHANOL_SMILES, BENZAMIDE, ASPIRIN))
    clashing = Chem.Mol(mols[1])
    clashing.GetConformer().SetAtomPosition(0, clashing.GetConformer().GetAtomPosition(1))
    mols = [*mols, clashing, None]
    frame = posebusters_checks(mols, "full")
    reference = PoseBusters(config="mol").bust(mols[:4]).all(axis=1).tolist()
    assert frame["pb_pass"].tolist() == [*reference, False] and reference[:3] == [True, True, True]
    # the energy check runs only where every fast check passed; a failed check is named
    assert frame["pb_internal_energy"].isna().tolist() == [False, False, False, True, True]
    assert "bond_lengths" in frame.loc[3, "pb_failed"] and frame.loc[4, "pb_failed"] == "no molecule"


def test_scores_do_not_depend_on_the_number_of_processes(reference):
    import pandas as pd

    molset = MolSet.concat([molset_of(ETHANOL, PYRIDINE), _embedded(BENZAMIDE, ASPIRIN)])
    pd.testing.assert_frame_equal(score_molset(molset, reference), score_molset(molset, reference, workers=2))
