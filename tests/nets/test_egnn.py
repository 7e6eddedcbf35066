import pytest
import torch
from e3nn import o3
from e3nn.util.test import assert_equivariant

from moldiff.data.com import max_abs_mean
from moldiff.nets.egnn import EGNN
from moldiff.nets.graph import fully_connected_edges


def _molecules(seed=0, counts=(5, 3, 7), features=5):
    g = torch.Generator().manual_seed(seed)
    counts = torch.tensor(counts)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    batch = torch.repeat_interleave(torch.arange(len(counts)), counts)
    n = int(ptr[-1])
    return (torch.randn(n, 3, generator=g, dtype=torch.float64) * 1.5,
            torch.randn(n, features, generator=g, dtype=torch.float64),
            torch.rand(len(counts), generator=g, dtype=torch.float64), batch, ptr)  # fmt: skip


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = EGNN(in_features=5, hidden=16, layers=3, cond_features=2).double()
    for p in model.parameters():  # untrained output layers start at zero: make them non-trivial
        p.data.add_(0.1 * torch.randn_like(p))
    return model


def test_fully_connected_edges_stay_inside_molecules():
    ptr = torch.tensor([0, 2, 5])
    src, dst = fully_connected_edges(ptr)
    pairs = set(zip(src.tolist(), dst.tolist()))
    assert pairs == {(0, 1), (1, 0), (2, 3), (2, 4), (3, 2), (3, 4), (4, 2), (4, 3)}


def test_coordinates_equivariant_features_invariant_e3nn(net):
    x, h, t, batch, ptr = _molecules()
    cond = torch.randn(3, 2, dtype=torch.float64)

    def f(pos, feats):
        return net(pos, feats, t, batch, ptr, cond)

    # positions are Cartesian points (rotated, reflected and translated); features are invariant.
    # e3nn draws its rotations in float32, hence the tolerance.
    errors = assert_equivariant(f, args_in=[x, h], irreps_in=["cartesian_points", None],
                                irreps_out=[o3.Irreps("1o"), None], tolerance=1e-4)  # fmt: skip
    assert len(errors) == 4  # proper and improper rotations, with and without translation


def test_rotation_reflection_translation_by_hand(net):
    x, h, t, batch, ptr = _molecules(1)
    cond = torch.randn(3, 2, dtype=torch.float64)
    dx, dh = net(x, h, t, batch, ptr, cond)
    for det in (1, -1):
        R = o3.rand_matrix(dtype=torch.float64) * det
        shift = torch.randn(1, 3, dtype=torch.float64)
        dx2, dh2 = net(x @ R.T + shift, h, t, batch, ptr, cond)
        assert torch.allclose(dx2, dx @ R.T, atol=1e-10)
        assert torch.allclose(dh2, dh, atol=1e-10)


def test_permutation_equivariance(net):
    x, h, t, batch, ptr = _molecules(2, counts=(6,))
    perm = torch.randperm(6)
    dx, dh = net(x, h, t, batch, ptr, torch.zeros(1, 2, dtype=torch.float64))
    dx2, dh2 = net(x[perm], h[perm], t, batch, ptr, torch.zeros(1, 2, dtype=torch.float64))
    assert torch.allclose(dx2, dx[perm], atol=1e-10)
    assert torch.allclose(dh2, dh[perm], atol=1e-10)


def test_outputs_zero_com_and_molecules_independent(net):
    x, h, t, batch, ptr = _molecules(3)
    cond = torch.randn(3, 2, dtype=torch.float64)
    dx, dh = net(x, h, t, batch, ptr, cond)
    assert max_abs_mean(dx, batch) < 1e-12
    # the second molecule alone gives the same output: no interaction across molecules
    sl = slice(int(ptr[1]), int(ptr[2]))
    dx1, dh1 = net(x[sl], h[sl], t[1:2], torch.zeros(3, dtype=torch.long), torch.tensor([0, 3]), cond[1:2])
    assert torch.allclose(dx1, dx[sl], atol=1e-10) and torch.allclose(dh1, dh[sl], atol=1e-10)


def test_shape_errors_name_the_shapes(net):
    x, h, t, batch, ptr = _molecules()
    with pytest.raises(ValueError, match=r"\(15, 4\)"):
        net(x, h[:, :4], t, batch, ptr, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="cond"):
        net(x, h, t, batch, ptr, None)
