import torch

from moldiff.diffusion.schedules import PolynomialVP, make_schedule


def test_polynomial_endpoints_and_variance_preserving():
    s = PolynomialVP()
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    a, sig, _, _ = s(t)
    assert torch.allclose(a**2 + sig**2, torch.ones_like(a))
    assert a[0] > 0.9999 and sig[0] < 0.01
    assert a[-1] < 0.01 and sig[-1] > 0.9999


def test_log_snr_decreases_and_inverts():
    s = PolynomialVP()
    t = torch.linspace(0, 1, 201, dtype=torch.float64)
    lam = s.log_snr(t)
    assert (lam[1:] < lam[:-1]).all()
    assert torch.allclose(s.t_from_log_snr(lam), t, atol=1e-6)


def test_derivatives_match_finite_differences():
    s = PolynomialVP()
    t = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    h = 1e-6
    hi, lo, mid = s(t + h), s(t - h), s(t)
    assert torch.allclose(mid.d_alpha, (hi.alpha - lo.alpha) / (2 * h), atol=1e-5)
    assert torch.allclose(mid.d_sigma, (hi.sigma - lo.sigma) / (2 * h), atol=1e-5)


def test_unknown_schedule_is_an_error():
    import pytest

    with pytest.raises(ValueError, match="unknown schedule"):
        make_schedule("nope")
