"""Fréchet ChemNet Distance (Preuer et al. 2018) with the ``fcd`` package, whose wheel ships the
ChemNet weights (no download).

FCD = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½) between Gaussians fitted to ChemNet's penultimate
activations of two SMILES sets. Reference statistics are cached in ``$MOLDIFF_HOME/fcd/`` keyed by
a hash of the reference SMILES, so a campaign computes them once.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Sequence

import numpy as np

from moldiff.errors import MoldiffError
from moldiff.paths import atomic_write_bytes, moldiff_home

MIN_MOLECULES = 2  # a covariance needs two samples


def _fcd():
    try:
        import fcd
    except ImportError:
        raise MoldiffError("FCD needs the 'fcd' package (pip install fcd)") from None
    return fcd


def available() -> bool:
    try:
        _fcd()
    except MoldiffError:
        return False
    return True


def statistics(smiles: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(μ (512,), Σ (512, 512)) of ChemNet activations of ``smiles`` (at least two)."""
    if len(smiles) < MIN_MOLECULES:
        raise ValueError(f"FCD statistics need at least {MIN_MOLECULES} SMILES, got {len(smiles)}")
    fcd = _fcd()
    with warnings.catch_warnings():  # fcd 1.2 calls numpy's deprecated row_stack
        warnings.simplefilter("ignore", DeprecationWarning)
        # n_jobs=0: tokenise in this process (a worker process costs seconds to start)
        acts = fcd.get_predictions(fcd.load_ref_model(), list(smiles), n_jobs=0, device="cpu")
    return acts.mean(axis=0).astype(np.float64), np.cov(acts.T).astype(np.float64)


def cached_statistics(smiles: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`statistics`, cached on disk by the hash of the (sorted) SMILES."""
    key = hashlib.sha256("\n".join(sorted(smiles)).encode()).hexdigest()[:20]
    path = moldiff_home() / "fcd" / f"{key}.npz"
    if path.exists():
        with np.load(path) as z:
            return z["mu"], z["sigma"]
    mu, sigma = statistics(smiles)
    buf = io.BytesIO()
    np.savez(buf, mu=mu, sigma=sigma)
    atomic_write_bytes(path, buf.getvalue())
    return mu, sigma


def frechet_distance(smiles: Sequence[str], reference: tuple[np.ndarray, np.ndarray]) -> float:
    """FCD of ``smiles`` against reference statistics ``(μ, Σ)``."""
    mu, sigma = statistics(smiles)
    with warnings.catch_warnings():  # fcd 1.2 passes scipy's deprecated disp= to sqrtm
        warnings.simplefilter("ignore", DeprecationWarning)
        return float(_fcd().calculate_frechet_distance(mu1=mu, sigma1=sigma, mu2=reference[0], sigma2=reference[1]))
