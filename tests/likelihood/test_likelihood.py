"""Likelihoods against closed forms: Gaussian coordinates (zero-CoM, std s) with one constant atom
type, whose exact ε̂ is known, so −log p(x) = ‖x‖²/(2s²) + (n − 1)·3/2 · log(2π s²)."""

import math

import pytest
import torch

from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.gaussian import GaussianData
from moldiff.diffusion.schedules import make_schedule
from moldiff.diffusion.state import MolGraph, MoleculeNoise, MolState
from moldiff.likelihood import ode_bound, ode_log_density, variational_bound

S, ATOMS, TYPE = 0.7, 4, 0.25


def _setup(schedule_name, molecules=400):
    schedule = make_schedule(schedule_name)
    data = GaussianData(torch.tensor([TYPE]), S, std_h=0.0)  # one atom type, always present
    graph = MolGraph.from_counts(torch.full((molecules,), ATOMS))
    noise = MoleculeNoise(list(range(molecules)), graph, data.fields, dtype=torch.float64)
    coords = noise.randn()["coords"] * S
    x0 = MolState({"coords": coords, "types": torch.full((len(coords), 1), TYPE, dtype=torch.float64)}, data.fields, graph)
    sq = torch.zeros(molecules, dtype=torch.float64).index_add_(0, graph.batch, (coords**2).sum(1))
    dof = (ATOMS - 1) * 3
    true_nll = 0.5 * sq / S**2 + 0.5 * dof * math.log(2 * math.pi * S**2)
    return Denoiser(data.network(schedule), schedule, "eps"), x0, graph, true_nll, data


@pytest.mark.parametrize("schedule_name", ["polynomial", "linear", "ve"])
def test_variational_bound_is_tight_for_the_exact_denoiser(schedule_name):
    denoiser, x0, graph, true_nll, _ = _setup(schedule_name)
    terms = variational_bound(denoiser, x0, graph, type_scale=TYPE, samples=16,
                              generator=torch.Generator().manual_seed(0))  # fmt: skip
    gap = terms["nll"] - true_nll
    se = float(gap.std()) / len(gap) ** 0.5
    assert abs(float(gap.mean())) < 4 * se + 0.1, (float(gap.mean()), se)
    assert float(terms["recon_h"].abs().max()) < 1e-6  # one category: p(h | z_0) = 1
    assert denoiser.nfe == 16 + 1


@pytest.mark.parametrize("schedule_name", ["polynomial", "linear", "cosine"])
def test_ode_density_matches_the_exact_marginal(schedule_name):
    schedule = make_schedule(schedule_name)
    zero = torch.zeros(32, dtype=torch.float64)
    data = GaussianData(torch.tensor([0.5, -1.0]), 0.6)  # two continuous features: a proper density
    denoiser = Denoiser(data.network(schedule), schedule, "eps")
    graph = MolGraph.from_counts(torch.full((32,), 3))
    unit = MoleculeNoise(list(range(32)), graph, data.fields, dtype=torch.float64).randn()
    z = data.marginal_sample(zero, graph, unit, schedule)
    log_p = ode_log_density(denoiser, z, graph, trace="exact")
    # what remains is the prior's mismatch with the true p_1 (α_1 ≈ 0.003 of signal left)
    assert torch.allclose(log_p, data.log_prob(z, zero, graph, schedule), atol=0.03)
    assert denoiser.nfe == 1 + 6 * 10  # Dormand–Prince: 6 new stages per step, 10 steps


def test_hutchinson_estimate_is_unbiased():
    schedule = make_schedule("polynomial")
    data = GaussianData(torch.tensor([0.5, -1.0]), 0.6)
    denoiser = Denoiser(data.network(schedule), schedule, "eps")
    graph = MolGraph.from_counts(torch.full((256,), 5))
    zero = torch.zeros(256, dtype=torch.float64)
    unit = MoleculeNoise(list(range(256)), graph, data.fields, dtype=torch.float64).randn()
    z = data.marginal_sample(zero, graph, unit, schedule)
    err = ode_log_density(denoiser, z, graph, steps=5, probes=2, generator=torch.Generator().manual_seed(0))
    err = err - data.log_prob(z, zero, graph, schedule)
    assert abs(float(err.mean())) < 4 * float(err.std()) / 256**0.5 + 0.05


@pytest.mark.parametrize("schedule_name", ["polynomial", "ve"])
def test_ode_bound_is_tight_for_the_exact_denoiser(schedule_name):
    denoiser, x0, graph, true_nll, _ = _setup(schedule_name, molecules=64)
    terms = ode_bound(denoiser, x0, graph, type_scale=TYPE, trace="exact", generator=torch.Generator().manual_seed(0))
    assert abs(float((terms["nll"] - true_nll).mean())) < 0.02
    parts = {f"{field}/{part}" for field in ("coords", "types") for part in ("ode", "log_q", "recon")}
    assert set(terms) == {"ode", "log_q", "recon_x", "recon_h", "log_p_n", "nll"} | parts


def test_atom_count_term_enters_with_its_sign():
    denoiser, x0, graph, _, _ = _setup("polynomial", molecules=4)
    log_p_n = torch.log(torch.tensor([0.5, 0.25, 0.125, 0.125], dtype=torch.float64))
    a = variational_bound(denoiser, x0, graph, type_scale=TYPE, generator=torch.Generator().manual_seed(0))
    b = variational_bound(denoiser, x0, graph, type_scale=TYPE, log_p_n=log_p_n,
                          generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert torch.allclose(b["nll"] - a["nll"], -log_p_n)


def test_type_decoder_follows_edm():
    """Two categories: the true one-hot has probability close to 1 at t = 0 (σ_0/0.25 ≈ 0.013)."""
    from moldiff.likelihood.elbo import decoder_nll

    schedule = make_schedule("polynomial")
    data = GaussianData(torch.tensor([0.0, 0.0]), 0.5)
    denoiser = Denoiser(data.network(schedule), schedule, "eps")
    graph = MolGraph.from_counts(torch.tensor([3]))
    z0 = torch.zeros(3, 5, dtype=torch.float64)
    z0[:, 3] = 0.25
    z0[:, :3] = torch.tensor([[1.0, 0, 0], [-1.0, 0, 0], [0, 0, 0]])
    state = data.state(z0, graph)
    nll_h = decoder_nll(denoiser, state, state.zeros_like(), graph, 0.25)["types"]
    assert 0 <= float(nll_h) < 1e-6
    # noise that puts both type features of z_0 half-way (0.125): the two classes are equally likely
    values = schedule(torch.tensor(0.0, dtype=torch.float64))
    eps = torch.zeros_like(z0)
    eps[:, 3] = (0.125 - values.alpha * 0.25) / values.sigma
    eps[:, 4] = 0.125 / values.sigma
    nll_h = decoder_nll(denoiser, state, data.state(eps, graph), graph, 0.25)["types"]
    assert abs(float(nll_h) - 3 * math.log(2)) < 0.05
