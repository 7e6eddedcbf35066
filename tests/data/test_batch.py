import numpy as np
import pytest
import torch

from moldiff.data.batch import MolBatch, collate
from moldiff.data.com import max_abs_mean
from moldiff.data.elements import QM9_ELEMENTS
from moldiff.data.molset import MolSet
from moldiff.errors import MoldiffError


def _set() -> MolSet:
    z = [8, 1, 1, 6, 1, 1, 1, 1]
    pos = np.random.default_rng(0).normal(size=(8, 3)) + 5.0
    return MolSet(z, pos, ptr=[0, 3, 8], charges=[0, 0, 0, 1, 0, 0, 0, 0], properties={"gap": [1.0, 2.0]})


def _batch(**override) -> MolBatch:
    fields = dict(pos=torch.zeros(5, 3), atom_type=torch.zeros(5, dtype=torch.long),
                  charge=torch.zeros(5, dtype=torch.long), batch=torch.tensor([0, 0, 0, 1, 1]),
                  ptr=torch.tensor([0, 3, 5]), props=torch.zeros(2, 0))  # fmt: skip
    fields.update(override)
    return MolBatch(**fields)


def test_collate_shapes_and_types():
    data = _set()
    b = collate(data, [1, 0], QM9_ELEMENTS, property_names=("gap",))
    assert b.num_graphs == 2 and b.num_atoms.tolist() == [5, 3]
    assert b.pos.shape == (8, 3) and b.pos.dtype == torch.float32
    assert b.atom_type.tolist() == [1, 0, 0, 0, 0, 3, 0, 0]  # C H H H H O H H in H,C,N,O,F
    assert b.charge.tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    assert b.batch.tolist() == [0, 0, 0, 0, 0, 1, 1, 1]
    assert b.ptr.tolist() == [0, 5, 8]
    assert b.props.shape == (2, 1) and b.props[:, 0].tolist() == [2.0, 1.0]
    assert collate(data, [0], QM9_ELEMENTS).props.shape == (1, 0)


def test_collate_rejects_elements_outside_the_vocabulary():
    data = MolSet([6, 17], np.zeros((2, 3)), ptr=[0, 2])
    with pytest.raises(MoldiffError, match=r"\[17\] are not in the vocabulary"):
        collate(data, [0], QM9_ELEMENTS)


@pytest.mark.parametrize("override, message", [
    ({"pos": torch.zeros(5, 2)}, r"pos must have shape \(5, 3\), got \(5, 2\)"),
    ({"atom_type": torch.zeros(4, dtype=torch.long)}, r"atom_type must have shape \(5,\), got \(4,\)"),
    ({"charge": torch.zeros(5, 1, dtype=torch.long)}, r"charge must have shape \(5,\), got \(5, 1\)"),
    ({"batch": torch.zeros(6, dtype=torch.long)}, r"batch must have shape \(5,\), got \(6,\)"),
    ({"props": torch.zeros(3, 1)}, r"props must have shape \(2, P\), got \(3, 1\)"),
    ({"props": torch.zeros(2)}, r"props must have shape \(2, P\), got \(2,\)"),
])  # fmt: skip
def test_shape_errors_print_the_shapes(override, message):
    with pytest.raises(ValueError, match=message):
        _batch(**override)


def test_centred_batch_has_zero_mean_per_molecule():
    b = collate(_set(), [0, 1], QM9_ELEMENTS)
    assert max_abs_mean(b.pos, b.batch) > 1.0
    c = b.centred()
    assert max_abs_mean(c.pos, c.batch) < 1e-5
    # centring moves each molecule rigidly: distances are unchanged
    torch.testing.assert_close(torch.cdist(c.pos[:3], c.pos[:3]), torch.cdist(b.pos[:3], b.pos[:3]))


def test_to_moves_every_tensor():
    b = _batch().to("cpu")
    assert b.pos.device.type == "cpu" and b.ptr.device.type == "cpu"
