"""Morgan fingerprints and Tanimoto similarities: nearest neighbours, internal diversity.

Fingerprints are ECFP4-like (Morgan radius 2, 2048 bits) from ``rdFingerprintGenerator``, as
MOSES uses for its SNN and internal-diversity metrics (Polykovskiy et al. 2020).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

RADIUS = 2
N_BITS = 2048

_generator = None


def morgan(mol: Chem.Mol):
    """The Morgan fingerprint (radius 2, 2048 bits) of one molecule."""
    global _generator
    if _generator is None:
        _generator = rdFingerprintGenerator.GetMorganGenerator(radius=RADIUS, fpSize=N_BITS)
    return _generator.GetFingerprint(mol)


def morgan_from_smiles(smiles: Sequence[str]) -> list:
    """Fingerprints of SMILES strings; unparsable ones are skipped."""
    from moldiff.chem.rdmol import rdkit_quiet

    with rdkit_quiet():
        mols = [Chem.MolFromSmiles(s) for s in smiles]
    return [morgan(m) for m in mols if m is not None]


def nearest_neighbours(queries: Sequence, reference: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """For each query fingerprint, its highest Tanimoto similarity to ``reference`` and the
    reference index that attains it.

    Shapes: queries (Q,), reference (R,) -> similarity (Q,) float64, index (Q,) int64
    (NaN and -1 when ``reference`` is empty).
    """
    sims = np.full(len(queries), np.nan)
    index = np.full(len(queries), -1, dtype=np.int64)
    if not len(reference):
        return sims, index
    reference = list(reference)
    for q, fp in enumerate(queries):
        row = np.asarray(DataStructs.BulkTanimotoSimilarity(fp, reference))
        index[q] = int(row.argmax())
        sims[q] = row[index[q]]
    return sims, index


def internal_diversity(fps: Sequence, max_molecules: int = 5000, seed: int = 0) -> float | None:
    """1 − mean Tanimoto similarity over all pairs of distinct molecules (MOSES IntDiv₁, without
    self-pairs); at most ``max_molecules`` molecules, drawn with ``seed``. None below two."""
    fps = list(fps)
    if len(fps) > max_molecules:
        keep = np.random.default_rng(seed).choice(len(fps), max_molecules, replace=False)
        fps = [fps[i] for i in sorted(keep)]
    if len(fps) < 2:
        return None
    total, pairs = 0.0, 0
    for i in range(1, len(fps)):
        total += float(np.sum(DataStructs.BulkTanimotoSimilarity(fps[i], fps[:i])))
        pairs += i
    return 1.0 - total / pairs
