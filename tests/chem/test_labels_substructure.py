"""Drug-likeness labels (cached) and scaffold fragments with their substructure checks."""

import numpy as np
import pytest

from moldiff.chem.conformers import smiles_to_3d
from moldiff.chem.io import write_sdf
from moldiff.chem.labels import cached_druglike_scores, druglike_scores
from moldiff.chem.substructure import fragment_from_sdf, fragment_from_smiles, scaffold_matches
from moldiff.data.molset import MolSet
from moldiff.errors import MoldiffError


def test_scores_of_known_molecules_and_nan_for_garbage():
    out = druglike_scores(["CCO", "c1ccccc1O", "not a smiles", None])
    assert out["mw"][:2] == pytest.approx([46.069, 94.113], abs=1e-3)
    assert out["logp"][0] == pytest.approx(-0.0014, abs=1e-4)
    assert 0 < out["qed"][1] < 1 and 1 <= out["sa"][1] <= 10
    assert np.isnan(out["qed"][2:]).all()
    with pytest.raises(MoldiffError, match="unknown drug-likeness"):
        druglike_scores(["C"], ["potency"])


def test_cache_returns_the_same_labels(tmp_path):
    first = cached_druglike_scores(["CCO", "CCN"], ["qed", "mw"], cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2
    again = cached_druglike_scores(["CCO", "CCN"], ["qed", "mw"], cache_dir=tmp_path)
    for k in first:
        np.testing.assert_array_equal(first[k], again[k])


def _molset(smiles):
    confs = [smiles_to_3d(s) for s in smiles]
    counts = [len(c.atomic_numbers) for c in confs]
    return MolSet(np.concatenate([c.atomic_numbers for c in confs]), np.concatenate([c.positions for c in confs]),
                  ptr=np.concatenate([[0], np.cumsum(counts)]))  # fmt: skip


def test_scaffold_matches_in_generated_like_molecules():
    # bonds are inferred from distances (EDM rule), as for generated molecules
    mols = _molset(["CC(=O)O", "CCCO", "CC#N"])
    has, exact = scaffold_matches(mols, fragment_from_smiles("CC=O").query)
    assert has == [True, True, False]  # connectivity only: propanol has a C-C-O chain too
    assert exact == [True, False, False]  # ... but no C=O
    has, exact = scaffold_matches(mols, fragment_from_smiles("C#N").query)
    assert has == [False, False, True] and exact == [False, False, True]


def test_fragments_drop_hydrogens_unless_kept(tmp_path):
    frag = fragment_from_smiles("CC(=O)O")
    assert frag.atomic_numbers.tolist() == [6, 6, 8, 8] and frag.positions.shape == (4, 3)
    assert len(fragment_from_smiles("CC(=O)O", hydrogens=True).atomic_numbers) == 8
    write_sdf(tmp_path / "f.sdf", _molset(["CC(=O)O"]))
    sdf = fragment_from_sdf(tmp_path / "f.sdf")
    assert sdf.atomic_numbers.tolist() == [6, 6, 8, 8] and sdf.query.GetNumBonds() == 3
    with pytest.raises(MoldiffError, match="no such file"):
        fragment_from_sdf(tmp_path / "missing.sdf")
    with pytest.raises(MoldiffError, match="unparsable"):
        fragment_from_smiles("C1CC")


def test_attachment_points_keep_every_other_hydrogen():
    frag = fragment_from_smiles("*NC(=O)c1ccccc1")  # grow on the amide nitrogen only
    assert frag.atomic_numbers.tolist() == [7, 6, 8, 6, 6, 6, 6, 6, 6] + [1] * 6  # one H on N, five on the ring
    assert frag.open_hydrogens == 1 and frag.smiles == "NC(=O)c1ccccc1"
    n_h = np.linalg.norm(frag.positions[9:] - frag.positions[0], axis=1).min()
    assert 0.95 < n_h < 1.1  # the N-H kept at a bond length, the attachment's H left out
    para = fragment_from_smiles("NC(=O)c1ccc(*)cc1")
    assert para.atomic_numbers.tolist().count(1) == 6 and para.open_hydrogens == 1
    mols = _molset(["CNC(=O)c1ccccc1", "NC(=O)C1CCCCC1"])
    has, exact = scaffold_matches(mols, frag.query)
    assert has == [True, True] and not exact[1]  # (the EDM rule reads benzene rings badly: no exact check on [0])
    with pytest.raises(MoldiffError, match="single bond"):
        fragment_from_smiles("*=CC")
