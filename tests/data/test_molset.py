import numpy as np
import pytest

from moldiff.data.molset import MolSet
from moldiff.errors import MoldiffError


def _toy() -> MolSet:
    # water, methane, a lone fluorine atom
    z = [8, 1, 1, 6, 1, 1, 1, 1, 9]
    pos = np.arange(27, dtype=np.float32).reshape(9, 3)
    return MolSet(z, pos, ptr=[0, 3, 8, 9], charges=[0, 0, 0, 0, 0, 0, 0, 0, -1],
                  smiles=["O", "C", "[F-]"], properties={"p": [1.0, 2.0, 3.0]})


def test_shapes_and_dtypes():
    data = _toy()
    assert len(data) == 3
    assert data.n_atoms.tolist() == [3, 5, 1]
    assert data.batch.tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 2]
    assert data.positions.dtype == np.float32 and data.atomic_numbers.dtype == np.int64
    assert data.ids.tolist() == [0, 1, 2]


def test_bad_shapes_name_what_they_got():
    with pytest.raises(ValueError, match=r"positions must be \(3, 3\), got \(3, 2\)"):
        MolSet([1, 1, 8], np.zeros((3, 2)), ptr=[0, 3])
    with pytest.raises(ValueError, match="ptr"):
        MolSet([1, 1, 8], np.zeros((3, 3)), ptr=[0, 2])
    with pytest.raises(ValueError, match=r"p must be \(1,\)"):
        MolSet([1], np.zeros((1, 3)), ptr=[0, 1], properties={"p": [1.0, 2.0]})


def test_subset_keeps_order_and_fields():
    data = _toy()
    sub = data.subset([2, 0])
    assert sub.n_atoms.tolist() == [1, 3]
    assert sub.atomic_numbers.tolist() == [9, 8, 1, 1]
    np.testing.assert_array_equal(sub.positions, data.positions[[8, 0, 1, 2]])
    assert sub.charges.tolist() == [-1, 0, 0, 0]
    assert sub.ids.tolist() == [2, 0] and sub.smiles.tolist() == ["[F-]", "O"]
    assert sub.properties["p"].tolist() == [3.0, 1.0]
    assert data.subset(slice(1, 3)).ids.tolist() == [1, 2]
    assert len(data.subset([])) == 0


def test_without_hydrogens():
    heavy = _toy().without_hydrogens()
    assert len(heavy) == 3
    assert heavy.n_atoms.tolist() == [1, 1, 1]
    assert heavy.atomic_numbers.tolist() == [8, 6, 9]
    assert (heavy.atomic_numbers != 1).all()
    assert heavy.smiles.tolist() == ["O", "C", "[F-]"]


def test_save_load_round_trip(tmp_path):
    data = _toy()
    data.save(tmp_path / "toy.npz")
    back = MolSet.load(tmp_path / "toy.npz")
    for name in ("atomic_numbers", "positions", "ptr", "charges", "ids", "smiles"):
        np.testing.assert_array_equal(getattr(back, name), getattr(data, name))
    assert back.properties.keys() == data.properties.keys()
    np.testing.assert_array_equal(back.properties["p"], data.properties["p"])
    assert not list(tmp_path.glob(".*tmp*"))  # the atomic write left no temporary file


def test_load_garbage_is_a_one_line_error(tmp_path):
    (tmp_path / "bad.npz").write_text("not a zip")
    with pytest.raises(MoldiffError, match="cannot read molecule set"):
        MolSet.load(tmp_path / "bad.npz")


def test_concat():
    a, b = _toy(), _toy().subset([1])
    both = MolSet.concat([a, b])
    assert len(both) == 4
    assert both.n_atoms.tolist() == [3, 5, 1, 5]
    np.testing.assert_array_equal(both.positions[9:], b.positions)
    assert both.smiles.tolist() == ["O", "C", "[F-]", "C"]
    assert both.properties["p"].tolist() == [1.0, 2.0, 3.0, 2.0]
    with pytest.raises(ValueError):
        MolSet.concat([])


def test_concat_drops_properties_not_in_every_set():
    a = _toy()
    b = MolSet([1], np.zeros((1, 3)), ptr=[0, 1])
    both = MolSet.concat([a, b])
    assert both.properties == {} and both.smiles is None


def test_histogram_and_element_frequencies():
    data = _toy()
    assert data.atom_count_histogram() == {1: 1, 3: 1, 5: 1}
    freqs = data.element_frequencies()
    assert freqs == pytest.approx({1: 6 / 9, 6: 1 / 9, 8: 1 / 9, 9: 1 / 9})
    assert sum(freqs.values()) == pytest.approx(1.0)
