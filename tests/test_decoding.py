"""Reading elements from type features: argmax, and closed-shell decoding that gives each molecule
an even electron count by the cheapest single change; reading a graph model's bonds: argmax, and
valence decoding that gives no atom more bond orders than it may carry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moldiff.decoding import decode_bonds, decode_types, max_valence

Z = torch.tensor([1, 6, 7, 8])  # H C N O: H and N have odd atomic numbers


def _features(rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_argmax_reads_the_largest_feature():
    f = _features([[0.1, 0.9, 0.0, 0.0], [0.0, 0.2, 0.7, 0.1]])
    assert decode_types(f, Z, torch.tensor([0, 0]), 1).tolist() == [1, 2]


def test_closed_shell_changes_only_the_cheapest_atom_of_an_odd_molecule():
    # molecule 0: C C N -> 7 + 12 = odd; the first C is nearly an N (cost 0.05), the N is a sure N
    # molecule 1: C O -> even, left alone even though its C is nearly an N
    f = _features([
        [0.0, 0.50, 0.45, 0.0],
        [0.0, 0.90, 0.10, 0.0],
        [0.0, 0.30, 0.70, 0.0],
        [0.0, 0.50, 0.49, 0.0],
        [0.0, 0.00, 0.00, 0.9],
    ])  # fmt: skip
    batch = torch.tensor([0, 0, 0, 1, 1])
    assert decode_types(f, Z, batch, 2, "argmax").tolist() == [1, 1, 2, 1, 3]
    types = decode_types(f, Z, batch, 2, "closed-shell")
    assert types.tolist() == [2, 1, 2, 1, 3]
    electrons = torch.zeros(2, dtype=torch.long).index_add_(0, batch, Z[types])
    assert (electrons % 2 == 0).all()


def test_fixed_atoms_keep_their_type():
    f = _features([[0.0, 0.50, 0.45, 0.0], [0.0, 0.90, 0.20, 0.0], [0.0, 0.0, 0.7, 0.0]])
    fixed = torch.tensor([True, False, False])
    types = decode_types(f, Z, torch.tensor([0, 0, 0]), 1, "closed-shell", fixed)
    assert types.tolist() == [1, 2, 2]  # the fixed near-N stays C; the next cheapest changes


def test_closed_shell_is_equivariant_to_atom_order():
    g = torch.Generator().manual_seed(0)
    f = torch.rand(12, 4, generator=g, dtype=torch.float64)
    batch = torch.tensor([0] * 5 + [1] * 7)
    types = decode_types(f, Z, batch, 2, "closed-shell")
    perm = torch.cat([torch.randperm(5, generator=g), 5 + torch.randperm(7, generator=g)])
    assert torch.equal(decode_types(f[perm], Z, batch, 2, "closed-shell"), types[perm])
    electrons = torch.zeros(2, dtype=torch.long).index_add_(0, batch, Z[types])
    assert (electrons % 2 == 0).all()


def test_unknown_decoding_is_an_error():
    with pytest.raises(ValueError, match="closed-shell"):
        decode_types(_features([[1.0, 0, 0, 0]]), Z, torch.tensor([0]), 1, "parity")


# ------------------------------------------------------------------------------------ bonds

def test_max_valence_follows_element_and_charge():
    assert [max_valence(z, 0) for z in (1, 6, 7, 8, 9)] == [1, 4, 3, 2, 1]
    assert max_valence(7, 1) == 4 and max_valence(8, -1) == 1 and max_valence(8, 1) == 3 and max_valence(16, 0) == 6


def _scores(rows):
    """Bond-class features (none, single, double, triple) per pair."""
    return torch.tensor(rows, dtype=torch.float32)


def test_valence_decoding_drops_the_weakest_bond_of_an_overfull_atom():
    # a carbon (0) with five neighbours (1..5); the pair (0, 3) is the weakest bond
    pairs = torch.tensor([[0, 1], [0, 2], [0, 3], [0, 4], [0, 5], [1, 2]])
    scores = _scores([[0, 1.0, 0, 0], [0, 0.9, 0, 0], [0, 0.2, 0, 0], [0, 0.8, 0, 0], [0, 0.7, 0, 0],
                      [0.5, 0.1, 0, 0]])  # fmt: skip
    z, q = np.array([6, 6, 6, 6, 6, 6]), np.zeros(6, int)
    assert decode_bonds(scores, pairs, z, q, "argmax").tolist() == [1, 1, 1, 1, 1, 0]
    assert decode_bonds(scores, pairs, z, q, "valence").tolist() == [1, 1, 0, 1, 1, 0]
    ammonium = np.array([7, 6, 6, 6, 6, 6]), np.array([1, 0, 0, 0, 0, 0])  # N+ takes four bonds too
    assert decode_bonds(scores, pairs, *ammonium, "valence").tolist() == [1, 1, 0, 1, 1, 0]


def test_valence_decoding_demotes_a_bond_that_does_not_fit_when_the_model_prefers_it_to_none():
    # an oxygen (0) bonded to two carbons: the weaker bond is double, which does not fit after the first
    pairs = torch.tensor([[0, 1], [0, 2]])
    demoted = _scores([[0, 1.0, 0, 0], [0, 0.3, 0.6, 0]])
    dropped = _scores([[0, 1.0, 0, 0], [0.4, 0.3, 0.6, 0]])
    z, q = np.array([8, 6, 6]), np.zeros(3, int)
    assert decode_bonds(demoted, pairs, z, q, "valence").tolist() == [1, 1]
    assert decode_bonds(dropped, pairs, z, q, "valence").tolist() == [1, 0]
    assert decode_bonds(dropped, pairs, z, q, "argmax").tolist() == [1, 2]
