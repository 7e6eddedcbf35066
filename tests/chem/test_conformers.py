import numpy as np
import pytest

from moldiff.chem.conformers import Conformer, embed_many, smiles_to_3d


def _dist(conf: Conformer, i: int, j: int) -> float:
    return float(np.linalg.norm(conf.positions[i] - conf.positions[j]))


def test_methane_has_explicit_hydrogens_and_mmff_geometry():
    conf = smiles_to_3d("C")
    assert isinstance(conf, Conformer)
    assert conf.atomic_numbers.tolist() == [6, 1, 1, 1, 1]
    assert conf.positions.shape == (5, 3)
    assert conf.forcefield == "MMFF94"
    assert [_dist(conf, 0, k) for k in range(1, 5)] == pytest.approx([1.09] * 4, abs=0.02)


def test_charges_and_canonical_smiles():
    conf = smiles_to_3d("[NH4+]")
    assert conf.charges.tolist() == [1, 0, 0, 0, 0]
    assert smiles_to_3d("OCC").smiles == "CCO"


def test_same_seed_same_conformer_different_seed_different():
    a, b, c = smiles_to_3d("CCCO", seed=1), smiles_to_3d("CCCO", seed=1), smiles_to_3d("CCCO", seed=2)
    np.testing.assert_array_equal(a.positions, b.positions)
    assert not np.allclose(a.positions, c.positions)


def test_uff_fallback_and_no_forcefield_are_recorded():
    assert smiles_to_3d("C[Se]C").forcefield == "UFF"  # MMFF94 has no selenium parameters
    assert smiles_to_3d("F[Xe]F").forcefield == "none"


@pytest.mark.parametrize("smiles, reason", [("", "empty SMILES"), ("   ", "empty SMILES"),
                                             ("C1CC", "unparsable SMILES"), ("XYZ", "unparsable SMILES")])
def test_failures_are_reasons_not_exceptions(smiles, reason):
    assert smiles_to_3d(smiles) == reason


def test_screen_runs_before_embedding_on_atoms_with_hydrogens():
    seen = []

    def screen(z):
        seen.append(z.tolist())
        return "too big" if len(z) > 5 else None

    assert smiles_to_3d("CC", screen=screen) == "too big"
    assert isinstance(smiles_to_3d("C", screen=screen), Conformer)
    assert seen == [[6, 6, 1, 1, 1, 1, 1, 1], [6, 1, 1, 1, 1]]


def test_embed_many_keeps_input_order_and_matches_serial():
    smiles = ["CCO", "bad(", "c1ccccc1", "N#N", "", "CC(=O)O"] * 6  # > one chunk of work
    serial = embed_many(smiles, workers=1, progress=False)
    pooled = embed_many(smiles, workers=2, progress=False)
    assert len(pooled) == len(smiles)
    for s, a, b in zip(smiles, serial, pooled):
        if isinstance(a, str):
            assert a == b
        else:
            assert b.smiles == a.smiles == smiles_to_3d(s).smiles
            np.testing.assert_array_equal(a.positions, b.positions)
    assert pooled[1] == "unparsable SMILES" and pooled[4] == "empty SMILES"
