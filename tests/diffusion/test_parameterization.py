import torch

from moldiff.diffusion import parameterization as P
from moldiff.diffusion.schedules import PolynomialVP


def _setup():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(7, 8, generator=g, dtype=torch.float64)
    eps = torch.randn(7, 8, generator=g, dtype=torch.float64)
    t = torch.rand(7, 1, generator=g, dtype=torch.float64) * 0.98 + 0.01
    a, s, da, ds = PolynomialVP()(t)
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
