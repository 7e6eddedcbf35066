"""Judging molecules by the graph they are written with, and that graph against their coordinates.

A generator that writes bonds and formal charges is judged on what it wrote, so that a good graph
on bad coordinates cannot score:

1. ``valid``: RDKit sanitizes the molecule with the written bonds and charges; ``connected``: the
   written graph is one piece; ``valid_connected``: both.
2. ``stable``: every atom's bonds are an allowed valence of its (element, formal charge), by the
   aromatic- and charge-aware table of "GEOM-Drugs revisited" (:data:`VALENCES`).
3. ``geometry_consistent``: the connectivity RDKit infers from the coordinates alone
   (``rdDetermineBonds.DetermineConnectivity``, extended Hückel: :func:`geometry_bonds`) is the
   written one.
4. PoseBusters' ``mol`` checks on the valid molecules (:mod:`moldiff.chem.posebusters`).
5. Optionally, the GFN2-xTB relaxation energy of a sample of the valid molecules
   (:mod:`moldiff.chem.xtb`).

Beside them, the EDM protocol on the coordinates alone (:func:`moldiff.chem.evaluate.evaluate`),
for comparison with published QM9 tables. SMILES (uniqueness, novelty) are in the one form of
:func:`moldiff.chem.rdmol.canonical_form`. Fractions are of all molecules, rejected ones included;
each comes with its binomial standard error (``<name>_se``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdDetermineBonds

from moldiff.chem.rdmol import _one_line, canonical_form, mol_from_edges, rdkit_quiet
from moldiff.data.molset import MolSet
from moldiff.errors import MoldiffError

# Allowed (bonds to aromatic neighbours, valence of the other bonds) per (element, formal charge),
# hydrogens explicit. Source: the table of Nikitin, Dunn, Koes, Isayev, "GEOM-Drugs revisited"
# (arXiv:2505.00169), as published in isayevlab/geom-drugs-3dgen-evaluation,
# geom_utils/geom_drugs_valency_table.py (geom_drugs_h_tuple_valencies): the valences observed in
# the cleaned GEOM-Drugs set. An aromatic bond is a count, not an order of 1.5: summed as 1.5, a
# pyrrole N-H (1.5 + 1.5 + 1 = 4) would read as N+, a furan O (3) as O+ and a pyridone carbon (5)
# as impossible. Kekulé graphs (every MolSet's) have no aromatic bonds, so only the (0, v) entries
# apply to them; neutral carbon has valence 4 only.
VALENCES: dict[tuple[str, int], frozenset[tuple[int, int]]] = {
    (symbol, charge): frozenset(allowed)
    for symbol, by_charge in {
        "H": {0: [(0, 1)]},
        "C": {0: [(0, 4), (2, 2), (2, 1), (3, 0)], -1: [(0, 3), (2, 1), (3, 0)], 1: [(0, 3), (2, 1), (3, 0)]},
        "N": {0: [(0, 3), (2, 0), (2, 1), (3, 0)], 1: [(0, 4), (2, 0), (2, 1), (2, 2), (3, 0)],
              -1: [(0, 2), (2, 0)], -2: [(0, 1)]},
        "O": {0: [(0, 2), (2, 0)], -1: [(0, 1)], 1: [(0, 3)]},
        "F": {0: [(0, 1)]},
        "S": {0: [(0, 2), (0, 3), (0, 6), (2, 0)], 1: [(0, 3), (2, 0), (2, 1), (3, 0)], 2: [(0, 4), (2, 1), (2, 2)],
              3: [(0, 2), (0, 5)], -1: [(0, 1)]},
        "Cl": {0: [(0, 1)], 1: [(0, 2)]},
        "Br": {0: [(0, 1)], 1: [(0, 2)]},
        "I": {0: [(0, 1)], 1: [(0, 2)], 2: [(0, 3)]},
        "P": {0: [(0, 3), (0, 5)], 1: [(0, 4)]},
        "Si": {0: [(0, 4)], 1: [(0, 5)]},
        "B": {0: [(0, 3)], -1: [(0, 4)]},
        "Bi": {0: [(0, 3)], 2: [(0, 5)]},
    }.items()
    for charge, allowed in by_charge.items()
}  # fmt: skip

_ORDER = {Chem.BondType.SINGLE: 1, Chem.BondType.DOUBLE: 2, Chem.BondType.TRIPLE: 3}
_ROW_COLUMNS = ["n_atoms", "n_bonds", "n_charged_atoms", "n_fragments", "connected", "valid", "failure", "smiles",
                "valid_connected", "n_stable_atoms", "stable", "unstable_atoms", "geometry_consistent",
                "n_missing_bonds", "n_extra_bonds", "geometry_failure"]  # fmt: skip
RATES = ("validity", "connectivity", "valid_connected", "mol_stability", "geometry_consistency",
         "valid_connected_consistent", "neutral_valid_connected", "posebusters_pass")  # fmt: skip


# ------------------------------------------------------------------------------ one molecule
def atom_stability(mol: Chem.Mol) -> tuple[np.ndarray, list[str]]:
    """Which atoms of a written graph have an allowed valence (:data:`VALENCES`).

    Args:
        mol: an RDKit molecule as written (sanitized or not), hydrogens explicit; aromatic bonds
            are counted as aromatic, other bonds by their order.

    Returns:
        ((n,) bool, one ``"C0: 3"``-style note (element, charge: bonds) per unstable atom).
    """
    n = mol.GetNumAtoms()
    aromatic = np.zeros(n, dtype=np.int64)
    valence = np.zeros(n, dtype=np.int64)
    other = np.zeros(n, dtype=bool)  # a bond that is neither aromatic nor single/double/triple
    for bond in mol.GetBonds():
        ends = [bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()]
        if bond.GetBondType() == Chem.BondType.AROMATIC:
            aromatic[ends] += 1
        elif bond.GetBondType() in _ORDER:
            valence[ends] += _ORDER[bond.GetBondType()]
        else:
            other[ends] = True
    stable = np.zeros(n, dtype=bool)
    notes = []
    for atom in mol.GetAtoms():
        k, key = atom.GetIdx(), (atom.GetSymbol(), atom.GetFormalCharge())
        stable[k] = not other[k] and (int(aromatic[k]), int(valence[k])) in VALENCES.get(key, ())
        if not stable[k]:
            bonds = f"{aromatic[k]} aromatic + {valence[k]}" if aromatic[k] else f"{valence[k]}"
            notes.append(f"{key[0]}{key[1]:+d}: {bonds}" if key[1] else f"{key[0]}: {bonds}")
    return stable, notes


def geometry_bonds(mol: Chem.Mol) -> set[tuple[int, int]] | str:
    """Atom pairs ``(i, j)``, ``i < j``, that RDKit bonds from the coordinates alone, or why it
    cannot.

    RDKit's extended-Hückel connectivity (``DetermineConnectivity(useHueckel=True)``, given the
    molecule's total formal charge). Its default, covalent radii with a tolerance, adds a bond across
    strained small rings: on 1,500 QM9 test molecules with their own graphs it agrees with the
    graph for 96.1 % (every disagreement an extra bond; van der Waals radii × 1.3: 96.0 %, × 1.15:
    99.9 %), the Hückel method for all of them.
    """
    pos = mol.GetConformer().GetPositions() if mol.GetNumConformers() else None
    if pos is None:
        return "no coordinates"
    if not np.isfinite(pos).all():
        return "non-finite coordinates"
    bare = mol_from_edges([a.GetAtomicNum() for a in mol.GetAtoms()], [], [], pos)
    charge = sum(a.GetFormalCharge() for a in mol.GetAtoms())
    try:
        with rdkit_quiet(), _quiet_c_output():
            rdDetermineBonds.DetermineConnectivity(bare, useHueckel=True, charge=charge)
    except Exception as exc:  # RDKit raises several types
        return f"no connectivity from the coordinates: {_one_line(exc)}"
    return {tuple(sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx()))) for b in bare.GetBonds()}


@contextlib.contextmanager
def _quiet_c_output() -> Iterator[None]:
    """Send the process's C-level stdout and stderr to /dev/null inside the block (the Hückel code
    prints a warning for every short contact, past RDKit's logger)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def judge(mol: Chem.Mol) -> tuple[dict, Chem.Mol | None]:
    """The graph checks of one molecule as written (no PoseBusters, no xTB).

    Returns:
        (row: n_atoms, n_bonds, n_charged_atoms, valid, failure, smiles, n_fragments, connected, valid_connected,
        n_stable_atoms, stable, unstable_atoms, geometry_consistent, n_missing_bonds (written,
        not in the coordinates), n_extra_bonds (in the coordinates, not written), geometry_failure;
        the sanitized molecule or None).
    """
    row: dict = {"n_atoms": mol.GetNumAtoms(), "n_bonds": mol.GetNumBonds(),
                 "n_charged_atoms": sum(a.GetFormalCharge() != 0 for a in mol.GetAtoms())}  # fmt: skip
    n_frags = len(Chem.GetMolFrags(mol, sanitizeFrags=False)) if mol.GetNumAtoms() else 0
    row["n_fragments"], row["connected"] = n_frags, n_frags == 1
    sanitized = Chem.Mol(mol)
    try:
        with rdkit_quiet():
            Chem.SanitizeMol(sanitized)
            smiles = canonical_form(sanitized)
        row.update(valid=mol.GetNumAtoms() > 0, failure="" if mol.GetNumAtoms() else "no atoms", smiles=smiles)
    except Exception as exc:  # AtomValenceException, KekulizeException, ...
        sanitized = None
        row.update(valid=False, failure=_one_line(exc), smiles="")
    row["valid_connected"] = row["valid"] and row["connected"]
    stable, notes = atom_stability(mol)
    row.update(n_stable_atoms=int(stable.sum()), stable=bool(len(stable) and stable.all()),
               unstable_atoms="; ".join(notes))  # fmt: skip
    found = geometry_bonds(mol)
    if isinstance(found, str):
        row.update(geometry_consistent=False, n_missing_bonds=None, n_extra_bonds=None, geometry_failure=found)
    else:
        written = {tuple(sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx()))) for b in mol.GetBonds()}
        row.update(geometry_consistent=found == written, n_missing_bonds=len(written - found),
                   n_extra_bonds=len(found - written), geometry_failure="")  # fmt: skip
    return row, sanitized


