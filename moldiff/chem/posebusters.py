"""PoseBusters' molecule checks (Buttenschoen et al. 2024), the ones that need no protein.

``fast`` runs PoseBusters' ``mol_fast`` configuration (loading, sanitization, InChI, connectivity,
radicals, bond lengths and angles, internal clashes, ring and double-bond flatness; ~20 ms a
molecule); ``full`` is ``mol``: the same plus the internal-energy check against an ensemble of
force-field conformers (~0.2–1.5 s a molecule). PoseBusters is optional (``pip install
posebusters``) and imported only here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from moldiff.errors import MoldiffError

MODES = {"fast": "mol_fast", "full": "mol"}
PREFIX = "pb_"


def _posebusters():
    try:
        from posebusters import PoseBusters
    except ImportError:
        raise MoldiffError("PoseBusters checks need the 'posebusters' package (pip install posebusters)") from None
    return PoseBusters


def posebusters_checks(mols: Sequence, mode: str = "fast"):
    """Run PoseBusters on molecules with explicit hydrogens and a 3D conformer.

    Args:
        mols: (M,) RDKit molecules, or None for molecules that have none (they fail every check).
        mode: ``fast`` (no energy check) or ``full``.

    Returns:
        DataFrame (M rows, input order): one boolean column ``pb_<check>`` per check, ``pb_pass``
        (all checks passed) and ``pb_failed`` (names of the failed checks, ``"; "``-joined).
    """
    import pandas as pd

    if mode not in MODES:
        raise MoldiffError(f"unknown PoseBusters mode {mode!r}; choose from {', '.join(MODES)}")
    present = [i for i, m in enumerate(mols) if m is not None]
    logging.getLogger("posebusters").setLevel(logging.ERROR)  # it logs each failed energy ensemble
    table = pd.DataFrame()
    if present:
        table = _posebusters()(config=MODES[mode]).bust([mols[i] for i in present]).reset_index(drop=True)
        table = table.drop(columns=["mol_pred_loaded"], errors="ignore")
    checks = [str(c) for c in table.columns]
    out = pd.DataFrame(index=range(len(mols)))
    for check in checks:
        values = np.zeros(len(mols), dtype=bool)
        values[present] = table[check].fillna(False).astype(bool).to_numpy()
        out[PREFIX + check.replace("-", "_")] = values
    passed = np.array(out.all(axis=1), dtype=bool) if checks else np.zeros(len(mols), dtype=bool)
    passed[[i for i, m in enumerate(mols) if m is None]] = False
    out[PREFIX + "pass"] = passed
    failed = [[c for c in checks if not out.at[i, PREFIX + c.replace("-", "_")]] for i in range(len(mols))]
    out[PREFIX + "failed"] = ["no molecule" if mols[i] is None else "; ".join(f) for i, f in enumerate(failed)]
    return out
