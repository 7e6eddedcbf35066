"""The molecular state: fields on atoms and on pairs, per-molecule coefficients broadcast through
each field's molecule index, zero-CoM coordinates, and per-molecule, per-field seeded noise."""

import pytest
import torch

from moldiff.data.com import max_abs_mean
from moldiff.diffusion.state import (FieldSpec, MolGraph, MoleculeNoise, MolState, coordinate_fields,
                                     degrees_of_freedom)  # fmt: skip

BONDS = FieldSpec("bonds", on="pairs", kind="categorical", columns=5)
FIELDS = coordinate_fields(4, 0.25)


def _graph(counts=(3, 5, 4)):
    return MolGraph.from_counts(torch.tensor(counts)).with_pairs()


def _state(graph, specs=FIELDS + (BONDS,), seed=0):
    g = torch.Generator().manual_seed(seed)
    rows = {"atoms": graph.batch.shape[0], "pairs": graph.pairs.shape[0]}
    return MolState({f.name: torch.randn(rows[f.on], f.columns, generator=g, dtype=torch.float64) for f in specs},
                    specs, graph)  # fmt: skip


def test_pairs_are_every_unordered_pair_within_each_molecule():
    graph = _graph()
    assert graph.num_pairs.tolist() == [3, 10, 6] and graph.pairs.shape == (19, 2)
    i, j = graph.pairs.T
    assert (i < j).all() and torch.equal(graph.batch[i], graph.batch[j])
    assert graph.pair_batch.tolist() == [0] * 3 + [1] * 10 + [2] * 6
    assert len({tuple(p) for p in graph.pairs.tolist()}) == 19


def test_per_molecule_values_reach_each_field_through_its_molecule_index():
    graph = _graph()
    z = _state(graph)
    c = torch.tensor([2.0, 3.0, 5.0], dtype=torch.float64)
    out = c * z + 1
    torch.testing.assert_close(out["coords"], c[graph.batch, None] * z["coords"] + 1)
    torch.testing.assert_close(out["bonds"], c[graph.pair_batch, None] * z["bonds"] + 1)
    torch.testing.assert_close((z / c)["types"], z["types"] / c[graph.batch, None])
    with pytest.raises(ValueError, match="per-molecule value must be"):
        z * torch.ones(4, dtype=torch.float64)


def test_where_and_molecules_pick_whole_molecules_on_atoms_and_pairs():
    graph = _graph()
    a, b = _state(graph, seed=0), _state(graph, seed=1)
    mixed = a.where(torch.tensor([True, False, True]), b)
    first, second = graph.batch == 1, graph.pair_batch == 1
    assert torch.equal(mixed["coords"][first], b["coords"][first]) and torch.equal(mixed["bonds"][second], b["bonds"][second])
    assert torch.equal(mixed["bonds"][~second], a["bonds"][~second])
    swapped = a.molecules(torch.tensor([2, 0, 1]), _graph((4, 3, 5)))
    assert torch.equal(swapped["coords"][:4], a["coords"][8:]) and torch.equal(swapped["bonds"][:6], a["bonds"][13:])


def test_projection_centres_coordinates_only():
    graph = _graph()
    z = _state(graph).project()
    assert max_abs_mean(z["coords"], graph.batch) < 1e-12
    assert torch.equal(z["types"], _state(graph)["types"]) and torch.equal(z["bonds"], _state(graph)["bonds"])


def test_degrees_of_freedom_count_rows_and_columns():
    graph = _graph()
    assert degrees_of_freedom(FIELDS, graph).tolist() == [2 * 3 + 3 * 4, 4 * 3 + 5 * 4, 3 * 3 + 4 * 4]
    assert (degrees_of_freedom(FIELDS + (BONDS,), graph) - degrees_of_freedom(FIELDS, graph)).tolist() == [15, 50, 30]


def test_todays_noise_is_one_block_per_molecule_from_its_seed():
    graph = MolGraph.from_counts(torch.tensor([3, 2]))
    z = MoleculeNoise([7, 9], graph, FIELDS).randn()
    block = torch.cat([torch.randn(n, 7, generator=torch.Generator().manual_seed(s)) for n, s in ((3, 7), (2, 9))])
    centred = MolState.from_columns(block, FIELDS, graph).project()
    assert torch.equal(z.columns(), centred.columns())


def test_adding_a_field_leaves_the_other_streams_unchanged_and_a_molecule_regenerates_alone():
    graph = _graph()
    plain = MoleculeNoise([1, 2, 3], graph, FIELDS).randn()
    more = MoleculeNoise([1, 2, 3], graph, FIELDS + (BONDS,)).randn()
    assert torch.equal(plain["coords"], more["coords"]) and torch.equal(plain["types"], more["types"])
    alone = MoleculeNoise([2], _graph((5,)), FIELDS + (BONDS,)).randn()
    assert torch.equal(alone["bonds"], more["bonds"][graph.pair_batch == 1])
    assert torch.equal(alone["types"], more["types"][graph.batch == 1])


def test_a_state_is_a_pytree_for_torch_func():
    graph = _graph()
    z = _state(graph)
    out, tangent = torch.func.jvp(lambda s: s * 2.0, (z,), (z,))
    assert isinstance(out, MolState) and torch.equal(tangent["bonds"], 2 * z["bonds"])


def test_specs_and_states_check_what_they_get():
    with pytest.raises(ValueError, match="on must be one of"):
        FieldSpec("x", on="edges")
    graph = _graph()
    with pytest.raises(ValueError, match="do not match the specs"):
        MolState({"coords": torch.zeros(12, 3)}, FIELDS, graph)
    with pytest.raises(ValueError, match="atom fields only"):
        _state(graph).columns()
