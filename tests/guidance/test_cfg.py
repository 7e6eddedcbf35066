"""Classifier-free guidance on Gaussians: the guided ε̂ is exactly that of the tilted distribution
p_u^{1−w} p_c^w, here N((1 − w) m_u + w m_c, s²), and samples land on its mean."""

import pytest
import torch

from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.gaussian import GaussianData
from moldiff.diffusion.schedules import make_schedule
from moldiff.diffusion.state import MolGraph, MoleculeNoise, MolState, coordinate_fields
from moldiff.guidance.cfg import ClassifierFreeDenoiser
from moldiff.guidance.condition import PropertyNorm, drop_conditions, null_condition
from moldiff.solvers import get_solver, solver_times

from guidance_toys import ConditionalGaussianNet, feature_mean

M_U, M_C, STD = torch.tensor([0.0, 0.5], dtype=torch.float64), torch.tensor([1.0, -0.5], dtype=torch.float64), 0.5


def _setup(molecules=4, atoms=3):
    schedule = make_schedule("polynomial")
    net = ConditionalGaussianNet(GaussianData(M_C, STD), GaussianData(M_U, STD), schedule)
    graph = MolGraph.from_counts(torch.full((molecules,), atoms), cond=torch.tensor([[0.3, 1.0]] * molecules))
    return schedule, Denoiser(net, schedule, "eps"), graph


@pytest.mark.parametrize("w", [0.0, 1.0, 2.5])
def test_guided_eps_is_the_tilted_gaussians(w):
    schedule, denoiser, graph = _setup()
    tilted = GaussianData((1 - w) * M_U + w * M_C, STD)
    z = MoleculeNoise([0, 1, 2, 3], graph, coordinate_fields(2), dtype=torch.float64).randn()
    for t in (0.05, 0.5, 0.95):
        tt = torch.full((4,), t, dtype=torch.float64)
        guided = ClassifierFreeDenoiser(denoiser, w).eps(z, tt, graph)
        torch.testing.assert_close(guided.columns(), tilted.eps(z, tt, graph, schedule).columns())


def test_two_network_calls_per_step_and_one_at_scale_one():
    _, denoiser, graph = _setup()
    z = MolState.from_columns(torch.randn(12, 5, dtype=torch.float64), coordinate_fields(2), graph)
    t = torch.full((4,), 0.5, dtype=torch.float64)
    ClassifierFreeDenoiser(denoiser, 2.0).x0(z, t, graph)
    assert denoiser.nfe == 2
    ClassifierFreeDenoiser(denoiser, 1.0).x0(z, t, graph)
    assert denoiser.nfe == 3


@pytest.mark.parametrize("solver", ["ddpm", "dpmpp-2m"])
def test_samples_move_to_the_tilted_mean(solver):
    w, molecules = 2.0, 200
    schedule, denoiser, graph = _setup(molecules, 4)
    noise = MoleculeNoise(list(range(molecules)), graph, coordinate_fields(2), dtype=torch.float64)
    times = solver_times(solver, 60, schedule)
    z0 = get_solver(solver)(ClassifierFreeDenoiser(denoiser, w), noise.randn(), times, graph, noise)
    # 800 draws per feature column of std 0.5: standard error 0.018
    torch.testing.assert_close(feature_mean(z0), (1 - w) * M_U + w * M_C, atol=0.07, rtol=0)


def test_condition_encoding_and_null():
    norm = PropertyNorm(("gap", "mu"), (6000.0, 2.0), (1000.0, 0.5))
    values = torch.tensor([[7000.0, 2.5], [5000.0, 1.0]])
    enc = norm.encode(values, torch.tensor([True, False]))
    torch.testing.assert_close(enc, torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]))
    assert torch.equal(null_condition(2, 2), torch.zeros(2, 4))
    # per property: an absent value (even NaN) is 0 with flag 0
    partial = norm.encode(torch.tensor([[7000.0, float("nan")]]), torch.tensor([[True, False]]))
    torch.testing.assert_close(partial, torch.tensor([[1.0, 0.0, 1.0, 0.0]]))
    assert PropertyNorm.from_dict(norm.to_dict()) == norm
    torch.testing.assert_close(norm.denormalize(norm.normalize(values)), values)
    keep = drop_conditions(4000, 0.25, torch.Generator().manual_seed(0))
    assert keep.shape == (4000, 1) and abs(1 - keep.float().mean().item() - 0.25) < 0.03
    assert drop_conditions(5, 0.0).all()


def test_properties_are_dropped_one_by_one():
    keep = drop_conditions(20000, 0.2, torch.Generator().manual_seed(1), properties=3, property_prob=0.5)
    assert keep.shape == (20000, 3)
    assert abs((~keep.any(1)).float().mean().item() - (0.2 + 0.8 * 0.125)) < 0.015  # all dropped
    assert abs(keep.all(1).float().mean().item() - 0.8 * 0.125) < 0.015  # all kept
    assert abs(keep.float().mean().item() - 0.8 * 0.5) < 0.015
    assert drop_conditions(50, 0.0, properties=3).all()


def test_missing_condition_is_an_error():
    _, denoiser, graph = _setup()
    from dataclasses import replace

    with pytest.raises(ValueError, match="graph.cond"):
        ClassifierFreeDenoiser(denoiser, 2.0).eps(torch.zeros(12, 5), torch.zeros(4), replace(graph, cond=None))
