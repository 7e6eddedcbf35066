"""Categorical fields of a state (moldiff.diffusion.discrete): their noise, their loss, their priors."""

import numpy as np
import pytest
import torch

from moldiff.data.molset import MolSet
from moldiff.diffusion.discrete import (class_marginals, clean_logits, cross_entropies, field_priors, noise_classes,
                                        one_hot)  # fmt: skip
from moldiff.diffusion.state import FieldSpec, MolGraph, MolState
from moldiff.generator import graph_class_counts

SPECS = (FieldSpec("coords", columns=3, centred=True), FieldSpec("types", columns=3, kind="categorical", scale=0.25),
         FieldSpec("bonds", on="pairs", columns=3, kind="categorical", scale=0.25, masked=True))  # fmt: skip


def _state(n_mols: int = 50, atoms: int = 6) -> MolState:
    graph = MolGraph.from_counts(torch.full((n_mols,), atoms)).with_pairs()
    types = torch.arange(graph.batch.shape[0]) % 2  # classes 0 and 1
    bonds = torch.zeros(graph.pairs.shape[0], dtype=torch.long)
    return MolState({"coords": torch.zeros(graph.batch.shape[0], 3), "types": one_hot(types, SPECS[1]),
                     "bonds": one_hot(bonds, SPECS[2])}, SPECS, graph)  # fmt: skip


def test_noise_keeps_the_clean_class_at_t0_and_draws_the_prior_at_t1():
    z0 = _state()
    priors = field_priors(SPECS, "masking")
    clean = noise_classes(z0, z0, torch.zeros(50), z0.graph, priors, torch.Generator().manual_seed(0))
    assert torch.equal(clean["types"], z0["types"]) and torch.equal(clean["bonds"], z0["bonds"])
    noised = noise_classes(z0, z0, torch.ones(50), z0.graph, priors, torch.Generator().manual_seed(0))
    assert (noised["types"].argmax(1) == 2).all() and (noised["bonds"].argmax(1) == 2).all()  # all masked
    half = noise_classes(z0, z0, torch.full((50,), 0.5), z0.graph, field_priors(SPECS, "uniform"),
                         torch.Generator().manual_seed(0))  # fmt: skip
    kept = float((half["bonds"].argmax(1) == 0).double().mean())  # 1/2 kept + 1/2 · 1/3 redrawn as class 0
    assert abs(kept - (0.5 + 0.5 / 3)) < 0.03
    assert torch.allclose(half["types"].sum(1), torch.full((300,), 0.25))  # scaled one-hots


def test_cross_entropy_is_zero_for_a_sure_right_answer_and_the_mask_is_never_one():
    z0 = _state(2, 3)
    right = z0.map(lambda v: v * 400.0)  # logits sure of the clean class
    ce = cross_entropies(right, z0)
    assert ce["types"].max() < 1e-6 and ce["bonds"].max() < 1e-6
    sure_of_mask = torch.tensor([[0.0, 0.0, 50.0]])
    assert torch.isinf(clean_logits(sure_of_mask, SPECS[2])[0, 2])
    assert torch.allclose(torch.softmax(clean_logits(sure_of_mask, SPECS[2]), 1), torch.tensor([[0.5, 0.5, 0.0]]))


def test_priors_and_marginals():
    assert field_priors(SPECS, "uniform")["types"].tolist() == pytest.approx([1 / 3] * 3)
    with pytest.raises(ValueError, match="class frequencies of field 'types'"):
        field_priors(SPECS, "marginal")
    marginals = class_marginals({"types": np.array([3.0, 0.0, 1.0])})  # one pseudo-count per class
    assert marginals["types"] == pytest.approx([4 / 7, 1 / 7, 2 / 7])


def test_graph_class_counts_count_every_pair():
    # ethanol-like heavy atoms C-C-O and a lone O: 3 + 0 pairs, 2 single bonds
    mols = MolSet(atomic_numbers=np.array([6, 6, 8, 8]), positions=np.zeros((4, 3), np.float32), ptr=np.array([0, 3, 4]),
                  charges=np.array([0, 0, 0, -1]), bonds=np.array([[0, 1, 1], [1, 2, 1]]), bond_ptr=np.array([0, 2, 2]))  # fmt: skip
    counts = graph_class_counts(mols, ["H", "C", "N", "O", "F"], [-1, 0, 1])
    assert counts["types"].tolist() == [0, 2, 0, 2, 0] and counts["charges"].tolist() == [1, 3, 0]
    assert counts["bonds"].tolist() == [1, 2, 0, 0]
