"""SDF and XYZ: write -> read round trips, and every kind of bad input."""

from __future__ import annotations

import numpy as np
import pytest
from chem_molecules import ETHANOL, GLYCINE_CHARGES, GLYCINE_ZWITTERION, WATER, molset_of
from rdkit import Chem

from moldiff.chem.io import format_value, read_molecules, read_sdf, read_xyz, write_sdf, write_xyz
from moldiff.data.molset import MolSet
from moldiff.errors import MoldiffError


def _same_molecules(a, b, atol):
    assert len(a) == len(b)
    np.testing.assert_array_equal(a.atomic_numbers, b.atomic_numbers)
    np.testing.assert_array_equal(a.ptr, b.ptr)
    np.testing.assert_allclose(a.positions, b.positions, atol=atol)


# ------------------------------------------------------------------------------ round trips
def test_sdf_round_trip(tmp_path, small_set):
    path = tmp_path / "mols.sdf"
    write_sdf(path, small_set, {"label": ["a", "b", "c"], "score": [0.5, 0.25, 1 / 3]})
    back, rejects = read_sdf(path)
    assert rejects == []
    _same_molecules(small_set, back, atol=1e-4)  # the V2000 format keeps 4 decimals
    assert back.ids.tolist() == [0, 1, 2]
    for name in ("energy", "gap", "score"):
        np.testing.assert_allclose(back.properties[name], small_set.properties.get(name, [0.5, 0.25, 1 / 3]), atol=5e-4)
    assert "label" not in back.properties  # non-numeric: not representable in a MolSet
    text = path.read_text()
    assert "0.333\n" in text and "0.33333" not in text  # formatted strings, not doubles


def test_sdf_round_trip_keeps_formal_charges(tmp_path):
    s = molset_of(GLYCINE_ZWITTERION, WATER, charges=np.concatenate([GLYCINE_CHARGES, [0, 0, 0]]))
    write_sdf(tmp_path / "z.sdf", s)
    back, _ = read_sdf(tmp_path / "z.sdf")
    np.testing.assert_array_equal(back.charges, s.charges)


def test_sdf_writes_inferred_bonds_and_names(tmp_path):
    s = molset_of(ETHANOL)
    write_sdf(tmp_path / "e.sdf", s, names=["ethanol"])
    mol = next(iter(Chem.SDMolSupplier(str(tmp_path / "e.sdf"), removeHs=False)))
    assert mol.GetProp("_Name") == "ethanol" and mol.GetNumBonds() == 8
    write_sdf(tmp_path / "atoms.sdf", s, bonds=False)
    mol = next(iter(Chem.SDMolSupplier(str(tmp_path / "atoms.sdf"), sanitize=False, removeHs=False)))
    assert mol.GetNumBonds() == 0


def test_sdf_from_rdkit_molecules(tmp_path):
    mol = Chem.AddHs(Chem.MolFromSmiles("CO"))
    from rdkit.Chem import AllChem

    AllChem.EmbedMolecule(mol, randomSeed=1)
    write_sdf(tmp_path / "r.sdf", [mol], {"qed": [0.40000000000000002]})
    assert "\n0.400\n" in (tmp_path / "r.sdf").read_text()
    back, _ = read_sdf(tmp_path / "r.sdf")
    np.testing.assert_allclose(back.positions, mol.GetConformer().GetPositions(), atol=1e-4)


def test_xyz_round_trip(tmp_path, small_set):
    path = tmp_path / "mols.xyz"
    write_xyz(path, small_set)
    back, rejects = read_xyz(path)
    assert rejects == []
    _same_molecules(small_set, back, atol=1e-6)
    for name, values in small_set.properties.items():
        np.testing.assert_allclose(back.properties[name], values, atol=5e-4)
    lines = path.read_text().splitlines()
    assert lines[0] == "3" and lines[1].startswith("energy=-1.250 gap=1.000") and lines[5] == "9"


def test_xyz_custom_comments(tmp_path, small_set):
    write_xyz(tmp_path / "c.xyz", small_set, comments=["one", "two\nlines", "three"])
    lines = (tmp_path / "c.xyz").read_text().splitlines()
    assert lines[1] == "one" and lines[6] == "two lines"


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path, small_set):
    write_sdf(tmp_path / "a.sdf", small_set)
    write_xyz(tmp_path / "a.xyz", small_set)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.sdf", "a.xyz"]


def test_format_value():
    assert format_value(0.40000000000000002) == "0.400"
    assert format_value(np.float32(1.5)) == "1.500"
    assert format_value(3) == "3" and format_value("x") == "x"
    assert format_value(2.5e-5) == "2.5000e-05"


