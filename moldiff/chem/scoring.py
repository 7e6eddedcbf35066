"""Scores for generated molecules: one row per molecule, and the metrics of a set.

Per molecule (:func:`score_molset`), from 3D coordinates:

1. bonds and bond orders: a set that carries bonds (a graph model's) as written, valid when RDKit
   sanitizes it and every valence is allowed (:func:`written_molecules`); otherwise by RDKit's
   xyz2mol (:func:`moldiff.chem.rdmol.determine_bonds`, total charge from the formal charges).
   ``valid`` is its success, ``failure`` its reason otherwise;
   ``edm_valid`` and ``mol_stable`` give the EDM distance-rule verdict beside it for comparison;
2. the largest fragment (``n_fragments`` counts them) in the reference SMILES form (no stereo,
   canonical), ``charged_atoms`` (atoms xyz2mol gave a formal charge, whole molecule), then every
   descriptor of :data:`moldiff.chem.descriptors.DESCRIPTORS`, the named PAINS and Brenk alerts, novelty against a :class:`ReferenceSet` and the Tanimoto similarity of
   the nearest reference molecule (``nn_similarity``, ``nn_smiles``);
3. optionally PoseBusters' ``mol`` checks (``pb_*`` columns; slow, off by default).

Invalid molecules keep their row: descriptors are missing (NA), never dropped.
For the set (:func:`set_metrics`): validity, uniqueness, novelty, internal diversity, scaffold
counts, SNN and FCD.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rdkit import Chem

from moldiff.chem.alerts import CATALOGS, alert_matches
from moldiff.chem.descriptors import DESCRIPTORS, NUMERIC
from moldiff.chem.rdmol import _one_line, canonical_form, determine_bonds, largest_fragment, rdkit_quiet
from moldiff.chem.reference_set import ReferenceSet
from moldiff.data.molset import MolSet

_INTEGER = ("n_atoms", "n_fragments", "charged_atoms", "hbd", "hba", "rotatable_bonds", "heavy_atoms", "rings",
            "lipinski_violations", *(f"n_{c}" for c in CATALOGS))  # fmt: skip
_FLOAT = ("qed", "sa", "logp", "mw", "tpsa", "nn_similarity")
_BOOL = ("valid", "edm_valid", "mol_stable")
_TEXT = ("failure", "smiles", "scaffold", "nn_smiles", *CATALOGS)
NUMERIC_SCORES = tuple(n for n in (*NUMERIC, *(f"n_{c}" for c in CATALOGS), "nn_similarity", "n_fragments",
                                    "charged_atoms"))  # fmt: skip
"""Score columns that hold numbers (what desirability components and range filters can use)."""


# ------------------------------------------------------------------------------- molecules
def bonded_molecules(molset: MolSet) -> tuple[list[Chem.Mol | None], list[str]]:
    """Every molecule with its bonds: (M sanitized molecules with H and a conformer, or None;
    M failure reasons, "" where it worked). A set that carries bonds (a graph model's) is read as
    written (:func:`written_molecules`); otherwise xyz2mol assigns them from the coordinates."""
    return written_molecules(molset) if molset.has_bonds else xyz2mol_molecules(molset)


def xyz2mol_molecules(molset: MolSet) -> tuple[list[Chem.Mol | None], list[str]]:
    """xyz2mol on every molecule's coordinates, whatever bonds the set carries (see
    :func:`bonded_molecules`)."""
    mols, reasons = [], []
    for i in range(len(molset)):
        a, b = int(molset.ptr[i]), int(molset.ptr[i + 1])
        if b == a:
            mols.append(None)
            reasons.append("no atoms")
            continue
        mol, why = determine_bonds(molset.atomic_numbers[a:b].tolist(), molset.positions[a:b],
                                   int(molset.charges[a:b].sum()))  # fmt: skip
        mols.append(mol)
        reasons.append(why)
    return mols, reasons


def written_molecules(molset: MolSet) -> tuple[list[Chem.Mol | None], list[str]]:
    """A set with bonds read as written: (M molecules with the set's own bonds and formal charges,
    sanitized, or None; M failure reasons). A molecule counts when RDKit sanitizes it and every atom
    has an allowed valence for its element and charge (:func:`moldiff.chem.graph_eval.atom_stability`):
    RDKit alone would fill an atom short of bonds with implicit hydrogens, and call a written
    radical valid."""
    from moldiff.chem.graph_eval import atom_stability, written_mols

    mols, reasons = [], []
    for mol in written_mols(molset):
        if mol.GetNumAtoms() == 0:
            mols.append(None)
            reasons.append("no atoms")
            continue
        sanitized = Chem.Mol(mol)
        try:
            Chem.SanitizeMol(sanitized)
        except Exception as exc:  # AtomValenceException, KekulizeException, ...
            mols.append(None)
            reasons.append(f"the written graph does not sanitize: {_one_line(exc)}")
            continue
        stable, notes = atom_stability(mol)
        mols.append(sanitized if stable.all() else None)
        reasons.append("" if stable.all() else f"valences not allowed ({'; '.join(notes)})")
    return mols, reasons


def sdf_molecules(molset: MolSet) -> list[Chem.Mol]:
    """Molecules to write to an SDF: a set's own bonds and charges as written if it carries bonds;
    else xyz2mol's bonds, charges and hydrogens where it succeeds, and the EDM distance-rule bonds
    (unsanitized) where it fails, so an invalid molecule is still seen as generated."""
    from moldiff.chem.draw import molset_to_mols
    from moldiff.chem.graph_eval import written_mols

    if molset.has_bonds:
        return written_mols(molset)
    with rdkit_quiet():
        mols, _ = bonded_molecules(molset)
    if any(m is None for m in mols):
        fallback = molset_to_mols(molset)
        mols = [m if m is not None else f for m, f in zip(mols, fallback)]
    return mols


def main_fragment(mol: Chem.Mol) -> tuple[Chem.Mol, int]:
    """(largest fragment without explicit hydrogens, number of fragments) of a sanitized molecule."""
    n_frags = len(Chem.GetMolFrags(mol))
    return Chem.RemoveHs(largest_fragment(mol)), n_frags


# --------------------------------------------------------------------------------- scoring
def score_molset(molset: MolSet, reference: ReferenceSet | None = None, *, posebusters: str | None = None,
                 edm: bool = True, workers: int = 1):  # fmt: skip
    """Score M generated molecules (explicit hydrogens, Å).

    Args:
        molset: the molecules; ``ids`` become the ``index`` column.
        reference: the training set for ``novel`` / ``nn_similarity`` (None: those stay NA).
        posebusters: None (skip), ``"fast"`` or ``"full"`` (see :mod:`moldiff.chem.posebusters`).
        edm: add the EDM-rule columns ``edm_valid`` and ``mol_stable``.
        workers: processes for the per-molecule RDKit work (xyz2mol, descriptors, alerts,
            PoseBusters); the result does not depend on it.

    Returns:
        DataFrame, one row per molecule in input order (columns typed by :func:`typed`).
    """
    import pandas as pd

    if workers > 1 and len(molset) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        bounds = np.linspace(0, len(molset), min(len(molset), 4 * workers) + 1).astype(int)
        chunks = [molset.subset(slice(a, b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        # spawn, not fork: the parent may hold torch/OpenMP threads that a forked child inherits
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            frame = pd.concat(list(pool.map(_score_chunk, chunks, [posebusters] * len(chunks))), ignore_index=True)
    else:
        frame = _score_chunk(molset, posebusters)
    frame.insert(0, "index", np.asarray(molset.ids, dtype=np.int64))
    frame.insert(1, "n_atoms", molset.n_atoms.astype(np.int64))
    _add_reference_columns(frame, reference)
    if edm:
        frame["edm_valid"], frame["mol_stable"] = _edm_columns(molset)
    return typed(frame)


def _score_chunk(molset: MolSet, posebusters: str | None):
    """The per-molecule RDKit work for some molecules (a process-pool task)."""
    with rdkit_quiet():
        mols, reasons = bonded_molecules(molset)
    return score_mols(mols, reasons, posebusters=posebusters)


def score_smiles(smiles: Sequence[str], reference: ReferenceSet | None = None):
    """Score molecules given as SMILES (no 3D: no xyz2mol, EDM or PoseBusters columns)."""
    with rdkit_quiet():
        mols = [Chem.MolFromSmiles(s) for s in smiles]
    reasons = ["" if m is not None else "unparsable SMILES" for m in mols]
    frame = score_mols(mols, reasons)
    frame.insert(0, "index", np.arange(len(smiles), dtype=np.int64))
    _add_reference_columns(frame, reference)
    return typed(frame)


def score_mols(mols: Sequence[Chem.Mol | None], reasons: Sequence[str], *, posebusters: str | None = None):
    """Descriptors, alerts (and PoseBusters checks) of sanitized RDKit molecules (None where there
    is none, with its reason); no reference columns."""
    import pandas as pd

    with rdkit_quiet():
        rows = [_score_one(m, r) for m, r in zip(mols, reasons)]
    frame = pd.DataFrame.from_records(rows, columns=_ROW_COLUMNS)
    if posebusters:
        from moldiff.chem.posebusters import posebusters_checks

        checks = posebusters_checks(list(mols), posebusters)
        frame = pd.concat([frame, checks], axis=1)
    return frame


_ROW_COLUMNS = ["valid", "failure", "smiles", "n_fragments", "charged_atoms", *DESCRIPTORS, *CATALOGS, *(f"n_{c}" for c in CATALOGS)]


def _score_one(mol: Chem.Mol | None, reason: str) -> dict:
    row: dict = {"valid": False, "failure": reason, "smiles": ""}
    if mol is None:
        return row
    try:
        heavy, n_frags = main_fragment(mol)
        smiles = canonical_form(mol)
    except Exception as exc:  # RDKit raises several types on odd molecules
        return {**row, "failure": f"cannot write SMILES: {' '.join(str(exc).split())}"}
    if Chem.MolFromSmiles(smiles) is None:
        return {**row, "failure": "RDKit cannot read back its own SMILES"}
    charged = sum(a.GetFormalCharge() != 0 for a in mol.GetAtoms())
    row.update(valid=True, failure="", smiles=smiles, n_fragments=n_frags, charged_atoms=charged)
    for name, fn in DESCRIPTORS.items():
        try:
            row[name] = fn(heavy)
        except Exception:  # one odd descriptor costs one value, not the molecule
            row[name] = None
    for catalog, names in alert_matches(heavy).items():
        row[catalog] = "; ".join(names)
        row[f"n_{catalog}"] = len(names)
    return row


def _add_reference_columns(frame, reference: ReferenceSet | None) -> None:
    """``novel``, ``nn_similarity`` and ``nn_smiles`` (in place, before any PoseBusters columns)."""
    at = next((k for k, c in enumerate(frame.columns) if str(c).startswith("pb_")), len(frame.columns))
    for offset, (name, values) in enumerate(zip(("novel", "nn_similarity", "nn_smiles"),
                                                _reference_columns(frame["smiles"], reference))):  # fmt: skip
        frame.insert(at + offset, name, values)


def _reference_columns(smiles, reference: ReferenceSet | None):
    import pandas as pd

    n = len(smiles)
    novel = pd.array([None] * n, dtype="boolean")
    nn_sim = np.full(n, np.nan)
    nn_smi = [""] * n
    if reference is None:
        return novel, nn_sim, nn_smi
    valid = [i for i, s in enumerate(smiles) if s]
    for i in valid:
        novel[i] = smiles[i] not in reference.smiles
    unique = sorted({smiles[i] for i in valid})
    if unique and reference.sample:
        from moldiff.chem.similarity import morgan_from_smiles, nearest_neighbours

        sims, index = nearest_neighbours(morgan_from_smiles(unique), reference.fingerprints())
        best = {s: (sims[k], reference.sample[index[k]]) for k, s in enumerate(unique)}
        for i in valid:
            nn_sim[i], nn_smi[i] = best[smiles[i]]
    return novel, nn_sim, nn_smi


def _edm_columns(molset: MolSet) -> tuple[np.ndarray, np.ndarray]:
    """EDM-rule validity and molecule stability (False for elements outside the EDM tables)."""
    from moldiff.chem.bonds import atom_stable, molset_bonds
    from moldiff.chem.evaluate import edm_smiles

    try:
        valences, edges, orders = molset_bonds(molset)
    except ValueError:
        return np.zeros(len(molset), bool), np.zeros(len(molset), bool)
    smiles, _ = edm_smiles(molset, edges, orders)
    stable = atom_stable(molset.atomic_numbers, valences)
    n_stable = np.bincount(molset.batch, weights=stable, minlength=len(molset))
    return np.array([s is not None for s in smiles]), (n_stable == molset.n_atoms) & (molset.n_atoms > 0)


def typed(frame):
    """The score columns of ``frame`` in their dtypes: integers and booleans nullable (NA for
    invalid molecules), floats with NaN, text with "" (so a CSV round trip keeps them)."""
    import pandas as pd

    frame = frame.copy()
    for col in frame.columns:
        if col in _INTEGER:
            frame[col] = pd.array(pd.to_numeric(frame[col]), dtype="Int64")
        elif col in _FLOAT:
            frame[col] = pd.to_numeric(frame[col]).astype(np.float64)
        elif col in _BOOL:
            frame[col] = frame[col].astype(bool)
        elif col == "novel" or (col.startswith("pb_") and col != "pb_failed"):
            frame[col] = frame[col].astype("boolean")
        elif col in _TEXT or col == "pb_failed":
            frame[col] = ["" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v) for v in frame[col]]
    return frame


# ------------------------------------------------------------------------------ set metrics
def set_metrics(frame, reference: ReferenceSet | None = None, *, fcd: bool = False,
                diversity_max: int = 5000) -> dict:  # fmt: skip
    """Metrics of a scored set (the frame of :func:`score_molset`).

    Returns a dict of plain numbers (None where undefined):
        n, n_valid, validity (xyz2mol), edm_validity and mol_stability (if scored), connected
        (valid and one fragment, / n), neutral (valid without formal charges, / n; xyz2mol reaches
        a valence by separating charges where no neutral structure exists), neutral_connected,
        uniqueness (unique SMILES / valid), novelty (novel unique / unique), internal_diversity (1 − mean pairwise Tanimoto of the unique molecules),
        n_scaffolds (distinct non-empty Murcko scaffolds of the unique molecules),
        scaffold_diversity (n_scaffolds / unique), snn (mean nearest-reference similarity of the
        valid molecules), fcd (valid molecules against the reference sample; only with ``fcd``),
        posebusters_pass (if checked), and the mean of each descriptor over valid molecules.
    """
    from moldiff.chem.similarity import internal_diversity, morgan_from_smiles

    n = len(frame)
    valid = frame[frame["valid"]]
    unique = sorted(set(valid["smiles"]))
    out: dict = {"n": n, "n_valid": len(valid), "validity": _frac(len(valid), n)}
    for col, key in (("edm_valid", "edm_validity"), ("mol_stable", "mol_stability")):
        if col in frame:
            out[key] = _frac(int(frame[col].sum()), n)
    one_piece, neutral = valid["n_fragments"] == 1, valid["charged_atoms"] == 0
    out["connected"] = _frac(int(one_piece.sum()), n)
    out["neutral"] = _frac(int(neutral.sum()), n)
    out["neutral_connected"] = _frac(int((neutral & one_piece).sum()), n)
    out["n_unique"] = len(unique)
    out["uniqueness"] = _frac(len(unique), len(valid))
    if reference is not None:
        novel = {s for s in unique if s not in reference.smiles}
        out["n_novel"], out["novelty"] = len(novel), _frac(len(novel), len(unique))
        out["snn"] = _mean(valid["nn_similarity"])
    out["internal_diversity"] = internal_diversity(morgan_from_smiles(unique), diversity_max) if unique else None
    scaffolds = {s for s in valid.drop_duplicates("smiles")["scaffold"] if s}
    out["n_scaffolds"] = len(scaffolds)
    out["scaffold_diversity"] = _frac(len(scaffolds), len(unique))
    if "pb_pass" in frame:
        out["posebusters_pass"] = _frac(int(frame["pb_pass"].fillna(False).sum()), n)
    for name in ("qed", "sa", "logp", "mw", "tpsa"):
        out[f"mean_{name}"] = _mean(valid[name])
    if fcd:
        out["fcd"] = fcd_score(list(valid["smiles"]), reference)
    return out


FCD_REFERENCE = 10_000
"""Reference molecules whose ChemNet statistics FCD compares against (the first of the seeded
sample; computing them takes one to three minutes on two cores, once: they are cached)."""


def fcd_score(smiles: list[str], reference: ReferenceSet | None) -> float | None:
    """FCD of ``smiles`` against up to :data:`FCD_REFERENCE` molecules of the reference sample;
    None with fewer than two molecules on either side."""
    from moldiff.chem import fcd

    sample = [] if reference is None else reference.sample[:FCD_REFERENCE]
    if len(smiles) < fcd.MIN_MOLECULES or len(sample) < fcd.MIN_MOLECULES:
        return None
    return fcd.frechet_distance(smiles, fcd.cached_statistics(sample))


def _frac(num: int, den: int) -> float | None:
    return float(num) / den if den else None


def _mean(values) -> float | None:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else None
