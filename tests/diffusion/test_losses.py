"""The three training views on a toy with a known answer: a tiny MLP trained on 2D Gaussian data
(one-atom "molecules", so the coordinates vanish and the types carry the data) must recover the
data's mean and spread through sampling."""

import pytest
import torch
from torch import nn

from moldiff.config import DiffusionConfig
from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.losses import VIEWS, flow_matching_loss, score_matching_loss, simple_loss, training_loss
from moldiff.diffusion.schedules import make_schedule, prior_std
from moldiff.diffusion.state import MolGraph, MoleculeNoise, MolState, coordinate_fields
from moldiff.generator import build_schedule
from moldiff.solvers import get_solver, solver_times

FIELDS = coordinate_fields(2)

MEAN, STD = torch.tensor([1.0, -0.5]), torch.tensor([0.5, 0.3])
SAMPLER = {"variational": ("ddpm", 200), "score": ("euler-maruyama", 200), "flow": ("euler", 50)}


class MLP(nn.Module):
    """A backbone-shaped MLP over the type features and t (the coordinates of one atom are 0)."""

    def __init__(self, features=2, width=64):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(features + 1, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(),
                                  nn.Linear(width, width), nn.SiLU(), nn.Linear(width, features))  # fmt: skip

    def forward(self, x, h, t, batch, ptr, cond=None):
        return torch.zeros_like(x), self.body(torch.cat([h, t[batch, None]], 1))


def _train(view, steps=1000, batch=256):
    cfg = DiffusionConfig(view=view)
    torch.manual_seed(0)
    net = MLP()
    denoiser = Denoiser(net, build_schedule(cfg), cfg.prediction)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    graph = MolGraph.from_counts(torch.ones(batch, dtype=torch.long))
    history = []
    for _ in range(steps):
        z0 = MolState({"coords": torch.zeros(batch, 3), "types": MEAN + STD * torch.randn(batch, 2, generator=g)},
                      FIELDS, graph)  # fmt: skip
        loss = training_loss(denoiser, z0, graph, cfg, generator=g)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    return denoiser, history


@pytest.mark.parametrize("view", VIEWS)
def test_each_view_learns_a_gaussian(view):
    denoiser, history = _train(view)
    assert sum(history[:10]) / 10 > 1.5 * sum(history[-100:]) / 100  # the loss falls
    name, steps = SAMPLER[view]
    n = 2000
    graph = MolGraph.from_counts(torch.ones(n, dtype=torch.long))
    noise = MoleculeNoise(list(range(n)), graph, FIELDS)
    times = solver_times(name, steps, denoiser.schedule)
    with torch.no_grad():
        z = noise.randn() * float(prior_std(denoiser.schedule(times[0])))
        h = get_solver(name)(denoiser, z, times, graph, noise)["types"]
    assert torch.allclose(h.mean(0), MEAN, atol=0.1), h.mean(0)
    assert torch.allclose(h.std(0) / STD, torch.ones(2), atol=0.15), h.std(0)


@pytest.mark.parametrize("loss_fn, schedule_name, prediction", [
    (simple_loss, "polynomial", "eps"), (score_matching_loss, "polynomial", "score"),
    (flow_matching_loss, "linear", "velocity"), (simple_loss, "cosine", "velocity"),
])  # fmt: skip
def test_losses_vanish_for_the_true_prediction(loss_fn, schedule_name, prediction):
    from moldiff.diffusion import parameterization as P

    schedule = make_schedule(schedule_name)
    graph = MolGraph.from_counts(torch.tensor([3, 4]))
    fields = coordinate_fields(3)
    z0 = MolState.from_columns(torch.randn(7, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64), fields,
                               graph).project()  # fmt: skip

    class Oracle(nn.Module):
        """Knows z_0, so it can return the exact prediction for any z_t: ε = (z_t − α z_0)/σ."""

        def forward(self, x, h, t, batch, ptr, cond=None):
            coeffs = tuple(schedule(t))
            z = MolState({"coords": x, "types": h}, fields, graph)
            eps = (z - coeffs[0] * z0) / coeffs[1]
            out = P.from_x0_eps(prediction, z0, eps, coeffs)
            return out["coords"], out["types"]

    denoiser = Denoiser(Oracle(), schedule, prediction)
    losses = loss_fn(denoiser, z0, graph, generator=torch.Generator().manual_seed(1))
    assert float(losses["loss"]) < 1e-12


def test_training_loss_follows_the_config_view():
    cfg = DiffusionConfig()
    assert cfg.view == "variational"
    flow = DiffusionConfig(view="flow")
    assert (flow.schedule, flow.prediction) == ("linear", "velocity")
    assert DiffusionConfig(view="score").prediction == "score"

    class Bad:
        view, type_loss_weight = "magic", 1.0

    with pytest.raises(ValueError, match="unknown view"):
        training_loss(None, None, None, Bad())


def test_a_pair_field_adds_its_own_per_molecule_mean_to_the_atom_loss():
    from moldiff.diffusion.losses import _reduce
    from moldiff.diffusion.state import FieldSpec, MolGraph, MolState, coordinate_fields

    graph = MolGraph.from_counts(torch.tensor([1, 3])).with_pairs()  # a lone atom has no pairs
    specs = coordinate_fields(2, 0.25) + (FieldSpec("bonds", on="pairs", kind="gaussian", columns=4),)
    err = MolState({"coords": torch.full((4, 3), 1.0), "types": torch.full((4, 2), 4.0),
                    "bonds": torch.tensor([[2.0] * 4, [2.0] * 4, [8.0] * 4])}, specs, graph)  # fmt: skip
    out = _reduce(err, graph, type_weight=0.5)
    atom_part = (3 * 1.0 + 0.5 * 2 * 4.0) / (3 + 0.5 * 2)  # per atom, the same in both molecules
    pair_part = torch.tensor([0.0, (2 + 2 + 8) / 3])  # molecule 0 has no pairs
    assert out["loss"].item() == pytest.approx((atom_part + pair_part).mean().item())
    assert out["loss_bonds"].item() == pytest.approx(pair_part.mean().item())
    assert out["loss_pos"].item() == pytest.approx(1.0) and out["loss_type"].item() == pytest.approx(4.0)
