"""Every solver on Gaussian data, where the exact ε̂ is known in closed form
(``moldiff.diffusion.gaussian``): samples must have the data's mean and variance, and the ODE
solvers must follow the exact probability-flow map at their order of convergence."""

import pytest
import torch

from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.gaussian import GaussianData
from moldiff.diffusion.schedules import SCHEDULES, make_schedule
from moldiff.diffusion.state import MolGraph, MoleculeNoise
from moldiff.solvers import SOLVERS, get_solver, solver_times

DATA = GaussianData(torch.tensor([0.5, -1.0]), 0.6)
ODE_SOLVERS = {"ddim": 1, "euler": 1, "heun": 2, "dpmpp-2m": 2}  # name -> order


def run(name, schedule_name="polynomial", molecules=8, atoms=4, steps=50, seed=0, **options):
    """(samples, exact PF-ODE images of the same starts, denoiser) for a run started at t = 1 from
    the exact marginal, so only the solver's own error remains."""
    schedule = make_schedule(schedule_name)
    graph = MolGraph.from_counts(torch.full((molecules,), atoms))
    noise = MoleculeNoise(list(range(seed, seed + molecules)), graph, DATA.fields)
    denoiser = Denoiser(DATA.network(schedule), schedule, "eps")
    times = solver_times(name, steps, schedule, **options)
    start = times[:1].expand(molecules)
    z1 = DATA.marginal_sample(start, graph, noise.randn().to(torch.float64), schedule)
    z0 = get_solver(name, **options)(denoiser, z1, times, graph, noise)
    return z0.columns(), DATA.flow(z1, start, times[-1:].expand(molecules), graph, schedule).columns(), denoiser


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_samples_have_the_data_mean_and_variance(name):
    # 16 atoms: Langevin's state-dependent step in ``pc`` widens a Gaussian by ~(d + 2)/d (see pc.py)
    atoms, s = 16, DATA.std
    z0, _, _ = run(name, molecules=300, atoms=atoms, steps=400)
    feats, coords = z0[:, 3:], z0[:, :3]
    assert torch.allclose(feats.mean(0), DATA.mean_h, atol=0.04)
    # 4,800 draws per column: the standard error of a std is ~1 %; solver bias at 400 NFE is < 2 %
    assert torch.allclose(feats.std(0) / s, torch.ones(2, dtype=torch.float64), atol=0.05)
    # zero-CoM coordinates of n atoms have per-component variance s² (n − 1)/n
    assert abs(float(coords.std()) / (s * ((atoms - 1) / atoms) ** 0.5) - 1) < 0.05


@pytest.mark.parametrize("schedule_name", sorted(SCHEDULES))
@pytest.mark.parametrize("name", sorted(ODE_SOLVERS))
def test_ode_solvers_converge_to_the_exact_flow_at_their_order(name, schedule_name):
    errors = []
    for steps in (40, 80):
        z0, exact, _ = run(name, schedule_name, steps=steps)
        errors.append(float((z0 - exact).abs().max()))
    order = ODE_SOLVERS[name]
    assert errors[0] / errors[1] > 0.7 * 2**order, errors
    if order == 2:
        assert errors[1] < 0.05


@pytest.mark.parametrize("schedule_name", sorted(SCHEDULES))
def test_adaptive_error_follows_its_tolerance(schedule_name):
    loose, _, d_loose = (lambda r: (float((r[0] - r[1]).abs().max()), None, r[2]))(
        run("adaptive", schedule_name, rtol=1e-3, atol=1e-3))
    tight, _, d_tight = (lambda r: (float((r[0] - r[1]).abs().max()), None, r[2]))(
        run("adaptive", schedule_name, rtol=1e-5, atol=1e-5))
    assert tight < 2e-3 and tight < loose / 10
    assert d_tight.nfe > d_loose.nfe


@pytest.mark.parametrize("method", ["bosh3", "dopri5"])
def test_adaptive_methods_agree_with_the_exact_flow(method):
    z0, exact, _ = run("adaptive", rtol=1e-6, atol=1e-6, method=method)
    assert torch.allclose(z0, exact, atol=1e-3)


def test_ddim_with_eta_one_is_ddpm():
    a, _, _ = run("ddim", eta=1.0, steps=20)
    b, _, _ = run("ddpm", steps=20)
    assert torch.allclose(a, b, atol=1e-10)


def test_first_order_sde_dpm_solver_with_eta_one_is_ddpm():
    # with fewer than 15 steps the last step is first order; the first step always is: compare 1 step
    a, _, _ = run("dpmpp-2m", eta=1.0, steps=1)
    b, _, _ = run("ddpm", steps=1)
    assert torch.allclose(a, b, atol=1e-10)


def test_sde_dpm_solver_samples_the_data_distribution():
    atoms, s = 16, DATA.std
    z0, _, _ = run("dpmpp-2m", molecules=300, atoms=atoms, steps=100, eta=1.0)
    feats, coords = z0[:, 3:], z0[:, :3]
    assert torch.allclose(feats.mean(0), DATA.mean_h, atol=0.04)
    assert torch.allclose(feats.std(0) / s, torch.ones(2, dtype=torch.float64), atol=0.05)
    assert abs(float(coords.std()) / (s * ((atoms - 1) / atoms) ** 0.5) - 1) < 0.05


def test_sde_dpm_solver_uses_the_noise_stream():
    schedule = make_schedule("polynomial")
    graph = MolGraph.from_counts(torch.full((8,), 4))
    denoiser = Denoiser(DATA.network(schedule), schedule, "eps")
    times = solver_times("dpmpp-2m", 10, schedule)
    z1 = DATA.marginal_sample(times[:1].expand(8), graph, MoleculeNoise(list(range(8)), graph, DATA.fields).randn().to(torch.float64),
                              schedule)  # fmt: skip
    solve = get_solver("dpmpp-2m", eta=0.5)
    a, b, c = (solve(denoiser, z1, times, graph, MoleculeNoise(list(range(k, k + 8)), graph, DATA.fields)).columns()
               for k in (0, 100, 0))
    assert torch.equal(a, c) and not torch.allclose(a, b)  # same start: only the noise stream differs


def test_deterministic_solvers_ignore_the_noise_stream():
    for name in ("ddim", "euler", "heun", "dpmpp-2m", "adaptive"):
        a, ea, _ = run(name, seed=0, steps=10)
        # the same start, another noise stream: only the start matters
        schedule = make_schedule("polynomial")
        graph = MolGraph.from_counts(torch.full((8,), 4))
        denoiser = Denoiser(DATA.network(schedule), schedule, "eps")
        times = solver_times(name, 10, schedule)
        z1 = DATA.marginal_sample(times[:1].expand(8), graph, MoleculeNoise(list(range(8)), graph, DATA.fields).randn().to(torch.float64),
                                  schedule)  # fmt: skip
        b = get_solver(name)(denoiser, z1, times, graph, MoleculeNoise(list(range(100, 108)), graph, DATA.fields)).columns()
        assert torch.equal(a, b), name
