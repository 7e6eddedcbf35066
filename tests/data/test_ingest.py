"""Ingestion of the user's own molecules: exact rejects for every kind of bad record."""

from pathlib import Path

import numpy as np
import pytest

from moldiff.data.elements import QM9_ELEMENTS, AtomVocabulary
from moldiff.data.ingest import IngestResult, ingest, screen_atoms, screen_positions, write_rejects
from moldiff.data.molset import MolSet
from moldiff.errors import MoldiffError

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def mixed_smi() -> IngestResult:
    return ingest(FIXTURES / "mixed.smi", QM9_ELEMENTS, workers=2, progress=False)


def test_smi_rejects_are_exact(mixed_smi):
    assert mixed_smi.rejects == [(1, "unparsable SMILES"),
                                 (3, "element Cl not in vocabulary (H, C, N, O, F)")]  # fmt: skip
    assert mixed_smi.summary("out.rejects.csv") == "read 5, kept 3, rejected 2 (see out.rejects.csv)"


def test_smi_output_is_a_qm9_like_molset(mixed_smi):
    data = mixed_smi.molset
    assert isinstance(data, MolSet)
    assert data.ids.tolist() == [0, 2, 4]
    assert data.smiles.tolist() == ["CCO", "Oc1ccccc1", "O"]  # RDKit canonical
    assert data.n_atoms.tolist() == [9, 13, 3]  # explicit hydrogens
    assert data.atomic_numbers[:3].tolist() == [6, 6, 8]
    assert data.positions.dtype == np.float32 and np.isfinite(data.positions).all()
    assert mixed_smi.forcefields == ["MMFF94"] * 3
    QM9_ELEMENTS.encode(data.atomic_numbers)  # every atom is representable


def test_smi_is_reproducible_and_independent_of_workers(mixed_smi):
    again = ingest(FIXTURES / "mixed.smi", QM9_ELEMENTS, workers=1, progress=False)
    np.testing.assert_array_equal(again.molset.positions, mixed_smi.molset.positions)


def test_csv_smiles_column_and_numeric_properties():
    result = ingest(FIXTURES / "props.csv", QM9_ELEMENTS, max_atoms=12, workers=2, progress=False)
    assert result.rejects == [(2, "unparsable SMILES"), (3, "too many atoms (20 > 12)")]
    data = result.molset
    assert data.ids.tolist() == [0, 1, 4]
    assert data.smiles.tolist() == ["CCO", "CC(C)=O", "CN"]
    assert set(data.properties) == {"logp"}  # text columns (name, size) are not properties
    np.testing.assert_array_equal(data.properties["logp"], [-0.31, -0.24, np.nan])


def test_without_vocabulary_any_nameable_element_is_kept():
    result = ingest(FIXTURES / "mixed.smi", None, workers=1, progress=False)
    assert result.rejects == [(1, "unparsable SMILES")]
    assert "CC(=O)Cl" in result.molset.smiles.tolist()


def test_write_rejects(tmp_path):
    path = tmp_path / "out.rejects.csv"
    write_rejects(path, [(1, "unparsable SMILES"), (3, "element Cl not in vocabulary (H, C)")])
    assert path.read_text() == 'index,reason\n1,unparsable SMILES\n3,"element Cl not in vocabulary (H, C)"\n'
    write_rejects(path, [])
    assert path.read_text() == "index,reason\n"


@pytest.mark.parametrize("name, message", [
    ("missing.smi", "no such file"),
    ("empty.smi", "is empty"),
    ("blank.smi", "no molecules in"),
    ("no_smiles_column.csv", "has no SMILES column (a column named 'smiles'; found: name, logp)"),
])  # fmt: skip
def test_unreadable_files_raise_one_line_errors(name, message):
    with pytest.raises(MoldiffError) as info:
        ingest(FIXTURES / name, QM9_ELEMENTS, workers=1, progress=False)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unknown_extension_and_nothing_usable(tmp_path):
    (tmp_path / "mols.txt").write_text("CCO\n")
    with pytest.raises(MoldiffError, match="unknown file type"):
        ingest(tmp_path / "mols.txt")
    (tmp_path / "salts.smi").write_text("Cl\nCCl\n")
    with pytest.raises(MoldiffError, match=r"no usable molecules .*read 2, all rejected; most common reason: "
                                           r"element Cl not in vocabulary"):
        ingest(tmp_path / "salts.smi", QM9_ELEMENTS, workers=1, progress=False)


