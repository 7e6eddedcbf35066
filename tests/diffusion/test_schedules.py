import math

import pytest
import torch

from moldiff.diffusion.schedules import SCHEDULES, PolynomialVP, d_log_snr, make_schedule, prior_std

ALL = sorted(SCHEDULES)
VP = ["polynomial", "cosine", "linear-beta"]


def test_polynomial_endpoints_and_variance_preserving():
    s = PolynomialVP()
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    a, sig, _, _ = s(t)
    assert torch.allclose(a**2 + sig**2, torch.ones_like(a))
    assert a[0] > 0.9999 and sig[0] < 0.01
    assert a[-1] < 0.01 and sig[-1] > 0.9999


@pytest.mark.parametrize("name", VP)
def test_variance_preserving_schedules(name):
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    a, s, _, _ = make_schedule(name)(t)
    assert torch.allclose(a**2 + s**2, torch.ones_like(a))
    assert a[0] > 0.9999 and s[0] < 0.01 and a[-1] < 0.01 and s[-1] > 0.9999


def test_variance_exploding_endpoints():
    sched = make_schedule("ve", sigma_min=0.02, sigma_max=5.0)
    a, s, da, _ = sched(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    assert torch.equal(a, torch.ones(3, dtype=torch.float64)) and torch.equal(da, torch.zeros(3, dtype=torch.float64))
    assert torch.allclose(s, torch.tensor([0.02, math.sqrt(0.02 * 5.0), 5.0], dtype=torch.float64))


def test_linear_flow_is_the_clamped_interpolation():
    sched = make_schedule("linear", delta=1e-3)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    a, s, da, ds = sched(t)
    assert torch.allclose(a, 1 - 0.999 * t) and torch.allclose(s, 1e-3 + 0.999 * t)
    assert torch.allclose(a + s, torch.full_like(t, 1.001))
    assert torch.allclose(da, torch.full_like(t, -0.999)) and torch.allclose(ds, torch.full_like(t, 0.999))


@pytest.mark.parametrize("name", ALL)
def test_log_snr_is_finite_decreasing_and_inverts(name):
    s = make_schedule(name)
    t = torch.linspace(0, 1, 201, dtype=torch.float64)
    lam = s.log_snr(t)
    assert torch.isfinite(lam).all()
    assert (lam[1:] < lam[:-1]).all()
    a, sig, _, _ = s(t)
    assert torch.allclose(lam, torch.log(a / sig))
    assert torch.allclose(s.t_from_log_snr(lam), t, atol=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_derivatives_match_finite_differences(name):
    s = make_schedule(name)
    t = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    h = 1e-6
    hi, lo, mid = s(t + h), s(t - h), s(t)
    scale = 1 + mid.sigma.abs()  # σ_max of ``ve`` is 10: compare relative to the size of σ
    assert torch.allclose(mid.d_alpha, (hi.alpha - lo.alpha) / (2 * h), atol=1e-5)
    assert torch.allclose(mid.d_sigma / scale, (hi.sigma - lo.sigma) / (2 * h) / scale, atol=1e-5)
    assert torch.allclose(d_log_snr(mid), (s.log_snr(t + h) - s.log_snr(t - h)) / (2 * h), atol=1e-4)
    assert (d_log_snr(mid) < 0).all()


@pytest.mark.parametrize("name", ALL)
def test_prior_std(name):
    s = make_schedule(name)
    std = prior_std(s(torch.tensor(1.0, dtype=torch.float64)))
    expected = math.sqrt(1 + 10.0**2) if name == "ve" else (math.sqrt(1 + 1e-6) if name == "linear" else 1.0)
    assert math.isclose(float(std), expected, rel_tol=1e-9)


def test_schedules_keep_the_shape_of_t():
    for name in ALL:
        values = make_schedule(name)(torch.rand(4, 1))
        assert all(v.shape == (4, 1) for v in values), name


def test_unknown_schedule_is_an_error():
    with pytest.raises(ValueError, match="unknown schedule"):
        make_schedule("nope")


def test_unknown_schedule_parameter_names_what_it_takes():
    with pytest.raises(ValueError, match=r"no parameter power; it takes \['delta'\]"):
        make_schedule("linear", power=2)
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        make_schedule("ve", sigma_min=1.0, sigma_max=0.5)
