"""PoseBusters' molecule checks (Buttenschoen et al. 2024), the ones that need no protein.

``fast`` runs PoseBusters' ``mol_fast`` configuration (loading, sanitization, InChI, connectivity,
radicals, bond lengths and angles, internal clashes, ring and double-bond flatness; ~20 ms a
molecule); ``full`` is ``mol``: the same plus the internal-energy check against an ensemble of 50
force-field conformers (seconds a drug-sized molecule). ``full`` runs in two stages: ``mol_fast`` on
every molecule, then the energy check only on the molecules that passed all of it, since a molecule
that failed one check fails ``mol`` whatever its energy. The pass column is exactly ``mol``'s; the
energy column is NA where the check was not needed. PoseBusters is optional (``pip install
posebusters``) and imported only here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

from moldiff.errors import MoldiffError

MODES = ("fast", "full")
PREFIX = "pb_"


def _posebusters():
    try:
        from posebusters import PoseBusters
    except ImportError:
        raise MoldiffError("PoseBusters checks need the 'posebusters' package (pip install posebusters)") from None
    return PoseBusters


@cache
def _config(name: str) -> dict:
    """A PoseBusters configuration: its ``name.yml`` without the modules that report no test.

    PoseBusters 0.6's ``mol.yml`` lists the energy module twice, once without an output, which
    doubles the cost of its slowest check and changes nothing in the verdicts.
    """
    import yaml

    _posebusters()  # the clear error when it is not installed
    import posebusters

    path = Path(posebusters.__file__).parent / "config" / f"{name}.yml"
    config = yaml.safe_load(path.read_text())
    config["modules"] = [m for m in config["modules"] if m.get("chosen_binary_test_output")]
    return config


@cache
def _energy_config() -> dict:
    """``mol`` reduced to loading and its energy check (the only check ``mol`` adds to ``mol_fast``)."""
    full, fast = _config("mol"), _config("mol_fast")
    fast_functions = {m["function"] for m in fast["modules"]}
    modules = [m for m in full["modules"] if m["function"] == "loading" or m["function"] not in fast_functions]
    return {**full, "modules": modules}


def _bust(mols: list, config: dict):
    """PoseBusters' verdicts for molecules (one row each, input order), as a DataFrame."""
    import copy

    table = _posebusters()(config=copy.deepcopy(config)).bust(mols).reset_index(drop=True)
    return table.drop(columns=["mol_pred_loaded"], errors="ignore")


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
    logging.getLogger("posebusters").setLevel(logging.ERROR)  # it logs each failed energy ensemble
    out = pd.DataFrame(index=range(len(mols)))
    present = [i for i, m in enumerate(mols) if m is not None]
    checks = _add_checks(out, mols, present, _config("mol_fast"), fill=False)
    passed = out[checks].all(axis=1).to_numpy(dtype=bool)
    if mode == "full":
        survivors = [i for i in present if passed[i]]
        energy = _add_checks(out, mols, survivors, _energy_config(), fill=pd.NA)
        passed &= out[energy].fillna(False).all(axis=1).to_numpy(dtype=bool)
        checks += energy
    passed[[i for i, m in enumerate(mols) if m is None]] = False
    out[PREFIX + "pass"] = passed
    failed = out[checks].eq(False).fillna(False).to_numpy(dtype=bool)
    names = [c.removeprefix(PREFIX) for c in checks]
    out[PREFIX + "failed"] = ["no molecule" if m is None else "; ".join(n for n, f in zip(names, row) if f)
                              for m, row in zip(mols, failed)]  # fmt: skip
    return out


def _add_checks(out, mols: Sequence, rows: list[int], config: dict, fill) -> list[str]:
    """Bust ``mols[rows]`` with ``config``; add one boolean ``pb_<check>`` column per check to
    ``out`` (``fill`` in the other rows) and return the columns' names."""
    import pandas as pd

    table = _bust([mols[i] for i in rows], config) if rows else None
    columns = []
    for module in config["modules"]:
        for output in module["chosen_binary_test_output"] if module["function"] != "loading" else ():
            name = str(module["rename_outputs"][output]).lower().replace(" ", "_")  # PoseBusters' column
            values = np.full(len(mols), fill, dtype=object)
            if table is not None:
                values[rows] = table[name].fillna(False).astype(bool).to_numpy()
            column = PREFIX + name.replace("-", "_")
            out[column] = pd.array(values, dtype="boolean")
            columns.append(column)
    return columns
