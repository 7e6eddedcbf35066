import pytest
import torch

from moldiff.diffusion import parameterization as P
from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.schedules import SCHEDULES, PolynomialVP, make_schedule
from moldiff.diffusion.state import MolGraph, MolState, coordinate_fields


def _setup(schedule=None):
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(7, 8, generator=g, dtype=torch.float64)
    eps = torch.randn(7, 8, generator=g, dtype=torch.float64)
    t = torch.rand(7, 1, generator=g, dtype=torch.float64) * 0.98 + 0.01
    a, s, da, ds = (schedule or PolynomialVP())(t)
    return x0, eps, a * x0 + s * eps, (a, s, da, ds)


def test_eps_x0_round_trip():
    x0, eps, xt, (a, s, _, _) = _setup()
    assert torch.allclose(P.x0_from_eps(xt, eps, a, s), x0)
    assert torch.allclose(P.eps_from_x0(xt, x0, a, s), eps)


def test_score_round_trip():
    _, eps, _, (_, s, _, _) = _setup()
    assert torch.allclose(P.eps_from_score(P.score_from_eps(eps, s), s), eps)


def test_velocity_is_path_derivative_and_round_trips():
    x0, eps, xt, (a, s, da, ds) = _setup()
    v = P.velocity_from_eps(xt, eps, a, s, da, ds)
    assert torch.allclose(v, da * x0 + ds * eps)
    assert torch.allclose(P.eps_from_velocity(xt, v, a, s, da, ds), eps)
    assert torch.allclose(P.x0_from_velocity(xt, v, a, s, da, ds), x0)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
@pytest.mark.parametrize("kind", P.KINDS)
def test_every_kind_round_trips_under_every_schedule(kind, name):
    x0, eps, xt, coeffs = _setup(make_schedule(name))
    out = P.from_x0_eps(kind, x0, eps, coeffs)
    back_x0, back_eps = P.to_x0_eps(kind, xt, out, coeffs)
    assert torch.allclose(back_x0, x0, atol=1e-8) and torch.allclose(back_eps, eps, atol=1e-8)
    for other in P.KINDS:  # and through any other kind
        via = P.from_x0_eps(other, *P.to_x0_eps(kind, xt, out, coeffs), coeffs)
        assert torch.allclose(via, P.from_x0_eps(other, x0, eps, coeffs), atol=1e-8), other


def test_unknown_kind_is_an_error():
    _, eps, xt, coeffs = _setup()
    with pytest.raises(ValueError, match="unknown prediction kind"):
        P.to_x0_eps("noise", xt, eps, coeffs)


class _Oracle(torch.nn.Module):
    """A network that returns the true prediction of its kind for a known (x_0, ε)."""

    def __init__(self, target):
        super().__init__()
        self.target = target

    def forward(self, x, h, t, batch, ptr, cond=None):
        return self.target["coords"], self.target["types"]


@pytest.mark.parametrize("name", sorted(SCHEDULES))
@pytest.mark.parametrize("kind", P.KINDS)
def test_denoiser_gives_every_view_of_any_prediction(kind, name):
    schedule = make_schedule(name)
    graph = MolGraph.from_counts(torch.tensor([3, 4]))
    g = torch.Generator().manual_seed(1)
    fields = coordinate_fields(3)
    x0 = MolState.from_columns(torch.randn(7, 6, generator=g, dtype=torch.float64), fields, graph).project()
    eps = MolState.from_columns(torch.randn(7, 6, generator=g, dtype=torch.float64), fields, graph).project()
    t = torch.tensor([0.2, 0.7], dtype=torch.float64)
    coeffs = tuple(schedule(t))  # per molecule: the state broadcasts them to its atoms
    z = coeffs[0] * x0 + coeffs[1] * eps
    denoiser = Denoiser(_Oracle(P.from_x0_eps(kind, x0, eps, coeffs)), schedule, kind)
    for other in P.KINDS:
        assert torch.allclose(denoiser.predict(other, z, t, graph).columns(),
                              P.from_x0_eps(other, x0, eps, coeffs).columns(), atol=1e-8)  # fmt: skip
    assert torch.allclose(denoiser.x0(z, t, graph).columns(), x0.columns(), atol=1e-8)
    assert torch.allclose(denoiser.score(z, t, graph).columns(), (-eps / coeffs[1]).columns(), atol=1e-6)
    assert denoiser.nfe == len(P.KINDS) + 2


def test_denoiser_refuses_unknown_predictions():
    with pytest.raises(ValueError, match="unknown prediction"):
        Denoiser(torch.nn.Identity(), PolynomialVP(), "noise")
