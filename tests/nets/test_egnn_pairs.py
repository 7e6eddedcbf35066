import pytest
import torch
from e3nn import o3
from e3nn.util.test import assert_equivariant

from moldiff.data.com import max_abs_mean
from moldiff.diffusion.state import MolGraph
from moldiff.nets.egnn_pairs import PairEGNN, molecule_pairs, pair_rows
from moldiff.nets.precision import set_precision

ATOM_IN, PAIR_IN, ATOM_OUT, PAIR_OUT, COND = 6, 4, 7, 5, 2


def _ptr(counts):
    counts = torch.tensor(counts)
    return torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)]), torch.repeat_interleave(
        torch.arange(len(counts)), counts
    )


def _molecules(seed=0, counts=(5, 3, 7), dtype=torch.float64):
    """x (N,3), h (N,F), e (P,F_pair), t (B,), batch, ptr, cond (B,C) for molecules of ``counts`` atoms."""
    g = torch.Generator().manual_seed(seed)
    ptr, batch = _ptr(counts)
    n, p = int(ptr[-1]), len(molecule_pairs(ptr)[0])
    return (torch.randn(n, 3, generator=g, dtype=dtype) * 1.5, torch.randn(n, ATOM_IN, generator=g, dtype=dtype),
            torch.randn(p, PAIR_IN, generator=g, dtype=dtype), torch.rand(len(counts), generator=g, dtype=dtype),
            batch, ptr, torch.randn(len(counts), COND, generator=g, dtype=dtype))  # fmt: skip


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = PairEGNN(ATOM_IN, PAIR_IN, ATOM_OUT, PAIR_OUT, hidden=16, layers=3, pair_hidden=8, cond_features=COND)
    model = model.double()
    for p in model.parameters():  # untrained heads start at zero: make them non-trivial
        p.data.add_(0.1 * torch.randn_like(p))
    return model


def test_molecule_pairs_are_the_upper_triangle_of_each_molecule():
    ptr, _ = _ptr((2, 1, 3))
    i, j = molecule_pairs(ptr)
    assert list(zip(i.tolist(), j.tolist())) == [(0, 1), (3, 4), (3, 5), (4, 5)]


def test_molecule_pairs_are_the_states_pairs_and_can_be_passed_in(net):
    x, h, e, t, batch, ptr, cond = _molecules(8, counts=(4, 1, 6))
    pairs = MolGraph.from_counts(torch.tensor([4, 1, 6])).with_pairs().pairs
    assert torch.equal(torch.stack(molecule_pairs(ptr), 1), pairs)
    out, given = net(x, h, e, t, batch, ptr, cond), net(x, h, e, t, batch, ptr, cond, pairs=pairs)
    assert all(torch.equal(a, b) for a, b in zip(out, given))


def test_pair_rows_finds_each_pair_in_either_order():
    ptr, _ = _ptr((5, 1, 7, 2))
    i, j = molecule_pairs(ptr)
    rows = torch.arange(len(i))
    assert torch.equal(pair_rows(ptr, i, j), rows)
    assert torch.equal(pair_rows(ptr, j, i), rows)
    with pytest.raises(ValueError, match="same molecule"):
        pair_rows(ptr, torch.tensor([4]), torch.tensor([6]))  # atom 4 ends molecule 0, 6 is in molecule 2
    with pytest.raises(ValueError, match="must lie in"):
        pair_rows(ptr, torch.tensor([13]), torch.tensor([15]))


def test_coordinates_equivariant_logits_invariant_e3nn(net):
    x, h, e, t, batch, ptr, cond = _molecules()

    def f(pos, feats, pairs):
        return tuple(net(pos, feats, pairs, t, batch, ptr, cond))

    # e3nn draws its rotations in float32, hence the tolerance
    errors = assert_equivariant(f, args_in=[x, h, e], irreps_in=["cartesian_points", None, None],
                                irreps_out=[o3.Irreps("1o"), None, None], tolerance=1e-4)  # fmt: skip
    assert len(errors) == 4  # proper and improper rotations, with and without translation


def test_rotation_reflection_translation_by_hand(net):
    x, h, e, t, batch, ptr, cond = _molecules(1)
    dx, atoms, pairs = net(x, h, e, t, batch, ptr, cond)
    for det in (1, -1):
        R = o3.rand_matrix(dtype=torch.float64) * det
        out = net(x @ R.T + torch.randn(1, 3, dtype=torch.float64), h, e, t, batch, ptr, cond)
        assert torch.allclose(out.x, dx @ R.T, atol=1e-10)
        assert torch.allclose(out.atoms, atoms, atol=1e-10)
        assert torch.allclose(out.pairs, pairs, atol=1e-10)


