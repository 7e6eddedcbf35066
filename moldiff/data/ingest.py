"""The user's own molecules -> MolSet: an SDF with 3D coordinates, or SMILES (CSV or .smi) embedded
in 3D by RDKit.

Nothing is dropped silently: every input record the model cannot represent becomes a reject
``(index, reason)``, where ``index`` is the 0-based record number in the file (SDF block, CSV data
row, non-blank .smi line) and also the ``ids`` entry of kept molecules. A file that cannot be read
at all raises :class:`MoldiffError` with a one-line message.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np

from moldiff.data.elements import SYMBOLS, AtomVocabulary, symbol
from moldiff.data.molset import MolSet
from moldiff.errors import MoldiffError
from moldiff.paths import atomic_write_text

SDF_SUFFIXES = (".sdf", ".sd", ".mol")
CSV_SUFFIXES = (".csv", ".csv.gz")
SMI_SUFFIXES = (".smi", ".smiles")

Reject = tuple[int, str]


@dataclass
class IngestResult:
    """The kept molecules and the ``(index, reason)`` of every rejected input record.

    ``forcefields`` names, per kept molecule, the force field that relaxed its generated conformer
    (``"MMFF94"``, ``"UFF"`` where MMFF94 had no parameters, ``"none"``); empty for SDF input.
    """

    molset: MolSet
    rejects: list[Reject]
    forcefields: list[str] = field(default_factory=list)

    @property
    def n_read(self) -> int:
        return len(self.molset) + len(self.rejects)

    def summary(self, rejects_path: str | Path | None = None) -> str:
        """One line: ``read N, kept K, rejected R (see rejects.csv)``."""
        line = f"read {self.n_read}, kept {len(self.molset)}, rejected {len(self.rejects)}"
        return f"{line} (see {rejects_path})" if self.rejects and rejects_path else line


def ingest(
    path: str | Path,
    vocab: AtomVocabulary | None = None,
    max_atoms: int | None = None,
    workers: int | None = None,
    *,
    seed: int | None = None,
    progress: bool | None = None,
) -> IngestResult:
    """Read a molecule file into a MolSet, rejecting what the model cannot represent.

    Args:
        path: ``.sdf``/``.sd``/``.mol`` (3D coordinates used as they are), ``.csv``/``.csv.gz``
            (a column named ``smiles``, any case; other numeric columns become properties) or
            ``.smi``/``.smiles`` (SMILES, then an optional name, per line). SMILES are embedded
            with :func:`moldiff.chem.conformers.embed_many`.
        vocab: the elements the model knows; ``None`` accepts every element moldiff can name.
        max_atoms: reject molecules with more atoms than this, hydrogens included.
        workers: conformer processes (default ``os.cpu_count()``); unused for SDF.
        seed: ETKDG seed (default :data:`moldiff.chem.conformers.DEFAULT_SEED`).
        progress: conformer progress bar; ``None`` shows it on a terminal only.

    Returns:
        :class:`IngestResult`; ``molset.smiles`` holds RDKit canonical SMILES, ``molset.ids`` the
        record index of each kept molecule, rejects are sorted by index.

    Raises:
        MoldiffError: missing or empty file, unknown extension, CSV without a SMILES column,
            no usable molecule.
    """
    path = Path(path)
    if not path.is_file():
        raise MoldiffError(f"no such file: {path}" if not path.exists() else f"not a file: {path}")
    if path.stat().st_size == 0:
        raise MoldiffError(f"{path} is empty")
    if max_atoms is not None and max_atoms < 1:
        raise MoldiffError(f"max_atoms must be at least 1, got {max_atoms}")
    name = path.name.lower()
    if name.endswith(SDF_SUFFIXES):
        result = _ingest_sdf(path, vocab, max_atoms)
    elif name.endswith(CSV_SUFFIXES + SMI_SUFFIXES):
        smiles, properties = _read_csv(path) if name.endswith(CSV_SUFFIXES) else (_read_smi(path), {})
        result = _ingest_smiles(smiles, properties, vocab, max_atoms, workers, seed, progress)
    else:
        known = ", ".join(SDF_SUFFIXES + CSV_SUFFIXES + SMI_SUFFIXES)
        raise MoldiffError(f"cannot read {path.name}: unknown file type (expected one of {known})")
    if result.n_read == 0:
        raise MoldiffError(f"no molecules in {path}")
    if len(result.molset) == 0:
        common = Counter(reason for _, reason in result.rejects).most_common(1)
        why = f"; most common reason: {common[0][0]}" if common else ""
        raise MoldiffError(f"no usable molecules in {path} (read {result.n_read}, all rejected{why})")
    return result


def write_rejects(path: str | Path, rejects: list[Reject]) -> None:
    """Write ``index,reason`` rows (with a header) as CSV, atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["index", "reason"])
    writer.writerows(rejects)
    atomic_write_text(path, buf.getvalue())


