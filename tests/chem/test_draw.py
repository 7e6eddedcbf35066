import numpy as np
import pytest

from moldiff.chem.draw import grid_from_smiles, grid_image, molset_to_mols
from moldiff.data.molset import MolSet


def _water_and_ethane() -> MolSet:
    z = [8, 1, 1, 6, 6, 1, 1, 1, 1, 1, 1]
    pos = [[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0],
           [10, 0, 0], [11.54, 0, 0], [9.6, 1.0, 0], [9.6, -0.5, 0.9], [9.6, -0.5, -0.9],
           [11.94, 1.0, 0], [11.94, -0.5, 0.9], [11.94, -0.5, -0.9]]  # fmt: skip
    return MolSet(z, np.array(pos), ptr=[0, 3, 11])


def test_molset_to_mols_uses_edm_bonds_and_keeps_coordinates():
    water, ethane = molset_to_mols(_water_and_ethane())
    assert water.GetNumAtoms() == 3 and water.GetNumBonds() == 2
    assert ethane.GetNumAtoms() == 8 and ethane.GetNumBonds() == 7
    assert ethane.GetConformer().GetAtomPosition(1).x == pytest.approx(11.54)


def test_grid_image_png_and_svg():
    data = _water_and_ethane()
    img = grid_image(data, n_cols=2, size=(100, 80))
    assert img.size == (200, 80)
    svg = grid_image(data, svg=True, legends=["water", "ethane"])
    assert svg.lstrip().startswith("<?xml") and "class='legend'" in svg  # legends drawn as paths


def test_grid_image_draws_invalid_molecules_and_checks_legends():
    # five carbons on a cross: the EDM rule gives the centre four triple bonds (invalid chemistry)
    cross = MolSet([6] * 5, np.array([[0, 0, 0], [1.2, 0, 0], [-1.2, 0, 0], [0, 1.2, 0], [0, -1.2, 0]]), ptr=[0, 5])
    assert grid_image(cross).size[0] > 0
    with pytest.raises(ValueError, match="1 legends for 2 molecules"):
        grid_image(_water_and_ethane(), legends=["only one"])


def test_grid_image_prefers_smiles():
    data = _water_and_ethane()
    by_geometry = grid_image(data, svg=True, legends=["a", "b"])
    data.smiles = np.array(["O", "CC"])
    assert grid_image(data, svg=True, legends=["a", "b"]) == by_geometry  # same molecules
    data.smiles = np.array(["O", "c1ccccc1"])  # the drawing follows the SMILES, not the geometry
    assert grid_image(data, svg=True, legends=["a", "b"]).count("class='bond-") > by_geometry.count("class='bond-")


def test_grid_highlights_a_scaffold_only_where_its_bond_orders_are_kept():
    amide, imidate = "CNC(=O)c1ccccc1", "CN=C(OC)c1ccccc1"  # a benzamide; grown on the oxygen instead
    plain = grid_from_smiles([amide, imidate], n_cols=1)
    marked = grid_from_smiles([amide, imidate], n_cols=1, highlight="NC(=O)c1ccccc1")
    assert "#FF7F7F" not in plain and "#FF7F7F" in marked  # RDKit's highlight colour
    only_imidate = grid_from_smiles([imidate], highlight="NC(=O)c1ccccc1")
    assert "#FF7F7F" not in only_imidate
    assert grid_from_smiles([amide], highlight="not a smiles") == grid_from_smiles([amide])
