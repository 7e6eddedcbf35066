"""Feynman–Kac steering with particles: one particle is the plain solver, a reward moves the samples
where it should (on Gaussian data, where the tilted law is known), and a molecule depends only on
its seed and size."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.gaussian import GaussianData
from moldiff.diffusion.schedules import make_schedule
from moldiff.diffusion.state import MolGraph, MoleculeNoise
from moldiff.errors import MoldiffError
from moldiff.guidance.steering import _segments, steering_solver
from moldiff.solvers import get_solver, solver_times

DATA = GaussianData(torch.tensor([0.0, 0.0, 0.0, 0.0], dtype=torch.float64), 1.0, std_h=1.0)


def feature_reward(z, graph):
    """The first type feature summed over each molecule: N(0, n) under the data."""
    return torch.zeros(graph.num_graphs, dtype=z.dtype).index_add_(0, graph.batch, z["types"][:, 0]).numpy()


def _run(counts, seeds, solver="ddpm", steps=30, **steer):
    schedule = make_schedule("polynomial")
    denoiser = Denoiser(DATA.network(schedule), schedule, "eps")
    graph = MolGraph.from_counts(torch.tensor(counts))
    noise = MoleculeNoise(seeds, graph, DATA.fields, dtype=torch.float64)
    inner = get_solver(solver)
    sample = steering_solver(inner, feature_reward, **steer) if steer else inner
    return sample(denoiser, noise.randn(), solver_times(solver, steps, schedule), graph, noise), graph


def test_one_particle_is_the_plain_solver():
    plain, _ = _run([4, 6], [1, 2])
    steered, _ = _run([4, 6], [1, 2], particles=1, strength=50.0)
    torch.testing.assert_close(steered.columns(), plain.columns(), rtol=0, atol=0)


def test_repeated_graph_copies_each_molecule_in_turn_with_its_per_atom_fields():
    graph = replace(MolGraph.from_counts(torch.tensor([2, 3])), cond=torch.tensor([[1.0], [2.0]]), known=torch.tensor([True, False, True, True, False]),
                    open_valence=torch.tensor([1, 0, 0, 2, 0]))  # fmt: skip
    repeated, source = graph.repeat(2)
    assert source.tolist() == [0, 1, 0, 1, 2, 3, 4, 2, 3, 4]
    assert repeated.num_atoms.tolist() == [2, 2, 3, 3]
    assert repeated.cond.flatten().tolist() == [1.0, 1.0, 2.0, 2.0]
    assert repeated.known.tolist() == graph.known[source].tolist()
    assert repeated.open_valence.tolist() == [1, 0, 1, 0, 0, 2, 0, 0, 2, 0]
    assert repeated.batch.tolist() == [0, 0, 1, 1, 2, 2, 2, 3, 3, 3]


def test_segments_spread_resampling_over_the_window():
    assert _segments(50, 4) == [(0, 10), (10, 20), (20, 30), (30, 40), (40, 50)]
    assert _segments(50, 3, 0.5) == [(0, 31), (31, 38), (38, 44), (44, 50)]
    assert _segments(50, 0) == [(0, 50)]


def test_a_reward_tilts_the_samples_towards_it():
    # under exp(λ r) with r = Σ_i h_i0 ~ N(0, n) the mean of r moves to λ n; with 8 particles the
    # steered mean must move far up, and λ = 0 must not move it
    counts, seeds = [3] * 60, list(range(60))
    plain = feature_reward(*_run(counts, seeds))
    tilted = feature_reward(*_run(counts, seeds, particles=8, strength=1.0, resamplings=3, select="sample"))
    flat = feature_reward(*_run(counts, seeds, particles=8, strength=0.0, resamplings=3, select="sample"))
    assert tilted.mean() > plain.mean() + 1.5  # λ n = 3 for the exact tilt; finite particles get part way
    assert abs(flat.mean() - plain.mean()) < 0.8  # three standard errors of a mean of 60 N(0, 3)
    best = feature_reward(*_run(counts, seeds, particles=8, strength=1.0, resamplings=0, select="best"))
    assert best.mean() > plain.mean() + 1.5  # the best of 8 draws of N(0, 3) averages 1.42·√3 ≈ 2.5 above


def test_a_molecule_depends_only_on_its_seed_and_size():
    together, graph = _run([3, 5, 4], [7, 8, 9], particles=4, strength=1.0, resamplings=2)
    alone, _ = _run([5], [8], particles=4, strength=1.0, resamplings=2)
    together, alone = together.columns(), alone.columns()
    torch.testing.assert_close(together[graph.ptr[1] : graph.ptr[2]], alone, rtol=0, atol=1e-10)
    again, _ = _run([3, 5, 4], [7, 8, 9], particles=4, strength=1.0, resamplings=2)
    torch.testing.assert_close(again.columns(), together, rtol=0, atol=0)
    assert together.shape == (12, DATA.dim) and np.isfinite(together.numpy()).all()


@pytest.mark.parametrize("kwargs", [dict(particles=0), dict(strength=-1.0), dict(window=0.0), dict(select="max"),
                                    dict(resamplings=-1)])  # fmt: skip
def test_bad_settings_are_clear_errors(kwargs):
    with pytest.raises(MoldiffError):
        steering_solver(get_solver("ddpm"), feature_reward, **kwargs)


def test_rewards_count_only_molecules_their_reader_accepts():
    from moldiff.chem.conformers import smiles_to_3d
    from moldiff.data.molset import MolSet
    from moldiff.guidance.regressor import parse_guide
    from moldiff.guidance.steering import INVALID_REWARD, score_reward

    confs = [smiles_to_3d(s) for s in ("CCO", "CCO.C")]  # the second is in two pieces (ETKDG keeps them apart)
    molecules = MolSet(np.concatenate([c.atomic_numbers for c in confs]), np.concatenate([c.positions for c in confs]),
                       ptr=np.cumsum([0] + [len(c.atomic_numbers) for c in confs]))  # fmt: skip
    for reader in ("edm", "xyz2mol"):
        reward = score_reward(lambda z, g: molecules, [parse_guide("qed=max")], reader=reader)
        values = reward(None, None)
        assert 0 < values[0] < 1 and values[1] == INVALID_REWARD, reader
    with pytest.raises(MoldiffError, match="unknown molecule reader"):
        score_reward(lambda z, g: molecules, [], reader="obabel")


def test_an_intact_scaffold_adds_to_the_reward():
    from rdkit import Chem

    from moldiff.chem.conformers import smiles_to_3d
    from moldiff.data.molset import MolSet
    from moldiff.guidance.steering import INVALID_REWARD, SCAFFOLD_REWARD, score_reward

    # pyridine with a methyl, the same ring saturated (piperidine), and pyridine in two pieces
    confs = [smiles_to_3d(s) for s in ("Cc1ccncc1", "CC1CCNCC1", "c1ccncc1.C")]
    molecules = MolSet(np.concatenate([c.atomic_numbers for c in confs]), np.concatenate([c.positions for c in confs]),
                       ptr=np.cumsum([0] + [len(c.atomic_numbers) for c in confs]))  # fmt: skip
    values = score_reward(lambda z, g: molecules, [], reader="xyz2mol", scaffold=Chem.MolFromSmiles("c1ccncc1"))(None, None)
    assert values.tolist() == [SCAFFOLD_REWARD, 0.0, INVALID_REWARD]


def test_a_predicted_energy_lowers_the_reward_of_counted_molecules_only():
    from moldiff.chem.conformers import smiles_to_3d
    from moldiff.data.molset import MolSet
    from moldiff.guidance.steering import INVALID_REWARD, score_reward

    confs = [smiles_to_3d(s) for s in ("CCO", "CCO.C", "CCN")]  # the second is in two pieces
    molecules = MolSet(np.concatenate([c.atomic_numbers for c in confs]), np.concatenate([c.positions for c in confs]),
                       ptr=np.cumsum([0] + [len(c.atomic_numbers) for c in confs]))  # fmt: skip
    values = score_reward(lambda z, g: molecules, [], energy=lambda z, g: np.array([0.5, 0.0, np.nan]))(None, None)
    # CCO pays its energy; the broken one stays invalid whatever its energy; a NaN energy never wins
    assert values.tolist() == [-0.5, INVALID_REWARD, INVALID_REWARD]


def test_the_predictor_energy_reads_clean_molecules_as_guidance_defines_it():
    from moldiff.diffusion.state import MolGraph
    from moldiff.guidance.condition import PropertyNorm
    from moldiff.guidance.regressor import GuideTerm, PropertyEnergy
    from moldiff.guidance.steering import predicted_terms, predictor_energy, scored_terms

    seen = []

    class Model:  # "gap" is the mean x coordinate of each molecule, normalised with mean 1, std 2
        norm = PropertyNorm(("gap",), (1.0,), (2.0,))

        def __call__(self, z, t, graph, schedule=None):
            seen.append(t.clone())
            sums = torch.zeros(graph.num_graphs, dtype=z.dtype).index_add_(0, graph.batch, z[:, 0])
            return (sums / graph.num_atoms.to(z.dtype))[:, None]

    graph = MolGraph.from_counts(torch.tensor([2, 3]))
    z = torch.zeros(5, 8)
    z[:2, 0], z[2:, 0] = 1.0, 3.0
    energy = predictor_energy(PropertyEnergy(Model(), [GuideTerm("gap", target=5.0)]), None)
    # target 5 is 2 in normalised units: (1 − 2)² and (3 − 2)²
    np.testing.assert_allclose(energy(z, graph), [1.0, 1.0])
    assert torch.equal(seen[-1], torch.zeros(2))  # read at t = 0
    terms = [GuideTerm("gap", target=5.0), GuideTerm("qed", direction=1)]
    assert [t.name for t in predicted_terms(terms)] == ["gap"] and [t.name for t in scored_terms(terms)] == ["qed"]