def _permuted(perm, ptr, e):
    """Pair features after renumbering atoms so that new atom a is old atom perm[a]."""
    i, j = molecule_pairs(ptr)
    rows = pair_rows(ptr, perm[i], perm[j])
    return e[rows], rows


def test_permutation_within_molecules(net):
    x, h, e, t, batch, ptr, cond = _molecules(2, counts=(6, 4))
    perm = torch.cat([torch.randperm(6), 6 + torch.randperm(4)])
    e2, rows = _permuted(perm, ptr, e)
    dx, atoms, pairs = net(x, h, e, t, batch, ptr, cond)
    out = net(x[perm], h[perm], e2, t, batch, ptr, cond)
    assert torch.allclose(out.x, dx[perm], atol=1e-10)
    assert torch.allclose(out.atoms, atoms[perm], atol=1e-10)
    assert torch.allclose(out.pairs, pairs[rows], atol=1e-10)  # bond logits follow their pairs


def test_swapping_two_atoms_keeps_their_pair_and_swaps_their_partners(net):
    """Pair (i, j) read as (j, i): its logits are unchanged, and (i, k), (j, k) trade places."""
    x, h, e, t, batch, ptr, cond = _molecules(3, counts=(5,))
    perm = torch.tensor([3, 1, 2, 0, 4])  # swap atoms 0 and 3
    e2, rows = _permuted(perm, ptr, e)
    pairs = net(x, h, e, t, batch, ptr, cond).pairs
    swapped = net(x[perm], h[perm], e2, t, batch, ptr, cond).pairs
    r03, r01, r13 = pair_rows(ptr, torch.tensor([0, 0, 1]), torch.tensor([3, 1, 3]))
    assert torch.allclose(swapped[r03], pairs[r03], atol=1e-10)
    assert torch.allclose(swapped[r01], pairs[r13], atol=1e-10) and not torch.allclose(pairs[r01], pairs[r13])
    assert torch.allclose(swapped, pairs[rows], atol=1e-10)


def test_update_is_zero_com_and_molecules_are_independent(net):
    x, h, e, t, batch, ptr, cond = _molecules(4, counts=(5, 1, 7))
    dx, atoms, pairs = net(x, h, e, t, batch, ptr, cond)
    assert max_abs_mean(dx, batch) < 1e-12
    # the third molecule alone gives the same outputs: no interaction across molecules
    sl, pl = slice(6, 13), slice(10, 31)  # atoms 6..12, pairs after molecule 0's 10 (the 1-atom one has none)
    alone = net(x[sl], h[sl], e[pl], t[2:], torch.zeros(7, dtype=torch.long), torch.tensor([0, 7]), cond[2:])
    assert torch.allclose(alone.x, dx[sl], atol=1e-10) and torch.allclose(alone.atoms, atoms[sl], atol=1e-10)
    assert torch.allclose(alone.pairs, pairs[pl], atol=1e-10)
    # changing molecule 0 changes nothing elsewhere
    x2, e2 = x.clone(), e.clone()
    x2[:5] += 0.3
    e2[:10] = -e2[:10]
    other = net(x2, h, e2, t, batch, ptr, cond)
    assert torch.equal(other.x[5:], dx[5:]) and torch.equal(other.pairs[10:], pairs[10:])
    assert not torch.allclose(other.pairs[:10], pairs[:10])


def test_pair_features_reach_every_output(net):
    x, h, e, t, batch, ptr, cond = _molecules(5)
    out = net(x, h, e, t, batch, ptr, cond)
    e2 = e.clone()
    e2[0] += 1.0  # one pair of molecule 0
    out2 = net(x, h, e2, t, batch, ptr, cond)
    assert not torch.allclose(out2.x[:5], out.x[:5]) and not torch.allclose(out2.atoms[:5], out.atoms[:5])
    assert not torch.allclose(out2.pairs[1:10], out.pairs[1:10])  # through the messages, not only its own row


def test_untrained_heads_start_at_zero():
    x, h, e, t, batch, ptr, cond = _molecules(6, dtype=torch.float32)
    out = PairEGNN(ATOM_IN, PAIR_IN, ATOM_OUT, PAIR_OUT, hidden=16, layers=2, cond_features=COND)(
        x, h, e, t, batch, ptr, cond
    )
    assert out.atoms.shape == (15, ATOM_OUT) and out.pairs.shape == (10 + 3 + 21, PAIR_OUT)
    assert not out.atoms.any() and not out.pairs.any()