# ------------------------------------------------------------------------------ conversions
def written_mols(molset: MolSet) -> list[Chem.Mol]:
    """RDKit molecules (unsanitized, 3D conformer) of a MolSet's written bonds and charges."""
    if not molset.has_bonds:
        raise MoldiffError("judging the graph as written needs molecules with bonds (a MolSet with bonds, "
                           "an SDF with a bond block)")  # fmt: skip
    mols = []
    for i in range(len(molset)):
        z, pos = molset.molecule(i)
        bonds = molset.molecule_bonds(i)
        charges = molset.charges[molset.ptr[i] : molset.ptr[i + 1]]
        mols.append(mol_from_edges(z.tolist(), bonds[:, :2].tolist(), bonds[:, 2].tolist(), pos, charges.tolist()))
    return mols


def molset_of(mols: Sequence[Chem.Mol]) -> MolSet:
    """Atoms, coordinates and formal charges of RDKit molecules with a conformer (for the EDM
    protocol, which reads no bonds)."""
    z = [np.array([a.GetAtomicNum() for a in m.GetAtoms()], dtype=np.int64) for m in mols]
    pos = [m.GetConformer().GetPositions() if m.GetNumConformers() else np.full((m.GetNumAtoms(), 3), np.nan)
           for m in mols]  # fmt: skip
    q = [np.array([a.GetFormalCharge() for a in m.GetAtoms()], dtype=np.int64) for m in mols]
    counts = [len(a) for a in z]
    return MolSet(atomic_numbers=np.concatenate(z) if z else np.zeros(0, np.int64),
                  positions=np.concatenate(pos) if pos else np.zeros((0, 3)),
                  ptr=np.concatenate([[0], np.cumsum(counts)]), charges=np.concatenate(q) if q else None)  # fmt: skip


