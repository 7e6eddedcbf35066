"""A graph model's charges and bonds weigh in the loss as diffusion.charge_loss_weight and
diffusion.bond_loss_weight say."""

import pytest
import torch

from moldiff.config import DiffusionConfig
from moldiff.diffusion.losses import _reduce, training_loss
from moldiff.diffusion.state import FieldSpec, MolGraph, MolState, coordinate_fields

GRAPH = MolGraph.from_counts(torch.tensor([2, 3])).with_pairs()
SPECS = coordinate_fields(2) + (FieldSpec("charges", columns=3), FieldSpec("bonds", on="pairs", columns=4))


def _errors():
    return MolState({"coords": torch.full((5, 3), 1.0), "types": torch.full((5, 2), 2.0),
                     "charges": torch.full((5, 3), 3.0), "bonds": torch.full((4, 4), 5.0)}, SPECS, GRAPH)  # fmt: skip


def test_charge_and_bond_weights_scale_their_parts():
    out = _reduce(_errors(), GRAPH, 1.0, {"charges": 2.0, "bonds": 0.5})
    atoms = (3 * 1.0 + 2 * 2.0 + 2.0 * 3 * 3.0) / (3 + 2 + 2.0 * 3)  # a weighted mean over atom columns
    assert out["loss"].item() == pytest.approx(atoms + 0.5 * 5.0)
    assert out["loss_charges"].item() == pytest.approx(3.0) and out["loss_bonds"].item() == pytest.approx(5.0)
    unweighted = _reduce(_errors(), GRAPH, 1.0)
    assert unweighted["loss"].item() == pytest.approx((3 + 4 + 9) / 8 + 5.0)


def test_training_loss_takes_the_weights_from_the_config():
    class Zero:  # predicts ε̂ = 0: the error is ε², whatever the weights
        def coefficients(self, t, graph):
            return torch.full_like(t, 0.6), torch.full_like(t, 0.8), None, None

        def eps(self, z, t, graph):
            return z.zeros_like()

    z0 = _errors().zeros_like()
    config = [DiffusionConfig(bond_loss_weight=w) for w in (1.0, 3.0)]
    losses = [training_loss(Zero(), z0, GRAPH, c, generator=torch.Generator().manual_seed(0)) for c in config]
    bonds = losses[0]["loss_bonds"]
    assert losses[1]["loss"].item() == pytest.approx((losses[0]["loss"] + 2.0 * bonds).item())