# ------------------------------------------------------------------------------ bad input
def _ethanol_block(tmp_path) -> str:
    write_sdf(tmp_path / "ethanol.sdf", molset_of(ETHANOL))
    return (tmp_path / "ethanol.sdf").read_text()


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("reader, name", [(read_sdf, "e.sdf"), (read_xyz, "e.xyz")])
def test_empty_file_is_an_error(tmp_path, reader, name):
    with pytest.raises(MoldiffError, match="empty"):
        reader(_write(tmp_path, name, "  \n\n"))


@pytest.mark.parametrize("reader, name", [(read_sdf, "g.sdf"), (read_xyz, "g.xyz")])
def test_garbage_is_an_error(tmp_path, reader, name):
    with pytest.raises(MoldiffError) as info:
        reader(_write(tmp_path, name, "this is not\na molecule file\nat all\n"))
    assert "\n" not in str(info.value)


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(MoldiffError, match="no such file"):
        read_sdf(tmp_path / "nope.sdf")
    with pytest.raises(MoldiffError, match="unknown extension"):
        read_molecules(_write(tmp_path, "mols.pdb", "ATOM\n"))


def test_sdf_bad_blocks_are_rejected_with_reasons(tmp_path):
    good = _ethanol_block(tmp_path)
    lines = good.splitlines()
    atom_line = lines[4]
    nan_block = "\n".join(lines[:4] + ["       nan" + atom_line[10:]] + lines[5:]) + "\n"
    xx_block = good.replace(" O   0", " Xx  0", 1)
    flat = Chem.MolToMolBlock(Chem.MolFromSmiles("CCO")) + "$$$$\n"  # 2D depiction-less block, z = 0
    xe_block = good.replace(" O   0", " Xe  0", 1)
    path = _write(tmp_path, "bad.sdf", good + nan_block + xx_block + flat + xe_block + good)
    molset, rejects = read_sdf(path)
    assert molset.ids.tolist() == [0, 5] and len(molset) == 2
    reasons = dict(rejects)
    assert sorted(reasons) == [1, 2, 3, 4]
    assert "coordinates" in reasons[1]
    assert "Xx" in reasons[2]
    assert "2D" in reasons[3]
    assert "Xe" in reasons[4]
    assert all("\n" not in r for r in reasons.values())


def test_sdf_with_only_bad_blocks_is_an_error(tmp_path):
    flat = Chem.MolToMolBlock(Chem.MolFromSmiles("CCO")) + "$$$$\n"
    with pytest.raises(MoldiffError, match="no molecule could be read.*2D"):
        read_sdf(_write(tmp_path, "flat.sdf", flat * 2))


def test_planar_molecule_flagged_3d_is_accepted(tmp_path):
    z, pos = WATER
    flat = molset_of((z, pos * [1, 1, 0]))
    write_sdf(tmp_path / "w.sdf", flat)
    molset, rejects = read_sdf(tmp_path / "w.sdf")
    assert len(molset) == 1 and rejects == []


def test_xyz_bad_molecules_are_rejected_with_reasons(tmp_path):
    text = (
        "3\nok\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n"
        "3\nnan\nO nan 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n"
        "2\nunknown\nXx 0 0 0\nH 1 0 0\n"
        "2\nzeros\nC 0 0 0\nC 0 0 0\n"
        "2\nshort line\nC 0 0\nC 1.2 0 0\n"
        "1\nnumeric element\n8 0 0 0\n"
        "5\ntruncated\nC 0 0 0\n"
    )
    molset, rejects = read_xyz(_write(tmp_path, "bad.xyz", text))
    assert molset.ids.tolist() == [0, 5] and molset.atomic_numbers.tolist() == [8, 1, 1, 8]
    reasons = dict(rejects)
    assert sorted(reasons) == [1, 2, 3, 4, 6]
    assert "non-finite" in reasons[1]
    assert "Xx" in reasons[2]
    assert "zero" in reasons[3]
    assert "symbol x y z" in reasons[4]
    assert "truncated" in reasons[6]


def test_xyz_count_line_garbage_after_first_molecule(tmp_path):
    text = "1\n\nH 0 0 0\nnot a count\nmore\n"
    molset, rejects = read_xyz(_write(tmp_path, "x.xyz", text))
    assert len(molset) == 1 and rejects[0][0] == 1 and "rest of file skipped" in rejects[0][1]


def test_coordinates_too_large_for_v2000_are_written_as_v3000_and_read_back(tmp_path):
    far = MolSet(np.array([6, 8]), np.array([[0.0, 0.0, 0.0], [3.0e7, -2.0e6, 1.0]]), ptr=[0, 2])
    near = MolSet(np.array([6, 8]), np.array([[0.0, 0.0, 0.0], [1.2, 0.0, 0.0]]), ptr=[0, 2])
    for name, molset, version in (("far", far, "V3000"), ("near", near, "V2000")):
        path = tmp_path / f"{name}.sdf"
        write_sdf(path, molset)
        assert version in path.read_text()
        back, rejects = read_sdf(path)
        assert not rejects
        np.testing.assert_allclose(back.positions, molset.positions, rtol=1e-6)