# ------------------------------------------------------------------------------ a set
def evaluate_graphs(
    molecules: MolSet | Sequence[Chem.Mol],
    reference_smiles: set[str] | frozenset[str] | None = None,
    *,
    rejects: Sequence[tuple[int, str]] = (),
    posebusters: bool = True,
    xtb_sample: int = 0,
    xtb_steps: int | None = None,
    edm: bool = True,
    workers: int = 1,
):
    """Judge M molecules by their written graphs and coordinates.

    Args:
        molecules: a MolSet with bonds (Kekulé orders) and charges, or RDKit molecules as written
            (aromatic bonds allowed) with a 3D conformer; hydrogens explicit.
        reference_smiles: reference SMILES in :func:`moldiff.chem.rdmol.canonical_form` for novelty
            (None: no novelty).
        rejects: ``(index, reason)`` of molecules that could not be read; they count as generated
            and fail every check.
        posebusters: run PoseBusters' ``mol`` checks on the valid molecules.
        xtb_sample: relax the first this many valid molecules with GFN2-xTB (0: none).
        xtb_steps: optimiser steps at most (default :data:`moldiff.chem.xtb.MAX_STEPS`).
        edm: add the EDM protocol on the coordinates under ``summary["edm"]``.
        workers: processes for the per-molecule work; the result does not depend on it.

    Returns:
        (summary, frame). ``summary``: counts, the fractions of :data:`RATES` plus atom_stability,
        uniqueness and novelty, each fraction with ``<name>_se``; ``xtb`` (n, n_failed,
        n_unconverged, median and mean ΔE_relax in kcal/mol with standard errors) when run; ``edm``.
        ``frame``: one row per molecule (rejects included, in ``index`` order) with the columns of
        :func:`judge`, ``novel``, ``pb_pass``/``pb_failed`` and the ``xtb_*`` columns.
    """
    import pandas as pd

    if isinstance(molecules, MolSet):
        mols, ids = written_mols(molecules), molecules.ids.tolist()
    else:
        mols, ids = list(molecules), list(range(len(molecules)))
    if not mols and not rejects:
        raise MoldiffError("no molecules to judge")
    rows, sanitized = _in_workers(_judge_chunk, mols, workers)
    frame = pd.DataFrame.from_records(rows, columns=_ROW_COLUMNS)
    frame.insert(0, "index", ids)
    if reference_smiles is not None:
        frame["novel"] = pd.array([s not in reference_smiles if s else None for s in frame["smiles"]], dtype="boolean")
    if posebusters:
        checks = _in_workers(_posebusters_chunk, sanitized, workers)
        frame["pb_pass"], frame["pb_failed"] = checks
    if xtb_sample:
        frame = _add_xtb(frame, sanitized, xtb_sample, xtb_steps, workers)
    if rejects:
        frame = pd.concat([frame, _reject_rows(rejects)], ignore_index=True).sort_values("index", kind="stable")
        frame = frame.reset_index(drop=True)
    summary = summarize(frame, n_rejected=len(rejects), novelty=reference_smiles is not None)
    if edm and mols:
        from moldiff.chem.evaluate import evaluate

        edm_summary, _ = evaluate(molecules if isinstance(molecules, MolSet) else molset_of(mols), rejects=rejects)
        summary["edm"] = {k: edm_summary[k] for k in ("atom_stability", "mol_stability", "validity", "uniqueness",
                                                     "valid_x_unique", "connectivity", "valid_connected")}  # fmt: skip
    return summary, frame


