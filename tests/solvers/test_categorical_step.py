"""The categorical step every solver goes through (moldiff.solvers.categorical), on an exact toy
denoiser: with the true p(x_0 | x_t) the classes a solver ends with follow the data distribution."""

import numpy as np
import pytest
import torch

from moldiff.diffusion import categorical as C
from moldiff.diffusion.denoiser import PredictionViews
from moldiff.diffusion.schedules import make_schedule
from moldiff.diffusion.state import FieldSpec, MolGraph, MoleculeNoise, MolState
from moldiff.solvers import SOLVERS, get_solver
from moldiff.solvers.categorical import CategoricalSteps, start_classes

ATOM_DATA = torch.tensor([0.6, 0.3, 0.1, 0.0], dtype=torch.float64)  # the clean classes' distribution
PAIR_DATA = torch.tensor([0.8, 0.15, 0.05], dtype=torch.float64)


def _specs(prior: str) -> tuple[FieldSpec, ...]:
    mask = prior == "masking"
    kind = {"kind": "categorical", "scale": 0.25, "masked": mask}
    return (FieldSpec("coords", columns=3, centred=True), FieldSpec("types", columns=4 + mask, **kind),
            FieldSpec("bonds", on="pairs", columns=3 + mask, **kind))  # fmt: skip


def _priors(specs, prior: str) -> dict[str, torch.Tensor]:
    marginal = {"types": torch.tensor([0.25, 0.25, 0.25, 0.25]), "bonds": torch.tensor([0.5, 0.3, 0.2])}
    return {f.name: C.prior_probabilities(prior, f.columns, marginal.get(f.name)) for f in specs[1:]}


class ExactDenoiser(PredictionViews):
    """Knows the data: entries independent, classes drawn from ATOM_DATA and PAIR_DATA; its logits
    are log p(x_0 | x_t) exactly; the coordinates get ε̂ = 0."""

    def __init__(self, specs, priors) -> None:
        self.specs, self.class_priors, self.schedule, self.nfe = specs, priors, make_schedule("cosine"), 0

    def _posterior(self, z: MolState, t: torch.Tensor, f: FieldSpec) -> torch.Tensor:
        data = ATOM_DATA if f.on == "atoms" else PAIR_DATA
        data = torch.cat([data, torch.zeros(f.columns - len(data), dtype=torch.float64)])
        kappa = C.keep_probability(t.double())[z.graph.index(f.on), None]
        x_t = z[f.name].argmax(1)
        # p(x_0 = c | x_t) ∝ π_c (κ δ(c, x_t) + (1 − κ) p(x_t))
        like = kappa * torch.nn.functional.one_hot(x_t, f.columns) + (1 - kappa) * self.class_priors[f.name][x_t][:, None]
        return (data * like).log()

    def predict(self, kind, z, t, graph):
        self.nfe += 1
        out = {f.name: torch.zeros_like(z[f.name]) if f.kind == "gaussian" else self._posterior(z, t, f)
               for f in z.specs}  # fmt: skip
        return MolState(out, z.specs, graph)

    def x0_eps(self, z, t, graph):
        out = self.predict("eps", z, t, graph)
        return out, out


def _run(solver_name: str, prior: str, seeds: list[int], sizes: list[int], times: torch.Tensor):
    specs = _specs(prior)
    toy = ExactDenoiser(specs, _priors(specs, prior))
    graph = MolGraph.from_counts(torch.tensor(sizes)).with_pairs()
    noise = MoleculeNoise(seeds, graph, specs[:1])
    z = noise.randn()
    full = MolState({"coords": z["coords"], "types": torch.zeros(graph.batch.shape[0], specs[1].columns),
                     "bonds": torch.zeros(graph.pairs.shape[0], specs[2].columns)}, specs, graph)  # fmt: skip
    steps = CategoricalSteps(toy, start_classes(full, noise, toy.class_priors), noise)
    out = steps.finish(get_solver(solver_name)(steps, z, times, graph, noise))
    return out["types"].argmax(1), out["bonds"].argmax(1), toy.nfe


# a grid whose last prediction is close to t = 0, so the final argmax of x̂₀ adds no visible bias
TIMES = torch.cat([torch.linspace(1.0, 0.05, 20), torch.tensor([0.002, 0.0])])


@pytest.mark.parametrize("prior", ["uniform", "marginal", "masking"])
@pytest.mark.parametrize("solver", ["ddpm", "heun", "adaptive"])
def test_with_the_exact_posterior_final_classes_follow_the_data(prior, solver):
    n = 300
    types, bonds, _ = _run(solver, prior, list(range(n)), [8] * n, TIMES)
    for classes, data in ((types, ATOM_DATA), (bonds, PAIR_DATA)):
        freq = torch.bincount(classes, minlength=len(data))[: len(data)].double() / len(classes)
        assert int(classes.max()) < len(data)  # never the mask, never a class the data lacks
        err = (data * (1 - data) / len(classes)).sqrt()
        assert ((freq - data).abs() <= 4 * err + 1e-3).all(), (freq, data)