def _conditioned_net():
    """As well conditioned as a trained network, with the zero-initialised heads opened."""
    torch.manual_seed(0)
    model = PairEGNN(ATOM_IN, PAIR_IN, ATOM_OUT, PAIR_OUT, hidden=32, layers=3, pair_hidden=16)
    torch.nn.init.normal_(model.out[1].weight, std=0.1)
    torch.nn.init.normal_(model.pair_head[3].weight, std=0.1)
    for layer in model.layers:
        torch.nn.init.normal_(layer.coord_mlp[2].weight, std=0.01)
    return model


def test_bf16_stays_close_to_fp32_keeps_dtypes_and_trains():
    model = _conditioned_net()
    x, h, e, t, batch, ptr, _ = _molecules(7, counts=(9, 4, 12), dtype=torch.float32)
    x = x + 5.0  # off-centre: coordinates bfloat16 could not hold
    ref = model(x, h, e, t, batch, ptr)
    out = set_precision(model, "bf16")(x, h, e, t, batch, ptr)
    assert all(o.dtype == torch.float32 for o in out)
    assert not torch.equal(out.x, ref.x)  # bfloat16 did run
    for a, b in zip(out, ref):
        assert (a - b).norm() / b.norm() < 0.03  # a few bfloat16 roundings
    assert max_abs_mean(out.x, batch) < 1e-5
    (out.x.square().sum() + out.atoms.square().sum() + out.pairs.square().sum()).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(grads) > 20 and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)


def test_shape_errors_name_the_shapes(net):
    x, h, e, t, batch, ptr, cond = _molecules()
    with pytest.raises(ValueError, match=r"\(34, 3\)"):
        net(x, h, e[:, :3], t, batch, ptr, cond)
    with pytest.raises(ValueError, match="cond"):
        net(x, h, e, t, batch, ptr, None)


@pytest.fixture(scope="module")
def self_conditioned():
    torch.manual_seed(1)
    model = PairEGNN(ATOM_IN, PAIR_IN, ATOM_OUT, PAIR_OUT, hidden=16, layers=2, pair_hidden=8, cond_features=COND,
                     self_conditioning=True).double()  # fmt: skip
    for p in model.parameters():
        p.data.add_(0.1 * torch.randn_like(p))
    return model


def _previous(seed, x, ptr):
    from moldiff.nets.egnn_pairs import PairOutput

    g = torch.Generator().manual_seed(seed)
    p = len(molecule_pairs(ptr)[0])
    return PairOutput(x + 0.3 * torch.randn(x.shape, generator=g, dtype=x.dtype),
                      torch.randn(x.shape[0], ATOM_OUT, generator=g, dtype=x.dtype),
                      torch.randn(p, PAIR_OUT, generator=g, dtype=x.dtype))  # fmt: skip


def test_self_conditioning_reads_the_previous_estimate_and_stays_equivariant(self_conditioned):
    from moldiff.nets.egnn_pairs import PairOutput

    net = self_conditioned
    x, h, e, t, batch, ptr, cond = _molecules(4)
    prev = _previous(5, x, ptr)
    none = net(x, h, e, t, batch, ptr, cond)
    zeros = net(x, h, e, t, batch, ptr, cond, previous=PairOutput(torch.zeros_like(x), *(torch.zeros_like(v)
                                                                   for v in prev[1:])))  # fmt: skip
    assert all(torch.allclose(a, b) for a, b in zip(none, zeros))  # no estimate reads as zeros
    fed = net(x, h, e, t, batch, ptr, cond, previous=prev)
    assert not torch.allclose(fed.atoms, none.atoms) and not torch.allclose(fed.pairs, none.pairs)
    for det in (1, -1):  # the estimate's coordinates move with the input's
        R = o3.rand_matrix(dtype=torch.float64) * det
        shift = torch.randn(1, 3, dtype=torch.float64)
        moved = PairOutput(prev.x @ R.T + shift, prev.atoms, prev.pairs)
        out = net(x @ R.T + shift, h, e, t, batch, ptr, cond, previous=moved)
        assert torch.allclose(out.x, fed.x @ R.T, atol=1e-10)
        assert torch.allclose(out.atoms, fed.atoms, atol=1e-10) and torch.allclose(out.pairs, fed.pairs, atol=1e-10)
