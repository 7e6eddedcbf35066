"""The Runge–Kutta tableaus are consistent and reach their stated orders on a scalar ODE."""

import math

import pytest

from moldiff.solvers.rk import TABLEAUS


def _integrate(tab, weights, steps):
    """y' = −2 t y from y(0) = 1 to t = 1 (exact: e^{−1}) with fixed steps."""
    y, t, h = 1.0, 0.0, 1.0 / steps
    for _ in range(steps):
        ks = []
        for i in range(tab.stages):
            yi = y + h * sum(a * k for a, k in zip(tab.a[i], ks))
            ks.append(-2 * (t + tab.c[i] * h) * yi)
        y += h * sum(w * k for w, k in zip(weights, ks))
        t += h
    return abs(y - math.exp(-1))


@pytest.mark.parametrize("name", sorted(TABLEAUS))
def test_tableau_is_consistent(name):
    tab = TABLEAUS[name]
    assert all(abs(sum(row) - c) < 1e-12 for row, c in zip(tab.a, tab.c))  # rows sum to c_i
    assert abs(sum(tab.b) - 1) < 1e-12 and abs(sum(tab.b_err)) < 1e-12
    assert tab.a[-1] == tab.b[:-1]  # FSAL: the last stage is f at the new point


@pytest.mark.parametrize("name", sorted(TABLEAUS))
def test_propagated_and_embedded_orders(name):
    tab = TABLEAUS[name]
    embedded = [b - e for b, e in zip(tab.b, tab.b_err)]
    ratio = _integrate(tab, tab.b, 20) / _integrate(tab, tab.b, 40)
    assert 0.8 * 2**tab.order < ratio < 1.3 * 2**tab.order, ratio
    # the embedded solution is of its stated order, not one more (its leading term fades slowly)
    ratio = _integrate(tab, embedded, 20) / _integrate(tab, embedded, 40)
    assert 0.8 * 2**tab.error_order < ratio < 2 ** (tab.error_order + 1), ratio
