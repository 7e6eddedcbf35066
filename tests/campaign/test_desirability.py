"""Desirability transforms hit their documented values; the geometric mean vetoes on a zero."""

import numpy as np
import pytest

from moldiff.campaign.desirability import TRANSFORMS, combine, transform


def test_transform_endpoints_and_direction():
    x = np.array([0.0, 0.2, 0.5, 0.8, 1.0])
    assert transform("linear", x, 0.2, 0.8).tolist() == pytest.approx([0, 0, 0.5, 1, 1])
    assert transform("reverse_linear", x, 0.2, 0.8).tolist() == pytest.approx([1, 1, 0.5, 0, 0])
    sig = transform("sigmoid", x, 0.2, 0.8)
    assert sig[1] == pytest.approx(1 / (1 + np.exp(5))) and sig[2] == pytest.approx(0.5)
    assert sig[3] == pytest.approx(1 / (1 + np.exp(-5))) and (np.diff(sig) > 0).all()
    assert transform("reverse_sigmoid", x, 0.2, 0.8) == pytest.approx(1 - sig)
    assert transform("step", x, 0.2, 0.8).tolist() == [0, 1, 1, 1, 0]


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_every_transform_stays_in_unit_interval_and_nan_gives_zero(name):
    x = np.array([-1e9, -3.0, 0.1, 7.5, 1e9, np.nan])
    d = transform(name, x, 0.0, 5.0)
    assert ((d >= 0) & (d <= 1)).all() and d[-1] == 0


def test_weighted_geometric_mean_and_veto():
    a, b = np.array([0.25, 1.0, 0.0]), np.array([1.0, 0.5, 0.9])
    d = combine({"a": a, "b": b}, {"a": 1.0, "b": 3.0})
    assert d[0] == pytest.approx(0.25**0.25) and d[1] == pytest.approx(0.5**0.75)
    assert d[2] == 0.0  # one zero vetoes whatever the others say
    assert combine({"a": a}, {"a": 2.0}) == pytest.approx(a)