def summarize(frame, *, n_rejected: int = 0, novelty: bool = False) -> dict:
    """The set's numbers from a frame of :func:`evaluate_graphs` (see there)."""
    n = len(frame)
    flags = frame.fillna({c: False for c in ("valid", "connected", "stable", "geometry_consistent") if c in frame})
    valid_conn = flags["valid"] & flags["connected"]
    columns = {
        "validity": flags["valid"],
        "connectivity": flags["connected"],
        "valid_connected": valid_conn,
        "mol_stability": flags["stable"],
        "geometry_consistency": flags["geometry_consistent"],
        "valid_connected_consistent": valid_conn & flags["geometry_consistent"],
        "neutral_valid_connected": valid_conn & frame["n_charged_atoms"].fillna(1).eq(0),
    }
    if "pb_pass" in frame:
        columns["posebusters_pass"] = frame["pb_pass"].fillna(False).astype(bool)
    summary: dict = {"n": n, "n_rejected": n_rejected}
    for name, values in columns.items():
        _rate(summary, name, int(values.sum()), n)
    atoms = frame["n_atoms"].fillna(0).astype(int).sum()
    _rate(summary, "atom_stability", int(frame["n_stable_atoms"].fillna(0).astype(int).sum()), int(atoms))
    valid_smiles = [s for s, v in zip(frame["smiles"], flags["valid"]) if v and s]
    unique = set(valid_smiles)
    summary["n_valid"], summary["n_unique"] = len(valid_smiles), len(unique)
    _rate(summary, "uniqueness", len(unique), len(valid_smiles))
    if novelty:
        novel = {s for s, v in zip(frame["smiles"], frame["novel"].fillna(False).astype(bool)) if s and v}
        summary["n_novel"] = len(novel)
        _rate(summary, "novelty", len(novel), len(unique))
    if "xtb_delta_kcal" in frame:
        summary["xtb"] = xtb_summary(frame)
    return summary


