"""PropertyPredictor: E(3)- and permutation-invariant per-molecule outputs, molecules independent."""

import pytest
import torch
from e3nn import o3

from moldiff.nets import PropertyPredictor


def _inputs():
    torch.manual_seed(0)
    ptr = torch.tensor([0, 4, 9, 12])
    batch = torch.repeat_interleave(torch.arange(3), ptr[1:] - ptr[:-1])
    return torch.randn(12, 3, dtype=torch.float64), torch.randn(12, 5, dtype=torch.float64), \
        torch.rand(3, dtype=torch.float64), batch, ptr


def test_invariant_to_rotation_reflection_translation_and_order():
    net = PropertyPredictor(5, 2, hidden=16, layers=3).double()
    x, h, t, batch, ptr = _inputs()
    y = net(x, h, t, batch, ptr)
    assert y.shape == (3, 2)
    rot = -o3.rand_matrix().double()
    torch.testing.assert_close(net(x @ rot.T + torch.randn(3, dtype=torch.float64), h, t, batch, ptr), y)
    perm = torch.cat([torch.randperm(4), 4 + torch.randperm(5), 9 + torch.randperm(3)])
    torch.testing.assert_close(net(x[perm], h[perm], t, batch, ptr), y)
    alone = net(x[4:9], h[4:9], t[1:2], torch.zeros(5, dtype=torch.long), torch.tensor([0, 5]))
    torch.testing.assert_close(alone, y[1:2])


def test_shapes_are_checked():
    net = PropertyPredictor(5, 1, hidden=8, layers=1)
    x, h, t, batch, ptr = _inputs()
    with pytest.raises(ValueError, match="PropertyPredictor expects"):
        net(x.float(), h[:, :4].float(), t.float(), batch, ptr)
