"""2D grid drawings of molecules (RDKit ``MolsToGridImage``), usable offline in notebooks and reports.

A MolSet with SMILES (QM9, ingested files) is drawn from its SMILES, the molecules' identity.
Without SMILES (generated molecules) bonds are inferred with the EDM distance rule, the bonds the
evaluator judges, so an invalid molecule is drawn as the evaluator sees it. The EDM rule often reads
aromatic rings as single bonds, so prefer SMILES when there are some.
"""

from __future__ import annotations

from collections.abc import Sequence

from rdkit import Chem
from rdkit.Chem import Draw, rdDepictor

from moldiff.chem.bonds import molset_bonds
from moldiff.chem.rdmol import mol_from_edges, rdkit_quiet
from moldiff.data.molset import MolSet


def grid_image(
    molecules: MolSet | Sequence[Chem.Mol],
    *,
    legends: Sequence[str] | None = None,
    n_cols: int = 4,
    size: tuple[int, int] = (220, 180),
    max_molecules: int = 24,
    svg: bool = False,
    highlight_atoms: Sequence[Sequence[int]] | None = None,
):
    """Draw up to ``max_molecules`` molecules in a grid of 2D depictions, hydrogens hidden.

    Args:
        molecules: RDKit molecules, or a MolSet (drawn from its SMILES if it has them, else
            with EDM-rule bonds).
        legends: one caption per molecule (default: the MolSet's SMILES, else its ids).
        n_cols: molecules per row.
        size: (width, height) of one cell in pixels.
        max_molecules: draw only the first this many.
        svg: return SVG text instead of a PIL image.
        highlight_atoms: atom indices to highlight, one list per molecule (hydrogens are folded
            in, so index heavy atoms of a molecule whose hydrogens are implicit, as SMILES give them).

    Returns:
        A PIL image (shown inline by Jupyter), or SVG text when ``svg``.
    """
    if isinstance(molecules, MolSet):
        if legends is None:
            legends = [str(s) for s in (molecules.smiles if molecules.smiles is not None else molecules.ids)]
        shown = molecules.subset(slice(0, max_molecules))
        molecules = molset_to_mols(shown) if shown.smiles is None else _from_smiles(shown)
    mols = [_depiction(m) for m in list(molecules)[:max_molecules]]
    legends = None if legends is None else [str(s) for s in list(legends)[: len(mols)]]
    if legends is not None and len(legends) != len(mols):
        raise ValueError(f"{len(legends)} legends for {len(mols)} molecules")
    highlight = None if highlight_atoms is None else [list(a) for a in list(highlight_atoms)[: len(mols)]]
    # under IPython, RDKit's console patches MolsToGridImage to return display objects (and cap the
    # grid at 50 molecules); the original, saved beside it, returns SVG text or a PIL image
    draw_grid = getattr(Draw, "_MolsToGridImageSaved", None) or Draw.MolsToGridImage
    with rdkit_quiet():
        return draw_grid(mols, molsPerRow=n_cols, subImgSize=size, legends=legends, useSVG=svg,
                         highlightAtomLists=highlight)  # fmt: skip


def molset_to_mols(molset: MolSet) -> list[Chem.Mol]:
    """Unsanitized RDKit molecules (explicit H, 3D conformer, formal charges) with EDM-rule bonds."""
    _, edges, orders = molset_bonds(molset)
    first_edge = edges[:, 0].searchsorted(molset.ptr)
    mols = []
    for i in range(len(molset)):
        a, e0, e1 = int(molset.ptr[i]), int(first_edge[i]), int(first_edge[i + 1])
        z, pos = molset.molecule(i)
        mols.append(mol_from_edges(z.tolist(), (edges[e0:e1] - a).tolist(), orders[e0:e1].tolist(), pos,
                                   molset.charges[a : a + len(z)].tolist()))  # fmt: skip
    return mols


def _from_smiles(molset: MolSet) -> list[Chem.Mol]:
    """Molecules parsed from the set's SMILES; EDM-rule bonds for any SMILES RDKit cannot parse."""
    with rdkit_quiet():
        mols = [Chem.MolFromSmiles(str(s)) for s in molset.smiles]
    if any(m is None for m in mols):
        by_geometry = molset_to_mols(molset)
        mols = [m if m is not None else g for m, g in zip(mols, by_geometry)]
    return mols


def _depiction(mol: Chem.Mol) -> Chem.Mol:
    """A copy with hydrogens folded in and 2D coordinates; drawn unsanitized if RDKit rejects it."""
    mol = Chem.Mol(mol)
    with rdkit_quiet():
        try:
            Chem.SanitizeMol(mol)
            mol = Chem.RemoveHs(mol)
        except Exception:  # invalid chemistry (e.g. a generated molecule): draw its atoms and bonds as is
            mol.UpdatePropertyCache(strict=False)
            mol = Chem.RemoveHs(mol, sanitize=False)
        rdDepictor.Compute2DCoords(mol)
    return mol


def grid_from_smiles(smiles: Sequence[str], *, legends: Sequence[str] | None = None, n_cols: int = 4,
                     size: tuple[int, int] = (220, 180), svg: bool = True, highlight: str | None = None):  # fmt: skip
    """A grid of 2D depictions of SMILES (see :func:`grid_image`); an unparsable SMILES is an empty cell.

    ``highlight``: a substructure (SMILES, e.g. a campaign's scaffold) drawn highlighted wherever a
    molecule contains it with its bond orders.

    Returns SVG text (without the XML declaration, ready to inline in HTML) when ``svg``, else a
    PIL image.
    """
    with rdkit_quiet():
        mols = [Chem.MolFromSmiles(str(s)) or Chem.Mol() for s in smiles]
    atoms = _matches(mols, highlight) if highlight else None
    image = grid_image(mols, legends=legends, n_cols=n_cols, size=size, max_molecules=len(mols), svg=svg,
                       highlight_atoms=atoms)  # fmt: skip
    if svg:
        image = image[image.index("<svg"):] if "<svg" in image else image
    return image


def _matches(mols: Sequence[Chem.Mol], smiles: str) -> list[list[int]]:
    """Atoms of each molecule matching the substructure ``smiles`` (its hydrogens ignored)."""
    with rdkit_quiet():
        query = Chem.MolFromSmiles(smiles)
        if query is None:
            return [[] for _ in mols]
        query = Chem.RemoveHs(query)
        return [list(m.GetSubstructMatch(query)) if m.GetNumAtoms() else [] for m in mols]
