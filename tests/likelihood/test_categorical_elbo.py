"""The ELBO of a model with categorical fields (``diffusion.discrete: categorical``): on an exact toy
(Gaussian coordinates, atom classes and bond classes drawn independently, each with its exact
denoiser) it is the exact NLL; on a trained model it has a part per field that add up, the ODE
likelihood refuses it in one line naming the ELBO, and ``moldiff nll`` reports it."""

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from moldiff.chem.graphs import load_qm9_graphs
from moldiff.cli.main import main
from moldiff.config import load_config
from moldiff.data.batch import collate
from moldiff.diffusion.categorical import noised_probabilities, prior_probabilities
from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.discrete import one_hot
from moldiff.diffusion.schedules import make_schedule
from moldiff.diffusion.state import FieldSpec, MoleculeNoise, MolGraph, MolState
from moldiff.errors import MoldiffError
from moldiff.likelihood import field_totals, ode_bound, variational_bound
from moldiff.likelihood.elbo import joint_times
from moldiff.models import load_generator
from moldiff.nets.egnn_pairs import PairOutput
from moldiff.train.loop import train

STD, ATOMS = 0.7, 4
TYPES = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)  # π of each atom's class
BONDS = torch.tensor([0.5, 0.4, 0.1], dtype=torch.float64)  # ρ of each pair's class
FIELDS = ("coords", "types", "charges", "bonds")


def specs(masked: bool) -> tuple[FieldSpec, ...]:
    extra = int(masked)
    return (FieldSpec("coords", columns=3, centred=True),
            FieldSpec("types", kind="categorical", columns=3 + extra, scale=0.25, masked=masked),
            FieldSpec("bonds", on="pairs", kind="categorical", columns=3 + extra, masked=masked))  # fmt: skip


def padded(probs: torch.Tensor, masked: bool) -> torch.Tensor:
    return torch.cat([probs, torch.zeros(1, dtype=torch.float64)]) if masked else probs


class ExactToy(nn.Module):
    """Exact ε̂ of zero-CoM Gaussian coordinates (std STD) and the exact logits of p(x_0 | x_t) of each
    class entry, log π(c) + log q_t(x_t | c): every entry is independent of the others."""

    def __init__(self, schedule, priors: dict[str, torch.Tensor], data: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.schedule, self.priors, self.data = schedule, priors, data

    def forward(self, x, h, e, t, batch, ptr, cond=None, pairs=None):
        values = self.schedule(t.double())
        a, s = values.alpha, values.sigma
        eps = (s / (a**2 * STD**2 + s**2))[batch, None] * x

        def logits(classes, name, rows):
            k = self.priors[name].shape[0]
            q = noised_probabilities(torch.eye(k, dtype=torch.float64).repeat(len(classes), 1),
                                     t.double()[rows].repeat_interleave(k), self.priors[name]).view(-1, k, k)
            likelihood = q.gather(2, classes[:, None, None].expand(-1, k, 1))[:, :, 0]  # q_t(x_t | c), (n, c)
            return torch.log(self.data[name][None, :] * likelihood)

        return PairOutput(eps, logits(h.argmax(1), "types", batch), logits(e.argmax(1), "bonds", batch[pairs[:, 0]]))


def _toy(kind: str, molecules: int = 300):
    masked = kind == "masking"
    fields = specs(masked)
    data = {"types": padded(TYPES, masked), "bonds": padded(BONDS, masked)}
    priors = {name: prior_probabilities(kind, len(p), marginal=p) for name, p in data.items()}
    schedule = make_schedule("polynomial")
    graph = MolGraph.from_counts(torch.full((molecules,), ATOMS)).with_pairs()
    noise = MoleculeNoise(list(range(molecules)), graph, fields, dtype=torch.float64)
    generator = torch.Generator().manual_seed(7)
    types = torch.multinomial(TYPES, graph.batch.shape[0], replacement=True, generator=generator)
    bonds = torch.multinomial(BONDS, graph.pairs.shape[0], replacement=True, generator=generator)
    coords = noise.randn()["coords"] * STD
    z0 = MolState({"coords": coords, "types": one_hot(types, fields[1], torch.float64),
                   "bonds": one_hot(bonds, fields[2], torch.float64)}, fields, graph)  # fmt: skip
    sq = torch.zeros(molecules, dtype=torch.float64).index_add_(0, graph.batch, (coords**2).sum(1))
    per_field = {"coords": 0.5 * sq / STD**2 + 0.5 * (ATOMS - 1) * 3 * math.log(2 * math.pi * STD**2),
                 "types": torch.zeros(molecules, dtype=torch.float64).index_add_(0, graph.batch, -TYPES[types].log()),
                 "bonds": torch.zeros(molecules, dtype=torch.float64).index_add_(0, graph.pair_batch,
                                                                                 -BONDS[bonds].log())}  # fmt: skip
    denoiser = Denoiser(ExactToy(schedule, priors, data), schedule, "eps", class_priors=priors)
    return denoiser, z0, graph, per_field


def test_joint_times_weigh_to_both_integrals():
    # midpoints of a fine grid of u: Σ f(t)/r(t) / n → ∫_0^1 f dt, and Σ |dλ/dt|/r / n → λ_0 − λ_1
    schedule = make_schedule("polynomial")
    u = (torch.arange(200_000, dtype=torch.float64) + 0.5) / 200_000
    t, density = joint_times(u, schedule)
    assert float((t**2 / density).mean()) == pytest.approx(1 / 3, rel=1e-3)
    from moldiff.diffusion.schedules import d_log_snr

    lam_1, lam_0 = schedule.log_snr(torch.tensor([1.0, 0.0], dtype=torch.float64))
    assert float((d_log_snr(schedule(t)).abs() / density).mean()) == pytest.approx(float(lam_0 - lam_1), rel=1e-3)


@pytest.mark.parametrize("kind", ["marginal", "masking"])
def test_the_bound_of_the_exact_toy_is_its_exact_nll_field_by_field(kind):
    denoiser, z0, graph, exact = _toy(kind)
    terms = variational_bound(denoiser, z0, graph, samples=8, generator=torch.Generator().manual_seed(0))
    assert denoiser.nfe == 8 + 2  # the draws, the coordinates' decoder, the classes' last step
    parts = field_totals(terms)
    for name in ("coords", "types", "bonds"):
        gap = parts[name] - exact[name]
        se = float(gap.std()) / len(gap) ** 0.5
        assert abs(float(gap.mean())) < 4 * se + 0.05, (name, float(gap.mean()), se)
    assert torch.allclose(terms["types/prior"], torch.zeros_like(terms["types/prior"]), atol=1e-12)
    assert bool((terms["types/diffusion"] >= 0).all()) and bool((terms["bonds/recon"] >= 0).all())
    assert torch.allclose(terms["nll"], sum(parts.values()) - terms["log_p_n"])
    assert torch.allclose(terms["recon_bonds"], terms["bonds/recon"])


def test_a_denoiser_with_the_wrong_class_frequencies_pays_for_them():
    # Bayes with uniform class frequencies instead of π: the categorical parts must rise
    denoiser, z0, graph, exact = _toy("marginal", molecules=100)
    toy = denoiser.net
    flat = {name: torch.full((len(p),), 1 / len(p), dtype=torch.float64) for name, p in toy.data.items()}
    blind = Denoiser(ExactToy(toy.schedule, toy.priors, flat), toy.schedule, "eps", class_priors=toy.priors)
    good = field_totals(variational_bound(denoiser, z0, graph, samples=4, generator=torch.Generator().manual_seed(0)))
    bad = field_totals(variational_bound(blind, z0, graph, samples=4, generator=torch.Generator().manual_seed(0)))
    for name in ("types", "bonds"):
        assert float((bad[name] - good[name]).mean()) > 0.1 * float(exact[name].mean())
    assert torch.allclose(bad["coords"], good["coords"])  # the coordinates' network is the same


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, tiny_graph_settings):
    out = tmp_path_factory.mktemp("categorical")
    config = load_config("tiny_graph", [*tiny_graph_settings, f"out_dir={out}", "diffusion.discrete=categorical",
                                        "diffusion.discrete_prior=marginal"])  # fmt: skip
    train(config, log=lambda m: None)
    return out / "model.pt"