# ----------------------------------------------------------------- screening
def screen_atoms(
    atomic_numbers: np.ndarray, vocab: AtomVocabulary | None, max_atoms: int | None
) -> str | None:
    """Why a molecule with these atoms cannot be represented, or None if it can."""
    z = np.asarray(atomic_numbers)
    if len(z) == 0:
        return "no atoms"
    unknown = sorted({int(v) for v in z if not 0 < v < len(SYMBOLS)})
    if unknown:
        return f"unsupported element (atomic number {', '.join(map(str, unknown))})"
    if vocab is not None:
        outside = [symbol(v) for v in sorted({int(v) for v in z}) if not vocab.contains(v)]
        if outside:
            noun = "element" if len(outside) == 1 else "elements"
            return f"{noun} {', '.join(outside)} not in vocabulary ({', '.join(vocab.symbols)})"
    if max_atoms is not None and len(z) > max_atoms:
        return f"too many atoms ({len(z)} > {max_atoms})"
    return None


def screen_positions(positions: np.ndarray) -> str | None:
    """Why these coordinates are unusable (NaN, infinite, all atoms on one point), or None."""
    pos = np.asarray(positions, dtype=np.float64)
    if np.isnan(pos).any():
        return "NaN coordinates"
    if np.isinf(pos).any():
        return "infinite coordinates"
    if len(pos) > 1 and np.ptp(pos, axis=0).max() == 0:
        return "no coordinates (all atoms at one point)"
    return None


# ---------------------------------------------------------------------- SDF
def _ingest_sdf(path: Path, vocab: AtomVocabulary | None, max_atoms: int | None) -> IngestResult:
    from moldiff.chem.io import read_sdf
    from moldiff.chem.smiles import sdf_smiles

    data, rejects = read_sdf(path)
    rejects = list(rejects)
    keep, smiles = [], []
    for i in range(len(data)):
        z, pos = data.molecule(i)
        reason = screen_atoms(z, vocab, max_atoms) or screen_positions(pos)
        if reason is None:
            keep.append(i)
        else:
            rejects.append((int(data.ids[i]), reason))
    kept = []
    for i, (smi, reason) in zip(keep, sdf_smiles(path, data.ids[keep])):
        if smi is None:
            rejects.append((int(data.ids[i]), reason))
        else:
            kept.append(i)
            smiles.append(smi)
    molset = replace(data.subset(kept), smiles=np.array(smiles, dtype=str))
    return IngestResult(molset, sorted(rejects))


# ------------------------------------------------------------------- SMILES
def _read_csv(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise MoldiffError(f"cannot read {path} as CSV: {str(exc).splitlines()[0]}") from None
    column = next((c for c in frame.columns if str(c).strip().lower() == "smiles"), None)
    if column is None:
        shown = ", ".join(map(str, frame.columns[:10]))
        raise MoldiffError(f"{path} has no SMILES column (a column named 'smiles'; found: {shown})")
    smiles = ["" if pd.isna(s) else str(s) for s in frame[column]]
    numeric = frame.drop(columns=[column]).select_dtypes("number")
    return smiles, {str(c): numeric[c].to_numpy(np.float64) for c in numeric.columns}


def _read_smi(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise MoldiffError(f"{path} is not a text file of SMILES") from None
    lines = [line.strip() for line in lines]
    records = [line.split(maxsplit=1)[0] for line in lines if line and not line.startswith("#")]
    if records and records[0].lower() == "smiles":  # a header line
        records = records[1:]
    return records


def _ingest_smiles(smiles: list[str], properties: dict[str, np.ndarray], vocab: AtomVocabulary | None,
                   max_atoms: int | None, workers: int | None, seed: int | None,
                   progress: bool | None) -> IngestResult:  # fmt: skip
    from moldiff.chem.conformers import DEFAULT_SEED, Conformer, embed_many

    screen = partial(screen_atoms, vocab=vocab, max_atoms=max_atoms)
    seed = DEFAULT_SEED if seed is None else seed
    results = embed_many(smiles, workers=workers, seed=seed, screen=screen, progress=progress)
    kept = [(i, r) for i, r in enumerate(results) if isinstance(r, Conformer)]
    rejects = [(i, r) for i, r in enumerate(results) if not isinstance(r, Conformer)]
    index = np.array([i for i, _ in kept], dtype=np.int64)
    confs = [c for _, c in kept]

    def cat(name: str, empty: tuple[int, ...]) -> np.ndarray:
        return np.concatenate([getattr(c, name) for c in confs]) if confs else np.zeros(empty)

    molset = MolSet(
        atomic_numbers=cat("atomic_numbers", (0,)),
        positions=cat("positions", (0, 3)),
        ptr=np.concatenate([[0], np.cumsum([len(c.atomic_numbers) for c in confs], dtype=np.int64)]),
        charges=cat("charges", (0,)),
        ids=index,
        smiles=np.array([c.smiles for c in confs], dtype=str),
        properties={k: v[index] for k, v in properties.items()},
    )
    return IngestResult(molset, rejects, [c.forcefield for c in confs])
