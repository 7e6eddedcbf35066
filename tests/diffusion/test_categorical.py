"""Categorical mixture paths: the forward marginals, and the exact reverse step on a toy data
distribution whose denoiser is known in closed form."""

import pytest
import torch

from moldiff.diffusion.categorical import (add_noise, noised_probabilities, prior_probabilities, reverse_probabilities,
                                           reverse_step)  # fmt: skip

DATA = torch.tensor([0.5, 0.3, 0.2, 0.0], dtype=torch.float64)  # class 3 is never data (the mask class)


def prior(kind: str) -> torch.Tensor:
    return prior_probabilities(kind, 4, marginal=DATA)


def exact_x0_posterior(x_t: torch.Tensor, t: float, p: torch.Tensor) -> torch.Tensor:
    """p(x_0 = c | x_t) ∝ π(c) q(x_t | x_0 = c) for data π = DATA."""
    likelihood = noised_probabilities(torch.eye(4, dtype=torch.float64), torch.full((4,), t), p)  # rows c
    joint = DATA[None, :] * likelihood[:, x_t].T  # (n, c)
    return joint / joint.sum(-1, keepdim=True)


@pytest.mark.parametrize("kind", ["uniform", "marginal", "masking"])
def test_the_path_runs_from_data_to_the_prior(kind):
    p = prior(kind)
    data = DATA[None, :]
    assert torch.allclose(noised_probabilities(data, torch.tensor([0.0]), p), data)
    assert torch.allclose(noised_probabilities(data, torch.tensor([1.0]), p), p[None, :])


@pytest.mark.parametrize("kind", ["uniform", "marginal", "masking"])
@pytest.mark.parametrize("t, s", [(1.0, 0.0), (1.0, 0.7), (0.6, 0.2), (0.3, 0.29)])
def test_the_exact_reverse_step_moves_one_marginal_onto_the_next(kind, t, s):
    # propagate probabilities, no sampling: Σ_i q_t(i) p(x_s = j | x_t = i) must equal q_s(j)
    p = prior(kind)
    q_t = noised_probabilities(DATA[None, :], torch.tensor([t]), p)[0]
    states = torch.arange(4)
    step = reverse_probabilities(states, exact_x0_posterior(states, t, p), t, s, p)  # rows i
    reachable = q_t > 0
    moved = (q_t[reachable, None] * step[reachable]).sum(0)
    assert torch.allclose(moved, noised_probabilities(DATA[None, :], torch.tensor([s]), p)[0], atol=1e-12)


@pytest.mark.parametrize("kind", ["uniform", "masking"])
def test_sampling_from_the_prior_in_a_few_steps_draws_the_data(kind):
    p, generator = prior(kind), torch.Generator().manual_seed(0)
    n = 20_000
    x = add_noise(torch.zeros(n, dtype=torch.long), torch.ones(n), p, generator)  # pure prior at t = 1
    times = [1.0, 0.75, 0.5, 0.2, 0.0]
    for t, s in zip(times[:-1], times[1:]):
        x = reverse_step(x, exact_x0_posterior(x, t, p), t, s, p, generator)
    frequencies = torch.bincount(x, minlength=4).double() / n
    assert torch.allclose(frequencies, DATA, atol=0.015)  # ~4 standard errors at n = 20,000


def test_a_masked_entry_once_revealed_stays():
    p = prior("masking")
    x_t = torch.tensor([1, 2])
    probs = reverse_probabilities(x_t, torch.full((2, 4), 0.25, dtype=torch.float64), 0.8, 0.5, p)
    assert torch.equal(probs.argmax(-1), x_t) and torch.allclose(probs.max(-1).values, torch.ones(2, dtype=torch.float64))


def test_noising_at_the_data_end_changes_nothing_and_bad_steps_are_refused():
    x0 = torch.tensor([0, 1, 2, 2])
    assert torch.equal(add_noise(x0, torch.zeros(4), prior("uniform")), x0)
    with pytest.raises(ValueError, match="earlier s"):
        reverse_probabilities(x0, torch.eye(4, dtype=torch.float64), 0.2, 0.5, prior("uniform"))
    with pytest.raises(ValueError, match="unknown categorical prior"):
        prior_probabilities("gumbel", 4)
