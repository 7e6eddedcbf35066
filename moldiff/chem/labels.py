"""Drug-likeness labels of molecules given as SMILES, computed with RDKit and cached: QED
(Bickerton et al. 2012), Crippen logP (Wildman & Crippen 1999), the synthetic accessibility score
SA (Ertl & Schuffenhauer 2009, RDKit's contrib implementation; 1 easy to 10 hard) and the
molecular weight (g/mol). They are the training targets of drug-likeness predictors and the
scores reported for guided samples.

Unparsable SMILES give NaN. Labels of a list of SMILES are cached in
``$MOLDIFF_HOME/labels/`` under a hash of the list and the RDKit version, so the QM9 training set
is labelled once.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from rdkit import Chem, rdBase

from moldiff.chem.descriptors import DESCRIPTORS
from moldiff.chem.rdmol import rdkit_quiet
from moldiff.errors import MoldiffError
from moldiff.paths import atomic_write_bytes, moldiff_home

CACHE_VERSION = 1


# the same functions scoring uses (moldiff.chem.descriptors): one implementation of each score
SCORES: dict[str, Callable[[Chem.Mol], float]] = {name: DESCRIPTORS[name] for name in ("qed", "logp", "sa", "mw")}


def check_names(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in SCORES]
    if unknown:
        raise MoldiffError(f"unknown drug-likeness score {', '.join(unknown)}; choose from {', '.join(SCORES)}")


def druglike_scores(smiles: Sequence[str | None], names: Sequence[str] = tuple(SCORES)) -> dict[str, np.ndarray]:
    """Scores ``names`` of every SMILES: name -> (M,) float64, NaN where RDKit cannot parse it."""
    check_names(names)
    out = {name: np.full(len(smiles), np.nan) for name in names}
    with rdkit_quiet():
        for i, smi in enumerate(smiles):
            mol = Chem.MolFromSmiles(smi) if smi else None
            if mol is None:
                continue
            for name in names:
                try:
                    out[name][i] = float(SCORES[name](mol))
                except Exception:  # a score RDKit cannot compute for this molecule costs one NaN
                    pass
    return out


def cached_druglike_scores(smiles: Sequence[str], names: Sequence[str], cache_dir: Path | None = None,
                           progress: Callable[[str], None] | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """:func:`druglike_scores` with a per-score cache keyed by the SMILES list (see module doc)."""
    check_names(names)
    digest = hashlib.sha256("\n".join("" if s is None else str(s) for s in smiles).encode()).hexdigest()[:20]
    folder = cache_dir or moldiff_home() / "labels"
    out = {}
    for name in names:
        path = folder / f"{name}_v{CACHE_VERSION}_rdkit{rdBase.rdkitVersion}_{digest}.npy"
        if path.exists():
            out[name] = np.load(path)
            continue
        if progress is not None:
            progress(f"computing {name} for {len(smiles)} molecules with RDKit (cached afterwards)")
        values = druglike_scores(smiles, [name])[name]
        buf = io.BytesIO()
        np.save(buf, values)
        atomic_write_bytes(path, buf.getvalue())
        out[name] = values
    return out
