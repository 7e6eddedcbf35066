"""GFN2-xTB relaxation energy: how far a molecule's coordinates are from a local minimum.

ΔE_relax = E(generated coordinates) − E(relaxed coordinates), in kcal/mol, with the GFN2-xTB
Hamiltonian (Bannwarth, Ehlert, Grimme 2019) of the ``tblite`` wheel; the benchmark of "GEOM-Drugs
revisited" (Nikitin, Dunn, Koes, Isayev 2025) reports its median over generated molecules. The
relaxation is a plain L-BFGS on Cartesian coordinates (:func:`lbfgs`, pure numpy) with a capped step,
stopped when the largest gradient component falls below ``gtol`` (xtb's own default threshold,
1e-3 Eh/Bohr) or after ``max_steps`` steps (then ``converged`` is False and ΔE is a lower bound).

``tblite`` is an optional dependency (``pip install 'moldiff[xtb]'``), imported only here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from moldiff.errors import MoldiffError

BOHR_PER_ANGSTROM = 1.0 / 0.529177210903
KCAL_PER_HARTREE = 627.509474
GTOL = 1e-3  # Eh/Bohr, xtb's "normal" gradient threshold
MAX_STEPS = 300


# ----------------------------------------------------------------------------- optimiser
@dataclass
class Minimum:
    """Where :func:`lbfgs` stopped: ``x`` (D,), its value ``f``, gradient ``g`` (D,), the steps
    taken, the function evaluations, and whether ``max |g| < gtol``."""

    x: np.ndarray
    f: float
    g: np.ndarray
    n_steps: int
    n_evals: int
    converged: bool


def lbfgs(fun: Callable[[np.ndarray], tuple[float, np.ndarray]], x0: np.ndarray, *, gtol: float = GTOL,
          max_steps: int = MAX_STEPS, memory: int = 10, max_step: float = 0.3) -> Minimum:  # fmt: skip
    """Minimise ``fun`` by L-BFGS (Nocedal & Wright, Algorithm 7.4) with a backtracking line search.

    Args:
        fun: x (D,) -> (value, gradient (D,)).
        x0: (D,) start.
        gtol: stop when the largest gradient component is below it.
        max_steps: accepted steps at most.
        memory: correction pairs kept.
        max_step: largest change of any coordinate in one step (keeps a far-from-minimum start
            from jumping into a region where the energy is not defined).
    """
    x = np.asarray(x0, dtype=np.float64).copy()
    f, g = fun(x)
    n_evals, pairs = 1, []
    for step in range(max_steps):
        if np.abs(g).max() < gtol:
            return Minimum(x, f, g, step, n_evals, True)
        d = _two_loop(g, pairs)
        if g @ d >= 0:  # not a descent direction: forget the curvature pairs
            pairs, d = [], -g
        d *= min(1.0, max_step / np.abs(d).max())
        alpha, accepted = 1.0, False
        for _ in range(12):  # Armijo backtracking
            x_new = x + alpha * d
            f_new, g_new = fun(x_new)
            n_evals += 1
            if np.isfinite(f_new) and f_new <= f + 1e-4 * alpha * (g @ d):
                accepted = True
                break
            alpha *= 0.5
        if not accepted:  # no decrease left to find at this precision
            return Minimum(x, f, g, step, n_evals, bool(np.abs(g).max() < gtol))
        s, y = x_new - x, g_new - g
        if s @ y > 1e-12:
            pairs = (pairs + [(s, y, 1.0 / (s @ y))])[-memory:]
        x, f, g = x_new, f_new, g_new
    return Minimum(x, f, g, max_steps, n_evals, bool(np.abs(g).max() < gtol))


def _two_loop(g: np.ndarray, pairs: list) -> np.ndarray:
    """−H g for the L-BFGS inverse Hessian H of the stored pairs (Nocedal & Wright, Algorithm 7.4)."""
    q = g.copy()
    alphas = []
    for s, y, rho in reversed(pairs):
        a = rho * (s @ q)
        q -= a * y
        alphas.append(a)
    if pairs:
        s, y, _ = pairs[-1]
        q *= (s @ y) / (y @ y)
    for (s, y, rho), a in zip(pairs, reversed(alphas)):
        q += s * (a - rho * (y @ q))
    return -q


# ----------------------------------------------------------------------------- GFN2-xTB
@dataclass
class Relaxation:
    """One molecule's relaxation: energies in Eh, ``delta_kcal`` = E_initial − E_relaxed in
    kcal/mol (NaN and ``failure`` set where it could not run), relaxed positions (n, 3) in Å."""

    e_initial: float = float("nan")
    e_relaxed: float = float("nan")
    delta_kcal: float = float("nan")
    n_steps: int = 0
    converged: bool = False
    rmsd: float = float("nan")
    positions: np.ndarray | None = None
    failure: str = ""


def _calculator_class():
    try:
        from tblite.interface import Calculator
    except ImportError:
        raise MoldiffError("GFN2-xTB energies need the 'tblite' package (pip install 'moldiff[xtb]')") from None
    return Calculator


def xtb_available() -> bool:
    """Whether ``tblite`` can be imported."""
    try:
        _calculator_class()
    except MoldiffError:
        return False
    return True


def relax(atomic_numbers: np.ndarray, positions: np.ndarray, charge: int = 0, *, gtol: float = GTOL,
          max_steps: int = MAX_STEPS) -> Relaxation:  # fmt: skip
    """Relax one molecule with GFN2-xTB and report its relaxation energy.

    Args:
        atomic_numbers: (n,) ints.
        positions: (n, 3) Å.
        charge: total charge (the sum of the written formal charges).
        gtol: convergence threshold on the largest gradient component, Eh/Bohr.
        max_steps: optimiser steps at most.

    Returns:
        A :class:`Relaxation`; never raises for a molecule xTB cannot handle (``failure`` says why).
    """
    calculator_class = _calculator_class()
    z = np.asarray(atomic_numbers, dtype=np.int64)
    pos = np.asarray(positions, dtype=np.float64)
    if pos.shape != (len(z), 3):
        raise ValueError(f"positions must be ({len(z)}, 3), got {pos.shape}")
    if not np.isfinite(pos).all():
        return Relaxation(failure="non-finite coordinates")
    unpaired = int(z.sum() - charge) % 2  # an odd electron count is run as a doublet
    x0 = pos.reshape(-1) * BOHR_PER_ANGSTROM
    try:
        calc = calculator_class("GFN2-xTB", z, x0.reshape(-1, 3), charge=float(charge), uhf=unpaired)
        calc.set("verbosity", 0)
    except Exception as exc:  # tblite raises its own error types
        return Relaxation(failure=f"xTB set-up failed: {_one_line(exc)}")

    def energy(x: np.ndarray) -> tuple[float, np.ndarray]:
        try:
            calc.update(x.reshape(-1, 3))
            result = calc.singlepoint()
            return float(result.get("energy")), np.asarray(result.get("gradient"), dtype=np.float64).reshape(-1)
        except Exception:  # SCF not converged: treat the point as unreachable
            return float("inf"), np.zeros_like(x)

    e0, _ = energy(x0)
    if not np.isfinite(e0):
        return Relaxation(failure="xTB SCF did not converge at the generated coordinates")
    found = lbfgs(energy, x0, gtol=gtol, max_steps=max_steps)
    relaxed = found.x.reshape(-1, 3) / BOHR_PER_ANGSTROM
    return Relaxation(
        e_initial=e0,
        e_relaxed=found.f,
        delta_kcal=(e0 - found.f) * KCAL_PER_HARTREE,
        n_steps=found.n_steps,
        converged=found.converged,
        rmsd=float(np.sqrt(((relaxed - pos) ** 2).sum(1).mean())),
        positions=relaxed,
        failure="" if found.converged else f"not converged in {max_steps} steps",
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
