"""The categorical ELBO terms against an exact toy: two entries (an atom and its bond, say) whose
clean classes are correlated, with the exact denoiser p(x_0 | x_t) of each entry from Bayes over
the joint data table. Every expectation over x_t is an exact sum over the K² noisy states, so the
bounds here carry no Monte Carlo error."""

import itertools
import sys

import numpy as np
import pytest
import torch

from moldiff.diffusion.categorical import (
    noised_probabilities,
    prior_probabilities,
    reverse_probabilities,
)
from moldiff.likelihood.categorical import (
    kl_rate,
    prior_kl,
    reconstruction_nll,
    step_kl,
)

K = 4  # classes 0-2 hold the data; 3 is the masking prior's mask
PAIRS = torch.tensor([[0.30, 0.05, 0.05], [0.02, 0.25, 0.03], [0.05, 0.05, 0.20]], dtype=torch.float64)
DATA = torch.zeros(K, K, dtype=torch.float64)
DATA[:3, :3] = PAIRS  # π(x^1, x^2)
CLEAN = [(a, b) for a in range(3) for b in range(3)]
KINDS = ["uniform", "marginal", "masking"]


def prior(kind: str) -> torch.Tensor:
    return prior_probabilities(kind, K, marginal=DATA.sum(1))


def noised(t: float, p: torch.Tensor) -> torch.Tensor:
    """q_t(j | c), rows c."""
    return noised_probabilities(torch.eye(K, dtype=torch.float64), torch.full((K,), float(t), dtype=torch.float64), p)


STATES = torch.tensor(list(itertools.product(range(K), repeat=2)))  # every x_t of both entries: (K², 2)


def exact_denoiser(x_t, t: float, p: torch.Tensor, data: torch.Tensor = DATA) -> torch.Tensor:
    """(n, 2, K): p(x_0^a | x_t^1, x_t^2) of each entry a for noisy states ``x_t`` (n, 2), by Bayes
    over the joint table ``data`` (a state the data cannot reach gets NaN)."""
    q = noised(t, p)
    joint = data[None] * q[:, x_t[:, 0]].T[:, :, None] * q[:, x_t[:, 1]].T[:, None, :]
    joint = joint / joint.sum((1, 2), keepdim=True)
    return torch.stack([joint.sum(2), joint.sum(1)], 1)


def expectation(clean, t: float, p: torch.Tensor, term) -> float:
    """E_{q(x_t | x_0)} of Σ_entries ``term(x_t rows, x_0 rows, p(x_0 | x_t) rows)`` over all x_t."""
    q = noised(t, p)
    weight = q[clean[0], STATES[:, 0]] * q[clean[1], STATES[:, 1]]
    x_t = STATES[weight > 0]
    probs = DENOISER(x_t, t, p)
    x0 = torch.tensor(clean).repeat(len(x_t))
    values = term(x_t.reshape(-1), x0, probs.reshape(-1, K)).view(-1, 2).sum(1)
    return float((weight[weight > 0] * values).sum())


DENOISER = exact_denoiser  # the toy's denoiser (a test may swap in another data table)


def discrete_elbo(clean, steps: int, p: torch.Tensor) -> float:
    """The T-step bound of both entries: prior KL + Σ step KLs + reconstruction, exact expectations."""
    times = np.linspace(0.0, 1.0, steps + 1)
    total = float(prior_kl(torch.tensor(clean), p).sum())
    for i in range(1, steps + 1):
        t, s = float(times[i]), float(times[i - 1])
        if i == 1:
            total += expectation(clean, t, p, lambda x_t, x0, probs, t=t: reconstruction_nll(x_t, x0, probs, t, p))
        else:
            total += expectation(clean, t, p, lambda x_t, x0, probs, t=t, s=s: step_kl(x_t, x0, probs, t, s, p))
    return total


def model_nll(steps: int, p: torch.Tensor) -> torch.Tensor:
    """(K, K) −log p_θ(x_0) of the T-step sampler itself (start at the prior, factorised reverse steps
    with the exact denoiser), propagated exactly over the K² joint states."""
    times = np.linspace(0.0, 1.0, steps + 1)
    mass = p[STATES[:, 0]] * p[STATES[:, 1]]
    for i in range(steps, 0, -1):
        t, s = float(times[i]), float(times[i - 1])
        step = reverse_probabilities(STATES.reshape(-1), exact_denoiser(STATES, t, p).reshape(-1, K), t, s, p)
        step = step.view(-1, 2, K).nan_to_num()  # states of no mass may have no posterior
        mass = (mass[:, None, None] * step[:, 0, :, None] * step[:, 1, None, :]).sum(0).reshape(-1)
    return -mass.view(K, K).log()


def continuous_elbo(clean, p: torch.Tensor, nodes: int = 96) -> float:
    """∫_0^1 E Σ_entries KL rate dt by Gauss–Legendre quadrature (the prior KL is 0)."""
    u, w = np.polynomial.legendre.leggauss(nodes)
    return sum(weight * expectation(clean, float(t), p, lambda x_t, x0, probs, t=t: kl_rate(x_t, x0, probs, float(t), p))
               for t, weight in zip((u + 1) / 2, w / 2))  # fmt: skip


def entropy() -> float:
    return -float((PAIRS * PAIRS.log()).sum())