def test_a_wrong_posterior_is_caught():
    """The frequency check above can fail: a toy that believes in uniform classes gives them."""
    n = 200
    specs = _specs("uniform")
    toy = ExactDenoiser(specs, _priors(specs, "uniform"))
    toy._posterior = lambda z, t, f: torch.zeros(z[f.name].shape[0], f.columns, dtype=torch.float64)
    graph = MolGraph.from_counts(torch.full((n,), 8)).with_pairs()
    noise = MoleculeNoise(list(range(n)), graph, specs[:1])
    z = noise.randn()
    full = MolState({"coords": z["coords"], "types": torch.zeros(8 * n, 4), "bonds": torch.zeros(28 * n, 3)}, specs, graph)
    steps = CategoricalSteps(toy, start_classes(full, noise, toy.class_priors), noise)
    types = steps.finish(get_solver("ddpm")(steps, z, TIMES, graph, noise))["types"].argmax(1)
    freq = torch.bincount(types, minlength=4).double() / len(types)
    assert (freq - ATOM_DATA).abs().max() > 0.2


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_every_solver_moves_the_classes_and_a_molecule_is_its_seed(solver):
    times = torch.linspace(1.0, 0.0, 6)
    types, bonds, nfe = _run(solver, "masking", [5, 6, 7], [3, 4, 5], times)
    assert nfe > 0 and int(types.max()) < 4 and int(bonds.max()) < 3  # masks all resolved
    again = _run(solver, "masking", [5, 6, 7], [3, 4, 5], times)
    assert torch.equal(types, again[0]) and torch.equal(bonds, again[1])
    alone = _run(solver, "masking", [6], [4], times)  # molecule 1 regenerated on its own
    assert torch.equal(alone[0], types[3:7]) and torch.equal(alone[1], bonds[3:9])


def test_different_seeds_give_different_classes():
    times = torch.linspace(1.0, 0.0, 6)
    a = _run("ddpm", "uniform", list(range(20)), [6] * 20, times)[0]
    b = _run("ddpm", "uniform", list(range(100, 120)), [6] * 20, times)[0]
    assert not torch.equal(a, b)


def test_per_row_reverse_probabilities_match_the_scalar_ones():
    prior = C.prior_probabilities("masking", 4)
    x_t = torch.tensor([0, 3, 2, 3])
    probs = torch.softmax(torch.randn(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)), 1)
    rows = C.reverse_probabilities(x_t, probs, torch.tensor([0.9, 0.5, 0.5, 0.3]), torch.tensor([0.5, 0.2, 0.0, 0.1]), prior)
    for i, (t, s) in enumerate([(0.9, 0.5), (0.5, 0.2), (0.5, 0.0), (0.3, 0.1)]):
        assert torch.allclose(rows[i], C.reverse_probabilities(x_t[i : i + 1], probs[i : i + 1], t, s, prior)[0])
    assert np.isclose(float(rows.sum()), 4.0)


def _held_run(hold: bool, record: list | None = None, n: int = 200):
    """ddpm on the exact toy with the first 2 atoms of every molecule held at classes 2 and 3."""
    specs = _specs("uniform")
    toy = ExactDenoiser(specs, _priors(specs, "uniform"))
    graph = MolGraph.from_counts(torch.full((n,), 5)).with_pairs()
    held = graph.leading(2)
    if record is not None:  # the held entries' classes at every prediction, with its time
        posterior = toy._posterior
        toy._posterior = lambda z, t, f: (f.on == "atoms" and record.append((float(t[0]), z[f.name][held].argmax(1))),
                                          posterior(z, t, f))[1]  # fmt: skip
    noise = MoleculeNoise(list(range(n)), graph, specs[:1])
    z = noise.randn()
    full = MolState({"coords": z["coords"], "types": torch.zeros(5 * n, 4), "bonds": torch.zeros(10 * n, 3)}, specs, graph)
    steps = CategoricalSteps(toy, start_classes(full, noise, toy.class_priors), noise)
    if hold:
        steps.hold({"types": (held, torch.tensor([2, 3]).repeat(n))})
    return steps.finish(get_solver("ddpm")(steps, z, torch.linspace(1.0, 0.0, 5), graph, noise))["types"].argmax(1), held


def test_held_entries_follow_the_forward_process_and_end_on_their_class():
    record = []
    types, held = _held_run(True, record)
    assert types[held].tolist() == [2, 3] * 200
    free, _ = _held_run(False)
    assert torch.equal(types[~held], free[~held])  # the toy's entries are independent: the free ones move as before
    assert len(record) == 4
    for t, classes in record[1:]:  # q(x_t | x_0 = c) keeps c with probability κ + (1 − κ)/K
        kappa = float(C.keep_probability(torch.tensor(t)))
        expected = kappa + (1 - kappa) / 4
        kept = (classes == torch.tensor([2, 3]).repeat(200)).double().mean()
        assert abs(float(kept) - expected) < 4 * (expected * (1 - expected) / 400) ** 0.5 + 1e-9, (t, float(kept))


def test_renoising_back_to_the_start_draws_from_the_prior():
    specs = _specs("marginal")
    toy = ExactDenoiser(specs, _priors(specs, "marginal"))
    n = 400
    graph = MolGraph.from_counts(torch.full((n,), 3)).with_pairs()
    noise = MoleculeNoise(list(range(n)), graph, specs[:1])
    full = MolState({"coords": noise.randn()["coords"], "types": torch.zeros(3 * n, 4),
                     "bonds": torch.zeros(3 * n, 3)}, specs, graph)  # fmt: skip
    steps = CategoricalSteps(toy, full, noise)  # every class 0
    steps.renoise(torch.tensor(0.0), torch.tensor(1.0))
    freq = torch.bincount(steps.classes["bonds"], minlength=3).double() / (3 * n)
    prior = toy.class_priors["bonds"]
    assert ((freq - prior).abs() <= 4 * (prior * (1 - prior) / (3 * n)).sqrt()).all(), freq
