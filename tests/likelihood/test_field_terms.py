"""Per-field likelihood terms against closed forms: zero-mean Gaussian fields on atoms and on atom
pairs, each with its own std, whose exact ε̂ is known. For such a field with d dimensions and std s,
E‖ε − ε̂‖² = d · s²e^{2λ} / (1 + s²e^{2λ}) at log-SNR λ, so the diffusion term is
d/2 · log((1 + s²e^{2λ_0}) / (1 + s²e^{2λ_1})); the prior KL is d (log(p/σ_1) + σ_1²/2p² − ½) + α_1² d s²/2p²
in expectation."""

import math

import pytest
import torch
from torch import nn

from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.schedules import make_schedule, prior_std
from moldiff.diffusion.state import FieldSpec, MolGraph, MoleculeNoise, MolState
from moldiff.likelihood import field_totals, variational_bound
from moldiff.likelihood.elbo import decoder_nll
from moldiff.nets.egnn_pairs import PairOutput

SPECS = (FieldSpec("coords", columns=3, centred=True), FieldSpec("charges", columns=2),
         FieldSpec("bonds", on="pairs", columns=3))  # fmt: skip
STD = {"coords": 0.7, "charges": 0.5, "bonds": 1.3}


class ExactGaussianEps(nn.Module):
    """A network on atoms and pairs whose output is the exact ε̂ = σ z_t / (α² s² + σ²) of each field."""

    def __init__(self, schedule) -> None:
        super().__init__()
        self.schedule = schedule

    def forward(self, x, h, e, t, batch, ptr, cond=None, pairs=None):
        values = self.schedule(t)
        a, s = values.alpha, values.sigma

        def eps(z, std, rows):
            return (s / (a**2 * std**2 + s**2))[rows, None] * z

        return PairOutput(eps(x, STD["coords"], batch), eps(h, STD["charges"], batch),
                          eps(e, STD["bonds"], batch[pairs[:, 0]]))  # fmt: skip


def _dof(graph: MolGraph) -> dict[str, torch.Tensor]:
    n = graph.num_atoms.double()
    return {"coords": (n - 1) * 3, "charges": n * 2, "bonds": n * (n - 1) / 2 * 3}


@pytest.mark.parametrize("schedule_name, options", [("polynomial", {}), ("ve", {}),
                                                    ("cosine", {"log_snr_min": 0.0})])  # fmt: skip
def test_each_field_has_its_own_prior_and_diffusion_term(schedule_name, options):
    """(The cosine schedule stops at SNR 1, where the prior KL counts each field's dimensions.)"""
    schedule = make_schedule(schedule_name, **options)
    counts = torch.arange(400) % 6 + 2  # 2 to 7 atoms: 1 to 21 pairs
    graph = MolGraph.from_counts(counts).with_pairs()
    unit = MoleculeNoise(list(range(len(counts))), graph, SPECS, dtype=torch.float64).randn()
    x0 = MolState({f.name: unit[f.name] * STD[f.name] for f in SPECS}, SPECS, graph)
    denoiser = Denoiser(ExactGaussianEps(schedule), schedule, "eps")
    terms = variational_bound(denoiser, x0, graph, samples=8, generator=torch.Generator().manual_seed(0))

    ends = schedule(torch.tensor([0.0, 1.0], dtype=torch.float64))
    lam_0, lam_1 = torch.log(ends.alpha / ends.sigma)
    a_1, s_1 = ends.alpha[1], ends.sigma[1]
    p = prior_std(schedule(torch.tensor(1.0, dtype=torch.float64)))
    dof = _dof(graph)
    for name, std in STD.items():
        diffusion = dof[name] / 2 * (torch.log1p(std**2 * torch.exp(2 * lam_0)) - torch.log1p(std**2 * torch.exp(2 * lam_1)))
        gap = terms[f"{name}/diffusion"] - diffusion
        se = float(gap.std()) / len(gap) ** 0.5
        assert abs(float(gap.mean())) < 4 * se + 1e-3 * float(diffusion.mean()), (name, float(gap.mean()), se)
        prior = dof[name] * (torch.log(p / s_1) + s_1**2 / (2 * p**2) - 0.5 + a_1**2 * std**2 / (2 * p**2))
        gap = terms[f"{name}/prior"] - prior
        se = float(gap.std()) / len(gap) ** 0.5
        assert abs(float(gap.mean())) < 4 * se + 1e-9, (name, float(gap.mean()), se)
    # the coordinates' own part is their exact −log p(x) (zero-CoM, (n − 1)·3 dimensions), as for a coordinate-only state
    sq = torch.zeros(len(counts), dtype=torch.float64).index_add_(0, graph.batch, (x0["coords"] ** 2).sum(1))
    true = 0.5 * sq / STD["coords"] ** 2 + 0.5 * dof["coords"] * math.log(2 * math.pi * STD["coords"] ** 2)
    gap = field_totals(terms)["coords"] - true
    assert abs(float(gap.mean())) < 4 * float(gap.std()) / len(gap) ** 0.5 + 0.1
    assert denoiser.nfe == 8 + 1  # one network evaluation serves every field


def test_categorical_decoders_read_each_field_per_row():
    """A one-hot charge per atom and bond class per pair: near-certain from a clean z_0; from a z_0
    half-way between two classes, log 2 nats per atom and per pair."""
    schedule = make_schedule("polynomial")
    scale = 0.25
    specs = (FieldSpec("coords", columns=3, centred=True), FieldSpec("charges", columns=3, scale=scale),
             FieldSpec("bonds", on="pairs", columns=4, scale=scale))  # fmt: skip
    graph = MolGraph.from_counts(torch.tensor([3, 5])).with_pairs()  # 3 and 10 pairs
    n, p = 8, 13
    charges = torch.zeros(n, 3, dtype=torch.float64)
    charges[:, 1] = scale
    bonds = torch.zeros(p, 4, dtype=torch.float64)
    bonds[:, 0] = scale
    x0 = MolState({"coords": torch.zeros(n, 3, dtype=torch.float64), "charges": charges, "bonds": bonds}, specs, graph)
    denoiser = Denoiser(ExactGaussianEps(schedule), schedule, "eps")
    clean = decoder_nll(denoiser, x0, x0.zeros_like(), graph)
    assert float(clean["charges"].max()) < 1e-6 and float(clean["bonds"].max()) < 1e-6
    values = schedule(torch.tensor(0.0, dtype=torch.float64))
    half = x0.zeros_like()  # noise moving the true class and the next one to scale/2
    half["charges"][:, 1] = (scale / 2 - values.alpha * scale) / values.sigma
    half["charges"][:, 2] = scale / 2 / values.sigma
    half["bonds"][:, 0] = (scale / 2 - values.alpha * scale) / values.sigma
    half["bonds"][:, 1] = scale / 2 / values.sigma
    nll = decoder_nll(denoiser, x0, half, graph)
    assert torch.allclose(nll["charges"], graph.num_atoms.double() * math.log(2), atol=0.05)
    assert torch.allclose(nll["bonds"], graph.num_pairs.double() * math.log(2), atol=0.05)