def xtb_summary(frame, n_boot: int = 2000, seed: int = 0) -> dict:
    """Median and mean ΔE_relax (kcal/mol) of the relaxed molecules, with standard errors (the
    median's by a seeded bootstrap)."""
    tried = frame["xtb_failure"].fillna("not tried").ne("not tried").to_numpy()
    delta = frame["xtb_delta_kcal"].to_numpy(dtype=np.float64)[tried]
    converged = frame["xtb_converged"].fillna(False).astype(bool).to_numpy()[tried]
    ok = delta[np.isfinite(delta)]
    out = {"n": int(tried.sum()), "n_failed": int((~np.isfinite(delta)).sum()),
           "n_unconverged": int((np.isfinite(delta) & ~converged).sum())}  # fmt: skip
    if len(ok):
        boot = np.random.default_rng(seed).choice(ok, size=(n_boot, len(ok)))
        out.update(median_delta_e=float(np.median(ok)), median_delta_e_se=float(np.median(boot, axis=1).std()),
                   mean_delta_e=float(ok.mean()), mean_delta_e_se=float(ok.std(ddof=1) / np.sqrt(len(ok)))
                   if len(ok) > 1 else None)  # fmt: skip
    return out


def _rate(summary: dict, name: str, k: int, n: int) -> None:
    p = k / n if n else None
    summary[name] = p
    summary[f"{name}_se"] = None if p is None else float(np.sqrt(p * (1 - p) / n))


# ------------------------------------------------------------------------------ workers
def _judge_chunk(mols: list) -> tuple[list[dict], list]:
    rows, sanitized = [], []
    for mol in mols:
        row, clean = judge(mol)
        rows.append(row)
        sanitized.append(clean)
    return rows, sanitized


def _posebusters_chunk(mols: list) -> tuple[list, list]:
    from moldiff.chem.posebusters import posebusters_checks

    if not any(m is not None for m in mols):
        return [False] * len(mols), ["invalid molecule"] * len(mols)
    table = posebusters_checks(mols, "full")
    failed = ["invalid molecule" if m is None else f for m, f in zip(mols, table["pb_failed"])]
    return table["pb_pass"].astype(bool).tolist(), failed


def _xtb_chunk(items: list, max_steps: int | None = None) -> list:
    from moldiff.chem.xtb import MAX_STEPS, relax

    out = []
    for mol in items:
        z = [a.GetAtomicNum() for a in mol.GetAtoms()]
        charge = sum(a.GetFormalCharge() for a in mol.GetAtoms())
        r = relax(z, mol.GetConformer().GetPositions(), charge, max_steps=max_steps or MAX_STEPS)
        out.append((r.delta_kcal, r.converged, r.n_steps, r.rmsd, r.failure))
    return out


def _add_xtb(frame, sanitized: list, k: int, max_steps: int | None, workers: int):
    from moldiff.chem.xtb import _calculator_class

    _calculator_class()  # the clear error when tblite is missing
    chosen = [i for i, m in enumerate(sanitized) if m is not None][:k]
    results = _in_workers(_xtb_chunk, [sanitized[i] for i in chosen], workers, max_steps)
    columns = {"xtb_delta_kcal": np.nan, "xtb_converged": None, "xtb_steps": None, "xtb_rmsd": np.nan,
               "xtb_failure": "not tried"}  # fmt: skip
    for name, fill in columns.items():
        frame[name] = [fill] * len(frame)
    for i, values in zip(chosen, results):
        for name, value in zip(columns, values):
            frame.at[i, name] = value
    return frame


def _in_workers(fn, items: list, workers: int, *extra):
    """``fn`` over chunks of ``items`` in ``workers`` spawned processes (or here); the per-item
    results in input order. ``fn`` returns a list, or a tuple of lists (concatenated field-wise)."""
    if workers <= 1 or len(items) < 2:
        return fn(items, *extra)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    bounds = np.linspace(0, len(items), min(len(items), 4 * workers) + 1).astype(int)
    chunks = [items[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    # spawn, not fork: the parent may hold torch/OpenMP threads that a forked child inherits
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = list(pool.map(fn, chunks, *[[e] * len(chunks) for e in extra]))
    if isinstance(parts[0], tuple):
        return tuple([x for part in parts for x in part[f]] for f in range(len(parts[0])))
    return [x for part in parts for x in part]


def _reject_rows(rejects: Sequence[tuple[int, str]]):
    import pandas as pd

    return pd.DataFrame({"index": [i for i, _ in rejects], "valid": False, "connected": False,
                         "valid_connected": False, "stable": False, "geometry_consistent": False,
                         "failure": [why for _, why in rejects], "smiles": ""})  # fmt: skip