@pytest.fixture(scope="module")
def valid():
    return load_qm9_graphs("valid")[0]


def test_a_trained_categorical_model_has_a_finite_bound_per_field(model_file, valid):
    generator, _, _ = load_generator(str(model_file))
    index = [int(np.flatnonzero(valid.n_atoms == n)[0]) for n in (6, 12, 18)]
    z0, graph = generator.encode(collate(valid, index, generator.vocab))
    first = variational_bound(generator.denoiser, z0, graph, samples=2, generator=torch.Generator().manual_seed(3))
    again = variational_bound(generator.denoiser, z0, graph, samples=2, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(first[k], again[k]) for k in first)  # the seed fixes the estimate
    parts = field_totals(first)
    assert tuple(parts) == FIELDS
    assert all(bool(torch.isfinite(v).all()) for v in first.values())
    for name in FIELDS[1:]:  # classes: a bound on −log P of discrete data is positive
        assert bool((parts[name] > 0).all()) and bool((first[f"{name}/diffusion"] >= 0).all())
    with pytest.raises(MoldiffError, match="--method elbo") as info:
        ode_bound(generator.denoiser, z0, graph, steps=1)
    assert "\n" not in str(info.value) and "categorical" in str(info.value)


def test_nll_command_takes_a_categorical_model_and_refuses_ode(model_file, valid, tmp_path, capsys):
    generator, _, _ = load_generator(str(model_file))
    seen = np.flatnonzero(np.isin(valid.n_atoms, list(generator.atom_count_hist)))[:3]
    data = tmp_path / "mols.npz"
    valid.subset(seen).save(data)
    assert main(["nll", "--model", str(model_file), "--data", str(data), "--elbo-samples", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)["elbo"]
    assert tuple(result["fields"]) == FIELDS and math.isfinite(result["nll"])
    by_field = sum(part["total"] for part in result["fields"].values()) - result["terms"]["log_p_n"]
    assert abs(result["nll"] - by_field) < 1e-3 * abs(by_field) + 1e-3
    for method in ("ode", "both"):
        assert main(["nll", "--model", str(model_file), "--data", str(data), "--method", method]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "--method elbo" in err and "\n" not in err
