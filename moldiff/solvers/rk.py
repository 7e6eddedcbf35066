"""Butcher tableaus of embedded explicit Runge–Kutta pairs (pure data).

A pair advances y by h Σ b_i k_i and estimates its local error as h Σ (b_i − b*_i) k_i, with
k_i = f(y + h Σ_j a_ij k_j, t + c_i h). Both pairs below are FSAL ("first same as last"): the last
stage is f at the accepted point, so it is reused as the next step's first stage.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tableau:
    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]  # row i holds a_i0 .. a_i(i−1)
    b: tuple[float, ...]  # weights of the propagated (higher-order) solution
    b_err: tuple[float, ...]  # b − b*: weights of the error estimate
    order: int  # order of the propagated solution
    error_order: int  # order of the embedded solution; step control uses err ∝ h^(error_order + 1)

    @property
    def stages(self) -> int:
        return len(self.c)


def _pair(c, a, b, b_star, order, error_order) -> Tableau:
    return Tableau(tuple(c), tuple(tuple(r) for r in a), tuple(b), tuple(x - y for x, y in zip(b, b_star)),
                   order, error_order)  # fmt: skip


# Bogacki & Shampine 1989, "A 3(2) pair of Runge–Kutta formulas"
BOGACKI_SHAMPINE = _pair(
    c=(0, 1 / 2, 3 / 4, 1),
    a=((), (1 / 2,), (0, 3 / 4), (2 / 9, 1 / 3, 4 / 9)),
    b=(2 / 9, 1 / 3, 4 / 9, 0),
    b_star=(7 / 24, 1 / 4, 1 / 3, 1 / 8),
    order=3,
    error_order=2,
)

# Dormand & Prince 1980, "A family of embedded Runge–Kutta formulae" (RK5(4)7M)
DORMAND_PRINCE = _pair(
    c=(0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1),
    a=(
        (),
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        (35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
    ),
    b=(35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0),
    b_star=(5179 / 57600, 0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40),
    order=5,
    error_order=4,
)

TABLEAUS = {"bosh3": BOGACKI_SHAMPINE, "dopri5": DORMAND_PRINCE}