def test_screen_atoms_reasons():
    vocab = AtomVocabulary(("H", "C"))
    assert screen_atoms(np.array([6, 1, 1, 1, 1]), vocab, 5) is None
    assert screen_atoms(np.array([6, 1, 1, 1, 1]), vocab, 4) == "too many atoms (5 > 4)"
    assert screen_atoms(np.array([6, 17, 9]), vocab, None) == "elements F, Cl not in vocabulary (H, C)"
    assert screen_atoms(np.array([6, 0]), vocab, None) == "unsupported element (atomic number 0)"
    assert screen_atoms(np.array([6, 78]), None, None) == "unsupported element (atomic number 78)"
    assert screen_atoms(np.array([], dtype=int), None, None) == "no atoms"


def test_screen_positions_reasons():
    assert screen_positions(np.zeros((1, 3))) is None  # a lone atom may sit at the origin
    assert screen_positions(np.array([[0.0, 0, 0], [np.nan, 0, 0]])) == "NaN coordinates"
    assert screen_positions(np.array([[0.0, 0, 0], [np.inf, 0, 0]])) == "infinite coordinates"
    assert screen_positions(np.zeros((3, 3))) == "no coordinates (all atoms at one point)"


# ----------------------------------------------------------------------- SDF
BAD_SDF_REJECTS = [
    (1, "unparsable block: Range Error"),  # a bond to atom 12 of 8
    (2, "unparsable block: Cannot process coordinates on line 43"),  # a NaN coordinate
    (3, "no 3D coordinates (2D block, all z = 0)"),
    (4, "unsupported element Pt"),
    (5, "element Cl not in vocabulary (H, C, N, O, F)"),
    (6, "invalid chemistry: Explicit valence for atom # 0 C, 5, is greater than permitted"),
]


def test_good_sdf_keeps_coordinates_properties_and_canonical_smiles():
    result = ingest(FIXTURES / "good.sdf", QM9_ELEMENTS)
    assert result.rejects == [] and result.summary("x.csv") == "read 3, kept 3, rejected 0"
    data = result.molset
    assert data.ids.tolist() == [0, 1, 2]
    assert data.smiles.tolist() == ["CCO", "Oc1ccccc1", "CC(=O)O"]
    assert data.n_atoms.tolist() == [9, 13, 8]
    np.testing.assert_array_equal(data.properties["energy"], [-1.25, -3.5, -2.0])
    z, pos = data.molecule(0)
    assert z[:3].tolist() == [6, 6, 8]
    assert np.linalg.norm(pos[0] - pos[1]) == pytest.approx(1.51, abs=0.03)  # C-C, Å as in the file


def test_sdf_max_atoms():
    result = ingest(FIXTURES / "good.sdf", QM9_ELEMENTS, max_atoms=10)
    assert result.rejects == [(1, "too many atoms (13 > 10)")]
    assert result.molset.ids.tolist() == [0, 2]


def test_bad_sdf_rejects_are_exact():
    result = ingest(FIXTURES / "bad.sdf", QM9_ELEMENTS)
    assert result.rejects == BAD_SDF_REJECTS
    assert result.molset.ids.tolist() == [0] and result.molset.smiles.tolist() == ["CO"]
    assert result.summary("bad.rejects.csv") == "read 7, kept 1, rejected 6 (see bad.rejects.csv)"


def test_sdf_that_is_not_an_sdf_is_a_one_line_error():
    with pytest.raises(MoldiffError, match="no molecule block found"):
        ingest(FIXTURES / "garbage.sdf")