@pytest.mark.parametrize("kind", KINDS)
def test_the_prior_kl_vanishes_on_a_path_that_ends_in_its_prior(kind):
    p = prior(kind)
    assert torch.allclose(prior_kl(torch.arange(3), p), torch.zeros(3, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_step_kls_and_rates_are_never_negative(kind):
    p, generator = prior(kind), torch.Generator().manual_seed(0)
    x0 = torch.randint(0, 3, (200,), generator=generator)
    t = 0.05 + 0.9 * torch.rand(200, generator=generator, dtype=torch.float64)
    u = torch.rand(200, generator=generator, dtype=torch.float64)
    x_t = torch.searchsorted(noised_probabilities(torch.eye(K, dtype=torch.float64)[x0], t, p).cumsum(1), u[:, None])
    x_t = x_t[:, 0].clamp_max(K - 1)
    probs = torch.softmax(torch.randn(200, K, generator=generator, dtype=torch.float64), 1)
    assert bool((step_kl(x_t, x0, probs, t, 0.5 * t, p) >= -1e-12).all())
    assert bool((kl_rate(x_t, x0, probs, t, p) >= -1e-12).all())
    assert bool((reconstruction_nll(x_t, x0, probs, t, p) >= 0).all())


@pytest.mark.parametrize("kind", KINDS)
def test_the_kl_rate_is_the_small_step_limit_of_the_step_kl(kind):
    p, generator = prior(kind), torch.Generator().manual_seed(1)
    x0 = torch.tensor([0, 0, 2, 1, 2])
    x_t = torch.tensor([0, 1, 2, 3, 3])  # kept, moved, kept, masked or moved
    probs = torch.softmax(torch.randn(5, K, generator=generator, dtype=torch.float64), 1)
    t, h = 0.4, 1e-6
    reachable = noised(t, p)[x0, x_t] > 0
    rate = kl_rate(x_t, x0, probs, t, p)[reachable]
    assert torch.allclose(step_kl(x_t, x0, probs, t, t - h, p)[reachable] / h, rate, rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("kind", KINDS)
def test_an_oracle_that_knows_x0_leaves_only_the_prior_term(kind):
    # a denoiser that is told the clean class makes every reverse step the true posterior: no
    # diffusion or reconstruction cost, so the bound is the prior KL alone (0 here)
    p, x0 = prior(kind), torch.tensor([0, 1, 2, 2])
    x_t = torch.tensor([0, 1, 2, 0 if kind != "masking" else 3])
    oracle = torch.eye(K, dtype=torch.float64)[x0]
    zeros = torch.zeros(4, dtype=torch.float64)
    assert torch.allclose(step_kl(x_t, x0, oracle, 0.6, 0.3, p), zeros, atol=1e-12)
    assert torch.allclose(kl_rate(x_t, x0, oracle, 0.6, p), zeros, atol=1e-12)
    assert torch.allclose(reconstruction_nll(x_t, x0, oracle, 0.6, p), zeros, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_independent_entries_with_the_exact_denoiser_give_the_exact_nll_at_any_step_count(kind, monkeypatch):
    # with independent entries the factorised step is the exact reverse kernel: no gap at any T
    p = prior(kind)
    independent = torch.outer(DATA.sum(1), DATA.sum(0))
    monkeypatch.setattr(sys.modules[__name__], "DENOISER",
                        lambda x_t, t, p: exact_denoiser(x_t, t, p, independent))  # fmt: skip
    for clean in [(0, 0), (1, 2)]:
        exact = -float(torch.log(independent[clean]))
        for steps in (1, 3, 10):
            assert discrete_elbo(clean, steps, p) == pytest.approx(exact, abs=1e-9)


@pytest.mark.parametrize("kind", KINDS)
def test_the_discrete_bound_holds_and_tightens_with_the_steps(kind):
    p = prior(kind)
    bounds = {steps: [discrete_elbo(clean, steps, p) for clean in CLEAN] for steps in (1, 4, 16, 64)}
    for steps, values in bounds.items():
        nll = model_nll(steps, p)
        for clean, value in zip(CLEAN, values):
            # per molecule, the bound is on the T-step sampler's own likelihood
            assert value >= float(nll[clean]) - 1e-9
    average = {steps: float((PAIRS.flatten() * torch.tensor(v)).sum()) for steps, v in bounds.items()}
    # on average over the data it bounds the data entropy, and closes on it as T grows
    assert all(value > entropy() for value in average.values())
    gaps = [average[steps] - entropy() for steps in (1, 4, 16, 64)]
    assert all(a > b for a, b in itertools.pairwise(gaps))
    assert gaps[-1] < 0.02 < gaps[0]


@pytest.mark.parametrize("kind", KINDS)
def test_the_continuous_time_bound_of_the_exact_denoiser_is_the_exact_nll(kind):
    # one entry jumps at a time in continuous time, so per-entry posteriors give the exact reversal
    p = prior(kind)
    for clean in [(0, 0), (1, 2), (2, 0)]:
        exact = -float(torch.log(DATA[clean]))
        assert continuous_elbo(clean, p) == pytest.approx(exact, abs=2e-3)
        assert discrete_elbo(clean, 64, p) == pytest.approx(continuous_elbo(clean, p), abs=0.15)
