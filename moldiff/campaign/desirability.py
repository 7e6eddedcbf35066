"""Desirability: each scoring component maps a score to [0, 1] with a transform, and the components
combine by a weighted geometric mean, so one zero vetoes the molecule (Derringer & Suich 1980, as
REINVENT 4 scores).

Transforms of a score x with the component's ``low`` < ``high``:

| transform        | d(x)                                                        |
|------------------|-------------------------------------------------------------|
| linear           | 0 below low, 1 above high, a straight line between          |
| reverse_linear   | 1 − linear                                                  |
| sigmoid          | 1 / (1 + exp(−10 (x − (low + high)/2) / (high − low))):     |
|                  | 0.007 at low, 0.5 midway, 0.993 at high                      |
| reverse_sigmoid  | 1 − sigmoid                                                 |
| step             | 1 inside [low, high], 0 outside                             |

A missing score (NaN: an invalid molecule, a descriptor RDKit could not compute) gives d = 0.
D = Π dᵢ^(wᵢ / Σw); with no components D = 1.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

SIGMOID_STEEPNESS = 10.0


def _linear(x, low, high):
    return np.clip((x - low) / (high - low), 0.0, 1.0)


def _sigmoid(x, low, high):
    z = SIGMOID_STEEPNESS * (x - 0.5 * (low + high)) / (high - low)
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))


TRANSFORMS = {
    "linear": _linear,
    "reverse_linear": lambda x, low, high: 1.0 - _linear(x, low, high),
    "sigmoid": _sigmoid,
    "reverse_sigmoid": lambda x, low, high: 1.0 - _sigmoid(x, low, high),
    "step": lambda x, low, high: ((x >= low) & (x <= high)).astype(np.float64),
}


def transform(name: str, x: np.ndarray, low: float, high: float) -> np.ndarray:
    """d(x) in [0, 1] for the transform ``name``; NaN scores give 0."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        d = TRANSFORMS[name](x, float(low), float(high))
    return np.where(np.isfinite(x), d, 0.0)


def combine(values: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """Weighted geometric mean of component desirabilities (each (M,)); exactly 0 where any is 0."""
    if not values:
        raise ValueError("combine needs at least one component")
    total = float(sum(weights[k] for k in values))
    stack = np.stack([np.asarray(values[k], dtype=np.float64) for k in values])
    w = np.array([weights[k] / total for k in values])[:, None]
    with np.errstate(divide="ignore"):
        log_d = np.log(stack)
    out = np.exp((w * log_d).sum(axis=0))
    return np.where((stack <= 0).any(axis=0), 0.0, out)


def desirability(scores: Mapping[str, np.ndarray], components: Mapping, n: int) -> tuple[np.ndarray, dict]:
    """Overall desirability (n,) and each component's d (name -> (n,)) of a set of molecules.

    Args:
        scores: score name -> (n,) values.
        components: name -> an object with ``transform``, ``low``, ``high``, ``weight``.
        n: the number of molecules (the result is all ones when there are no components).
    """
    parts = {name: transform(c.transform, scores[name], c.low, c.high) for name, c in components.items()}
    if not parts:
        return np.ones(n), {}
    return combine(parts, {name: c.weight for name, c in components.items()}), parts
