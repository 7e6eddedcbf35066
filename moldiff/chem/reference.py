"""Reference SMILES for novelty: the QM9 training split (cached), or a user's file.

The QM9 reference is computed from the training coordinates with the same EDM bond rule as the
generated molecules (not from qm9pack's SMILES column), as EDM does, and cached as text in
``$MOLDIFF_HOME/qm9/``. The cache header records a fingerprint of the bond tables and the SMILES
form, so changing either recomputes it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from moldiff.chem import bonds
from moldiff.chem.evaluate import edm_smiles
from moldiff.chem.io import SDF_SUFFIXES, XYZ_SUFFIXES, read_molecules
from moldiff.chem.rdmol import SMILES_FORM, canonicalize_smiles
from moldiff.errors import MoldiffError
from moldiff.paths import atomic_write_text, moldiff_home

CACHE_NAME = "train_smiles_edm.txt"


def rule_fingerprint() -> str:
    """Short hash of everything that decides a molecule's SMILES (bond tables, margins, form)."""
    spec = {
        "single": sorted(bonds.SINGLE_PM.items()),
        "double": sorted(bonds.DOUBLE_PM.items()),
        "triple": sorted(bonds.TRIPLE_PM.items()),
        "margins": bonds.MARGINS_PM,
        "form": SMILES_FORM,
    }
    return hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:16]


def qm9_reference_cache(cache_dir: Path | None = None) -> Path:
    """Where :func:`qm9_train_reference_smiles` keeps its SMILES (may not exist yet)."""
    return (cache_dir or moldiff_home() / "qm9") / CACHE_NAME


def qm9_train_reference_smiles(cache_dir: Path | None = None) -> set[str]:
    """Unique SMILES of QM9's EDM training split (100,000 molecules) under the EDM bond rule.

    Computed once (about 15 s) and cached in ``cache_dir`` (default ``moldiff_home()/qm9``).
    """
    cache = qm9_reference_cache(cache_dir)
    header = f"# moldiff QM9 train reference SMILES; rule {rule_fingerprint()}"
    if cache.exists():
        lines = cache.read_text().splitlines()
        if lines and lines[0] == header:
            return set(lines[1:])
    from moldiff.data.qm9 import load_qm9

    smiles, _ = edm_smiles(load_qm9("train"))
    unique = sorted({s for s in smiles if s is not None})
    atomic_write_text(cache, "\n".join([header, *unique]) + "\n")
    return set(unique)


def read_reference_smiles(path: str | Path) -> set[str]:
    """Reference SMILES from a file: SDF/XYZ (bonds by the EDM rule, like generated molecules),
    or SMILES in a ``.smi``/``.txt`` file (first token per line) or ``.csv`` file (the column named
    ``smiles``, any case, else the first), canonicalised with RDKit."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in SDF_SUFFIXES + XYZ_SUFFIXES:
        molset, _ = read_molecules(path)
        return {s for s in edm_smiles(molset)[0] if s is not None}
    if suffix in (".smi", ".smiles", ".txt"):
        raw = [line.split()[0] for line in _text(path).splitlines() if line.strip() and not line.startswith("#")]
    elif suffix == ".csv":
        raw = _csv_smiles(path)
    else:
        raise MoldiffError(f"cannot tell the format of reference file {path}: unknown extension {suffix or '(none)'!r} "
                           "(expected .sdf, .xyz, .smi, .txt or .csv)")  # fmt: skip
    out = {s for s in (canonicalize_smiles(r) for r in raw) if s is not None}
    if not out:
        raise MoldiffError(f"no readable SMILES in reference file {path}")
    return out


def _text(path: Path) -> str:
    if not path.is_file():
        raise MoldiffError(f"no such file: {path}")
    return path.read_text(errors="replace")


def _csv_smiles(path: Path) -> list[str]:
    import pandas as pd

    _text(path)
    try:
        frame = pd.read_csv(path, dtype=str)
    except (ValueError, pd.errors.ParserError) as exc:
        raise MoldiffError(f"cannot read CSV {path}: {' '.join(str(exc).split())}") from None
    columns = [c for c in frame.columns if str(c).strip().lower() == "smiles"] or list(frame.columns[:1])
    if not columns:
        raise MoldiffError(f"CSV {path} has no columns")
    return frame[columns[0]].dropna().astype(str).tolist()


def qm9_train_graph_smiles() -> frozenset[str]:
    """Unique SMILES of QM9's training split as its own SMILES state them, in the one canonical form:
    the reference of a graph model, whose molecules carry their bonds instead of the EDM rule's."""
    from moldiff.chem.reference_set import ReferenceSet
    from moldiff.data.qm9 import load_qm9

    return ReferenceSet.from_smiles([str(s) for s in load_qm9("train").smiles], "QM9 train").smiles
