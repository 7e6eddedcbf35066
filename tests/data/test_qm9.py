"""QM9 as the EDM benchmark sees it. The first load parses qm9pack's CSVs (about a minute) and caches
them; the wall-clock figure for a cached load is a benchmark (bench/bench_qm9_load.py), not a test."""

import numpy as np
import pytest

from moldiff.data.qm9 import HARTREE_TO_MEV, N_MOLECULES, SPLIT_SIZES, load_qm9, split_indices


@pytest.fixture(scope="module")
def qm9():
    return load_qm9()


def test_split_sizes_disjoint_and_covering():
    splits = split_indices()
    assert {k: len(v) for k, v in splits.items()} == {"train": 100_000, "valid": 17_748, "test": 13_083}
    assert sum(SPLIT_SIZES.values()) == N_MOLECULES == 130_831
    joined = np.concatenate(list(splits.values()))
    assert len(np.unique(joined)) == N_MOLECULES
    assert joined.min() == 0 and joined.max() == N_MOLECULES - 1


def test_edm_permutation_is_stable():
    # np.random.seed(0); np.random.permutation(130831), as EDM does: these must never change
    splits = split_indices()
    assert splits["train"][:5].tolist() == [130195, 68784, 7957, 25911, 20168]
    assert splits["valid"][:5].tolist() == [68751, 123554, 28669, 72737, 11612]
    assert splits["test"][:5].tolist() == [115839, 90242, 66405, 71231, 103168]


def test_split_leaves_global_numpy_rng_alone():
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    split_indices()
    assert np.random.rand() == expected


@pytest.mark.slow
def test_molecule_count_and_elements(qm9):
    assert len(qm9) == N_MOLECULES
    assert set(np.unique(qm9.atomic_numbers).tolist()) == {1, 6, 7, 8, 9}
    assert qm9.n_atoms.min() >= 1 and qm9.n_atoms.max() == 29
    assert (np.diff(qm9.ids) > 0).all()  # ascending GDB index
    assert np.isfinite(qm9.positions).all()


@pytest.mark.slow
def test_methane_and_units(qm9):
    # GDB index 1 is methane: HOMO-LUMO gap 0.5048 hartree, polarizability 13.21 Bohr^3
    assert qm9.ids[0] == 1 and qm9.smiles[0] == "C"
    z, pos = qm9.molecule(0)
    assert sorted(z.tolist()) == [1, 1, 1, 1, 6]
    ch = np.linalg.norm(pos[z == 1] - pos[z == 6], axis=1)
    assert ch == pytest.approx(1.09, abs=0.01)  # Å, not Bohr
    assert qm9.properties["gap"][0] == pytest.approx(0.5048 * HARTREE_TO_MEV)
    assert qm9.properties["gap"][0] == pytest.approx(13736.3, abs=0.1)  # meV
    assert qm9.properties["alpha"][0] == pytest.approx(13.21)
    gap = qm9.properties["lumo"] - qm9.properties["homo"]
    np.testing.assert_allclose(gap, qm9.properties["gap"], atol=30.0)  # table rounding only


@pytest.mark.slow
def test_split_subsets(qm9):
    test = load_qm9("test")
    assert len(test) == 13_083
    index = split_indices()["test"]
    assert test.ids.tolist() == qm9.ids[index].tolist()
    np.testing.assert_array_equal(test.positions[: test.ptr[1]], qm9.molecule(int(index[0]))[1])


@pytest.mark.slow
def test_heavy_atom_variant(qm9):
    heavy = load_qm9(hydrogens=False)
    assert len(heavy) == len(qm9)
    assert (heavy.atomic_numbers != 1).all()
    assert heavy.n_atoms.tolist() == np.add.reduceat((qm9.atomic_numbers != 1).astype(int), qm9.ptr[:-1]).tolist()
    assert heavy.n_atoms.max() == 9
