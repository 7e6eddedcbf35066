"""Bond graphs for training data: the bonds and formal charges a molecule's SMILES states, placed on
the atoms of its 3D coordinates.

A data set such as QM9 gives coordinates and a SMILES but no atom mapping between them. The
coordinates' connectivity (covalent radii, no bond orders) is matched to the SMILES graph with
hydrogens made explicit; where the two graphs are the same, each coordinate atom takes its SMILES
atom's formal charge and each bond its Kekulé order. Where they differ (the SMILES describes
another tautomer or a bond the geometry does not show), the molecule is reported, never silently
given guessed bonds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdDetermineBonds

from moldiff.chem.rdmol import _ORDER_OF, _one_line, mol_from_edges, rdkit_quiet
from moldiff.data.molset import MolSet


def template_graph(smiles: str) -> Chem.Mol:
    """The SMILES as an RDKit molecule with explicit hydrogens and Kekulé bonds.

    Raises:
        ValueError: unparsable or not kekulizable SMILES.
    """
    with rdkit_quiet():
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            raise ValueError(f"unparsable SMILES {smiles!r}")
        mol = Chem.AddHs(mol)
        try:
            Chem.Kekulize(mol, clearAromaticFlags=True)
        except Exception as exc:
            raise ValueError(f"cannot kekulize {smiles!r}: {_one_line(exc)}") from None
    return mol


def _bare(mol: Chem.Mol) -> Chem.Mol:
    """The same atoms and connections with every bond single and every charge zero: what
    coordinates alone can say about a molecule."""
    edges = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()]
    return mol_from_edges([a.GetAtomicNum() for a in mol.GetAtoms()], edges, [1] * len(edges))


def _closest_match(geometry: Chem.Mol, template: Chem.Mol, positions: np.ndarray, extra: bool) -> tuple | None:
    """match[template atom] = coordinate atom. With extra bonds in the coordinates several embeddings
    may exist: take the one whose bonds are shortest in total (the bonds the geometry really has)."""
    if not extra:
        return geometry.GetSubstructMatch(template) or None
    matches = geometry.GetSubstructMatches(template, uniquify=False, maxMatches=256)
    if not matches:
        return None
    ends = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in template.GetBonds()]).reshape(-1, 2)
    pos = np.asarray(positions, dtype=np.float64)

    def total_length(match) -> float:
        m = np.asarray(match)[ends]
        return float(np.linalg.norm(pos[m[:, 0]] - pos[m[:, 1]], axis=1).sum())

    return min(matches, key=total_length)


def graph_on_coordinates(
    atomic_numbers: Sequence[int], positions: np.ndarray, smiles: str
) -> tuple[np.ndarray, np.ndarray] | str:
    """The SMILES's bonds and charges on the coordinate atoms, or why they cannot be placed.

    Args:
        atomic_numbers: (n,) ints, hydrogens included.
        positions: (n, 3) Å.
        smiles: the molecule's SMILES (hydrogens implicit or explicit).

    Returns:
        (bonds (b, 3) int as (i, j, order) with i < j and Kekulé orders 1-3, charges (n,) int), or a
        one-line reason: unparsable SMILES, other atoms, or connectivity that differs.
    """
    try:
        template = template_graph(smiles)
    except ValueError as exc:
        return str(exc)
    numbers = [int(z) for z in atomic_numbers]
    if Counter(a.GetAtomicNum() for a in template.GetAtoms()) != Counter(numbers):
        return "the SMILES has other atoms than the coordinates"
    geometry = mol_from_edges(numbers, [], [], np.asarray(positions, dtype=np.float64))
    try:
        with rdkit_quiet():
            rdDetermineBonds.DetermineConnectivity(geometry)
    except Exception as exc:
        return f"no connectivity from the coordinates: {_one_line(exc)}"
    # The SMILES graph must lie inside the coordinates' one; close contacts the radii read as extra
    # bonds (common in small rings and crowded QM9 cages) are allowed, missing bonds are not.
    if geometry.GetNumBonds() < template.GetNumBonds():
        return f"connectivity differs: {geometry.GetNumBonds()} bonds in the coordinates, {template.GetNumBonds()} in the SMILES"
    extra = geometry.GetNumBonds() > template.GetNumBonds()
    match = _closest_match(_bare(geometry), _bare(template), positions, extra)
    if match is None:
        return "connectivity differs: the SMILES's bond graph is not in the coordinates"
    charges = np.zeros(len(numbers), dtype=np.int64)
    for atom in template.GetAtoms():
        charges[match[atom.GetIdx()]] = atom.GetFormalCharge()
    rows = []
    for bond in template.GetBonds():
        i, j = sorted((match[bond.GetBeginAtomIdx()], match[bond.GetEndAtomIdx()]))
        rows.append((i, j, _ORDER_OF[bond.GetBondType()]))
    bonds = np.array(sorted(rows), dtype=np.int64).reshape(-1, 3)
    return bonds, charges


def with_graphs(molset: MolSet) -> tuple[MolSet, dict[int, str]]:
    """``molset`` with the bonds and charges of each molecule's SMILES placed on its atoms.

    Returns the molecules whose graph could be placed (a MolSet with ``bonds``) and, for the others,
    ``{position in molset: reason}``.
    """
    if molset.smiles is None:
        raise ValueError("placing SMILES graphs needs a molecule set with SMILES")
    kept, bonds, counts, charges, failed = [], [], [], [], {}
    for i in range(len(molset)):
        z, pos = molset.molecule(i)
        result = graph_on_coordinates(z, pos, str(molset.smiles[i]))
        if isinstance(result, str):
            failed[i] = result
            continue
        kept.append(i)
        bonds.append(result[0])
        counts.append(len(result[0]))
        charges.append(result[1])
    out = molset.subset(kept)
    out.charges = np.concatenate(charges) if charges else np.zeros(0, np.int64)
    out.bonds = np.concatenate(bonds) if bonds else np.zeros((0, 3), np.int64)
    out.bond_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    out._check_bonds(len(out))
    return out, failed


QM9_GRAPHS_CACHE = "qm9_graphs_v1.npz"


def load_qm9_graphs(split: str | None = None) -> tuple[MolSet, dict[int, str]]:
    """QM9 (whole or one EDM split) with the bonds and charges of its SMILES, and the molecules whose
    graph cannot be placed (``{GDB index: reason}``). Placed once (about two minutes), then cached."""
    from moldiff.data.qm9 import load_qm9, split_indices
    from moldiff.paths import moldiff_home

    cache = moldiff_home() / "qm9" / QM9_GRAPHS_CACHE
    everything = load_qm9()
    if cache.exists():
        graphs = MolSet.load(cache)
        with np.load(cache, allow_pickle=False) as z:
            failed = dict(zip(z["failed_ids"].tolist(), z["failed_reasons"].tolist()))
    else:
        graphs, by_position = with_graphs(everything)
        failed = {int(everything.ids[i]): reason for i, reason in by_position.items()}
        graphs.save(cache, extra={"failed_ids": np.array(list(failed), np.int64),
                                  "failed_reasons": np.array(list(failed.values()), dtype=str)})  # fmt: skip
    if split is None:
        return graphs, failed
    wanted = everything.ids[split_indices()[split]].tolist()  # in the split's order, as load_qm9 gives it
    position = {gdb: i for i, gdb in enumerate(graphs.ids.tolist())}
    keep = [position[gdb] for gdb in wanted if gdb in position]
    return graphs.subset(keep), {gdb: failed[gdb] for gdb in wanted if gdb in failed}
