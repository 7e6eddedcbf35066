"""QM9 from the ``qm9pack`` package: 130,831 molecules with DFT coordinates, SMILES and properties.

Units follow the EDM benchmark tables: α in Bohr³, HOMO/LUMO/gap in meV, μ in Debye, Cv in
cal/(mol·K). The processed set is cached as ``$MOLDIFF_HOME/qm9/qm9_v1.npz`` (see
:func:`moldiff.paths.moldiff_home`); the first load parses the CSVs (about a minute), later loads
read the cache (well under a second).

The split is EDM's: over the molecules in ascending GDB index order, ``np.random.seed(0)`` then
``np.random.permutation(130831)``; the first 100,000 positions are train, the next 17,748
validation, the last 13,083 test.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np

from moldiff.data.elements import atomic_number
from moldiff.data.molset import MolSet
from moldiff.errors import MoldiffError
from moldiff.paths import moldiff_home

HARTREE_TO_MEV = 27211.386245988
N_MOLECULES = 130_831
SPLIT_SIZES = {"train": 100_000, "valid": 17_748, "test": 13_083}
CACHE_NAME = "qm9_v1.npz"

# our name -> (qm9pack column, factor to the benchmark unit)
PROPERTIES = {
    "alpha": ("Polarizability_bohr3", 1.0),  # Bohr^3
    "gap": ("HOMO_LUMO_gap_au", HARTREE_TO_MEV),  # meV
    "homo": ("HOMO_au", HARTREE_TO_MEV),  # meV
    "lumo": ("LUMO_au", HARTREE_TO_MEV),  # meV
    "mu": ("Dipole_debye", 1.0),  # Debye
    "Cv": ("Heatcapacity_Cv_cal_mol_K", 1.0),  # cal/(mol K)
}
PROPERTY_UNITS = {"alpha": "Bohr^3", "gap": "meV", "homo": "meV", "lumo": "meV", "mu": "D",
                  "Cv": "cal/(mol K)"}  # fmt: skip


def qm9pack_data_dir() -> Path:
    """The CSV folder inside the installed qm9pack (found without importing it: its __init__ needs
    pkg_resources, which new environments lack)."""
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise MoldiffError("the qm9pack package is not installed: pip install qm9pack")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def load_qm9(split: str | None = None, *, hydrogens: bool = True, cache_dir: Path | None = None) -> MolSet:
    """QM9 as a MolSet, whole (``split=None``) or one of ``"train"``, ``"valid"``, ``"test"``.

    ``hydrogens=False`` gives the heavy-atom-only variant (same molecules, H removed).
    """
    cache = (cache_dir or moldiff_home() / "qm9") / CACHE_NAME
    if cache.exists():
        data = MolSet.load(cache)
    else:
        data = parse_qm9pack(qm9pack_data_dir())
        data.save(cache)
    if split is not None:
        data = data.subset(split_indices()[split])
    return data if hydrogens else data.without_hydrogens()


def split_indices() -> dict[str, np.ndarray]:
    """EDM's train/valid/test positions into the 130,831 molecules in ascending GDB index order."""
    state = np.random.get_state()
    try:
        np.random.seed(0)
        perm = np.random.permutation(N_MOLECULES)
    finally:
        np.random.set_state(state)
    n_train, n_valid = SPLIT_SIZES["train"], SPLIT_SIZES["valid"]
    return {
        "train": perm[:n_train],
        "valid": perm[n_train : n_train + n_valid],
        "test": perm[n_train + n_valid :],
    }


def parse_qm9pack(data_dir: Path) -> MolSet:
    """Read qm9pack's CSVs into a MolSet ordered by GDB index (slow: done once, then cached)."""
    import pandas as pd

    columns = ["Index", "SMILES", "Elements", "XYZ_Ang"] + [c for c, _ in PROPERTIES.values()]
    parts = sorted(data_dir.glob("qm9_part*.csv"))
    if not parts:
        raise MoldiffError(f"no qm9_part*.csv files in {data_dir}")
    frame = pd.concat([pd.read_csv(p, usecols=columns) for p in parts], ignore_index=True)
    frame = frame.sort_values("Index", kind="stable").reset_index(drop=True)
    if len(frame) != N_MOLECULES:
        raise MoldiffError(f"expected {N_MOLECULES} QM9 molecules in qm9pack, found {len(frame)}")

    symbol_z: dict[str, int] = {}
    elements = [ast.literal_eval(s) for s in frame["Elements"]]
    counts = np.array([len(e) for e in elements], dtype=np.int64)
    z = np.array([symbol_z.setdefault(s, atomic_number(s)) for e in elements for s in e], np.int64)
    flat = ",".join(frame["XYZ_Ang"]).replace("[", "").replace("]", "")
    positions = np.array(flat.split(","), dtype=np.float64).reshape(-1, 3)
    if len(positions) != len(z):
        raise MoldiffError("qm9pack coordinates and element lists disagree in length")
    return MolSet(
        atomic_numbers=z,
        positions=positions,
        ptr=np.concatenate([[0], np.cumsum(counts)]),
        ids=frame["Index"].to_numpy(),
        smiles=frame["SMILES"].to_numpy(dtype=str),
        properties={name: frame[col].to_numpy(np.float64) * factor for name, (col, factor) in PROPERTIES.items()},
    )
