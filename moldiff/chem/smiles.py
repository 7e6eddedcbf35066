"""Canonical SMILES of the molecule blocks of an SDF file, as ingestion records them.

The SMILES come from the file's own bonds and charges (not from bonds re-inferred from distances);
stereochemistry is read from the 3D coordinates; hydrogens are folded into their heavy atoms, as
in RDKit's canonical form of a SMILES string.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rdkit import Chem

from moldiff.chem.rdmol import rdkit_quiet


def sdf_smiles(path: str | Path, indices: Sequence[int]) -> list[tuple[str | None, str]]:
    """Canonical SMILES of blocks ``indices`` (0-based) of an SDF file.

    Blocks are counted as :func:`moldiff.chem.io.read_sdf` counts them, so its ``MolSet.ids`` can
    be passed as ``indices``.

    Returns:
        Per index, ``(smiles, "")`` or ``(None, reason)`` where RDKit cannot sanitize the block
        (e.g. a carbon with five bonds) or cannot parse it at all.
    """
    text = Path(path).read_bytes().decode("utf-8", errors="replace")
    supplier = Chem.SDMolSupplier()
    supplier.SetData(text, sanitize=False, removeHs=False, strictParsing=True)
    out = []
    with rdkit_quiet():
        for index in indices:
            mol = supplier[int(index)]
            out.append((None, "unparsable block") if mol is None else _canonical(mol))
    return out


def _canonical(mol: Chem.Mol) -> tuple[str | None, str]:
    mol = Chem.Mol(mol)
    try:
        Chem.SanitizeMol(mol)
        if mol.GetNumConformers() and mol.GetConformer().Is3D():
            Chem.AssignStereochemistryFrom3D(mol)
        return Chem.MolToSmiles(Chem.RemoveHs(mol)), ""
    except Exception as exc:  # RDKit raises several types (valence, kekulization, ...)
        return None, f"invalid chemistry: {' '.join(str(exc).split()) or type(exc).__name__}"
