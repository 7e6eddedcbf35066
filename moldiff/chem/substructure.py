"""Scaffolds for constrained generation: read a fragment (an SDF block or a SMILES embedded in 3D)
into atoms, coordinates and a query graph, and check whether generated molecules contain it.

Two checks per generated molecule (its bonds inferred with the EDM rule):

* ``has_scaffold``: the scaffold's graph (elements and connectivity, bond orders ignored) is a
  subgraph of the molecule's bond graph. It applies to every molecule, valid or not, and does not
  depend on how aromaticity is perceived.
* ``scaffold_exact``: RDKit substructure match with bond orders (aromaticity-aware) on the
  sanitized molecule; False for molecules RDKit cannot sanitize.

The EDM rule reads real aromatic rings poorly (it has no aromatic bond lengths), so
:func:`scaffold_in` also checks molecules whose bonds came from elsewhere, e.g. RDKit's xyz2mol.

Hydrogens of the scaffold are dropped unless asked for: a model with explicit hydrogens then adds
them itself, and the scaffold's open valences stay open for growth. A SMILES with ``*`` attachment
points keeps every hydrogen but those, so growth happens only at the marked atoms.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from rdkit import Chem

from moldiff.chem.bonds import molset_bonds
from moldiff.chem.conformers import DEFAULT_SEED, embed_mol, smiles_to_3d
from moldiff.chem.io import read_sdf
from moldiff.chem.rdmol import mol_from_edges, rdkit_quiet
from moldiff.data.molset import MolSet
from moldiff.errors import MoldiffError

SCAFFOLD_FILES = (".sdf", ".sd", ".mol")  # what a scaffold file may be called


@dataclass(frozen=True)
class Fragment:
    """A scaffold: atomic numbers (k,), positions (k, 3) in Å, its query graph and a SMILES;
    ``open_hydrogens``: the hydrogens its kept atoms carry but the fragment leaves out (each becomes
    a hydrogen or a substituent, so a molecule needs at least k + open_hydrogens atoms), and
    ``open_valence`` (k,) how many of them each kept atom carries (None where unknown: an SDF block
    RDKit cannot read as a molecule). ``charges`` (k,) and ``bond_orders`` (k, k) are the kept atoms'
    formal charges and the Kekulé bond orders among them (0: no bond), for models that generate the
    bond graph (None where RDKit cannot kekulize the scaffold)."""

    atomic_numbers: np.ndarray
    positions: np.ndarray
    query: Chem.Mol
    smiles: str
    open_hydrogens: int = 0
    open_valence: np.ndarray | None = None
    charges: np.ndarray | None = None
    bond_orders: np.ndarray | None = None

    def heavy_atoms(self) -> Fragment:
        """The fragment without its hydrogen atoms, for a model of heavy atoms: the hydrogens it
        kept stay hydrogens (RDKit adds them back), so each heavy atom's open valence is unchanged."""
        keep = np.flatnonzero(self.atomic_numbers != 1)
        if len(keep) == len(self.atomic_numbers):
            return self
        if len(keep) == 0:
            raise MoldiffError("the scaffold has no heavy atom")
        def pick(a):
            return None if a is None else a[keep].copy()

        orders = None if self.bond_orders is None else self.bond_orders[np.ix_(keep, keep)].copy()
        return replace(self, atomic_numbers=self.atomic_numbers[keep].copy(), positions=self.positions[keep].copy(),
                       open_valence=pick(self.open_valence), charges=pick(self.charges), bond_orders=orders)  # fmt: skip


def _dropped_hydrogens(mol: Chem.Mol, keep: list[int]) -> np.ndarray:
    """(k,) per kept atom: its hydrogen neighbours that are not kept, plus its implicit hydrogens."""
    kept = set(keep)
    return np.array([sum(1 for n in mol.GetAtomWithIdx(i).GetNeighbors() if n.GetAtomicNum() == 1 and n.GetIdx() not in kept)
                     + mol.GetAtomWithIdx(i).GetNumImplicitHs() for i in keep], dtype=np.int64)  # fmt: skip


def _kekule_graph(mol: Chem.Mol, keep: list[int]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(charges (k,), Kekulé bond orders (k, k)) of atoms ``keep`` of ``mol``, read after sanitizing
    and kekulizing the whole molecule (so an aromatic ring cut from its substituents keeps its
    alternation); (None, None) if RDKit rejects it or a bond is not single, double or triple."""
    mol = Chem.Mol(mol)
    with rdkit_quiet():
        try:
            Chem.SanitizeMol(mol)
            Chem.Kekulize(mol, clearAromaticFlags=True)
        except Exception:
            return None, None
    where = {atom: row for row, atom in enumerate(keep)}
    orders = np.zeros((len(keep), len(keep)), dtype=np.int64)
    for bond in mol.GetBonds():
        i, j = where.get(bond.GetBeginAtomIdx()), where.get(bond.GetEndAtomIdx())
        if i is None or j is None:
            continue
        order = bond.GetBondTypeAsDouble()
        if order not in (1.0, 2.0, 3.0):
            return None, None
        orders[i, j] = orders[j, i] = int(order)
    charges = np.array([mol.GetAtomWithIdx(i).GetFormalCharge() for i in keep], dtype=np.int64)
    return charges, orders


def _written_graph(mol: Chem.Mol, keep: list[int]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """As :func:`_kekule_graph`, but a file's bonds among ``keep`` as written where they are all
    single, double or triple (a Kekulé ring keeps the file's alternation)."""
    kept = set(keep)
    inside = [b for b in mol.GetBonds() if b.GetBeginAtomIdx() in kept and b.GetEndAtomIdx() in kept]
    if any(b.GetBondTypeAsDouble() not in (1.0, 2.0, 3.0) or b.GetIsAromatic() for b in inside):
        return _kekule_graph(mol, keep)
    if _sanitized_with_hs(mol) is None:
        return None, None
    where = {atom: row for row, atom in enumerate(keep)}
    orders = np.zeros((len(keep), len(keep)), dtype=np.int64)
    for bond in inside:
        i, j = where[bond.GetBeginAtomIdx()], where[bond.GetEndAtomIdx()]
        orders[i, j] = orders[j, i] = int(bond.GetBondTypeAsDouble())
    return np.array([mol.GetAtomWithIdx(i).GetFormalCharge() for i in keep], dtype=np.int64), orders


def _keep_atoms(mol: Chem.Mol, keep: list[int]) -> Chem.Mol:
    """The sub-molecule of atoms ``keep`` (in that order) with the bonds among them."""
    rw = Chem.RWMol(mol)
    for idx in sorted(set(range(mol.GetNumAtoms())) - set(keep), reverse=True):
        rw.RemoveAtom(idx)
    return rw.GetMol()


def _smiles_of(query: Chem.Mol) -> str:
    with rdkit_quiet():
        try:
            return Chem.MolToSmiles(query)
        except Exception:
            return ""


def fragment_from_sdf(path: str | Path, *, hydrogens: bool = False) -> Fragment:
    """The first molecule of an SDF file as a scaffold (its bonds from the file, or inferred with
    the EDM rule when the block has none)."""
    molecules, _ = read_sdf(path)  # missing, empty or unreadable files raise a one-line MoldiffError
    first = molecules.subset([0])
    z, pos = first.molecule(0)
    supplier = Chem.SDMolSupplier()
    supplier.SetData(Path(path).read_bytes().decode("utf-8", errors="replace"), sanitize=False, removeHs=False)
    with rdkit_quiet():
        mol = supplier[int(first.ids[0])]
    if mol.GetNumBonds() == 0 and len(z) > 1:
        _, edges, orders = molset_bonds(first)
        mol = mol_from_edges(z.tolist(), edges.tolist(), orders.tolist(), pos)
    keep = [i for i, a in enumerate(z.tolist()) if hydrogens or a != 1]
    if not keep:
        raise MoldiffError(f"the scaffold in {path} has no heavy atom (keep its hydrogens to use it)")
    query = _keep_atoms(mol, keep)
    dropped = len(z) - len(keep)  # hydrogens of the file (all of them on kept atoms)
    checked = _sanitized_with_hs(mol)
    open_valence = None if checked is None else _dropped_hydrogens(checked, keep)
    if open_valence is not None:
        dropped = int(open_valence.sum())  # also the implicit hydrogens of a heavy-atom block
    charges, orders = _written_graph(mol, keep)
    return Fragment(z[keep].copy(), pos[keep].astype(np.float64), query, _smiles_of(query), dropped, open_valence,
                    charges, orders)  # fmt: skip


def _sanitized_with_hs(mol: Chem.Mol) -> Chem.Mol | None:
    """A sanitized copy with the file's hydrogens kept as atoms, or None if RDKit rejects it."""
    mol = Chem.Mol(mol)
    with rdkit_quiet():
        try:
            Chem.SanitizeMol(mol)
        except Exception:
            return None
    return mol


def fragment_from_smiles(smiles: str, *, hydrogens: bool = False, seed: int = DEFAULT_SEED) -> Fragment:
    """A SMILES scaffold embedded in 3D (ETKDG + force field, :func:`smiles_to_3d`).

    ``*`` atoms mark attachment points: the scaffold then keeps every hydrogen except one in the
    place of each ``*``, so the molecule grows there and nowhere else (``hydrogens`` is implied)."""
    with rdkit_quiet():
        parsed = Chem.MolFromSmiles(smiles.strip()) if smiles and smiles.strip() else None
    if parsed is not None and any(a.GetAtomicNum() == 0 for a in parsed.GetAtoms()):
        return _fragment_with_attachments(smiles, parsed, seed)
    conf = smiles_to_3d(smiles, seed=seed)
    if isinstance(conf, str):
        raise MoldiffError(f"scaffold SMILES {smiles!r}: {conf}")
    with rdkit_quiet():
        query = Chem.MolFromSmiles(smiles.strip())
        heavy = query
        if hydrogens:
            query = Chem.AddHs(query)
    # AddHs appends hydrogens after the heavy atoms, in the SMILES' atom order
    keep = [i for i, a in enumerate(conf.atomic_numbers.tolist()) if hydrogens or a != 1]
    dropped = len(conf.atomic_numbers) - len(keep)
    open_valence = np.zeros(len(keep), dtype=np.int64) if hydrogens else \
        np.array([a.GetTotalNumHs() for a in heavy.GetAtoms()], dtype=np.int64)  # fmt: skip
    with rdkit_quiet():
        charges, orders = _kekule_graph(Chem.AddHs(heavy), keep)  # the embedded molecule's atom order
    return Fragment(conf.atomic_numbers[keep].copy(), conf.positions[keep].copy(), query, conf.smiles, dropped,
                    open_valence, charges, orders)  # fmt: skip


def _fragment_with_attachments(smiles: str, parsed: Chem.Mol, seed: int) -> Fragment:
    """Embed with a hydrogen in place of each ``*``, then leave those hydrogens out."""
    attachments = [a.GetIdx() for a in parsed.GetAtoms() if a.GetAtomicNum() == 0]
    for idx in attachments:
        atom = parsed.GetAtomWithIdx(idx)
        if atom.GetDegree() != 1 or any(b.GetBondType() != Chem.BondType.SINGLE for b in atom.GetBonds()):
            raise MoldiffError(f"scaffold SMILES {smiles!r}: each * must hang on one atom by a single bond")
    capped = Chem.RWMol(parsed)
    for idx in attachments:
        capped.GetAtomWithIdx(idx).SetAtomicNum(1)
    with rdkit_quiet():
        try:
            Chem.SanitizeMol(capped)
        except Exception as exc:
            raise MoldiffError(f"scaffold SMILES {smiles!r}: {' '.join(str(exc).split())}") from None
        capped = Chem.AddHs(capped)  # the capping hydrogens keep their indices; the rest are appended
    conf = embed_mol(capped, seed=seed)
    if isinstance(conf, str):
        raise MoldiffError(f"scaffold SMILES {smiles!r}: {conf}")
    keep = [i for i in range(capped.GetNumAtoms()) if i not in attachments]
    query = Chem.RWMol(parsed)
    for idx in sorted(attachments, reverse=True):
        query.RemoveAtom(idx)
    query = query.GetMol()
    sites = [capped.GetAtomWithIdx(idx).GetNeighbors()[0].GetIdx() for idx in attachments]
    open_valence = np.array([sites.count(i) for i in keep], dtype=np.int64)
    charges, orders = _kekule_graph(capped, keep)
    return Fragment(conf.atomic_numbers[keep].copy(), conf.positions[keep].copy(), query, _smiles_of(query),
                    open_hydrogens=len(attachments), open_valence=open_valence, charges=charges, bond_orders=orders)


def _topology(mol: Chem.Mol) -> Chem.Mol:
    """The same graph with every bond single and no aromatic flags (elements + connectivity)."""
    rw = Chem.RWMol(mol)
    for bond in rw.GetBonds():
        bond.SetBondType(Chem.BondType.SINGLE)
        bond.SetIsAromatic(False)
    for atom in rw.GetAtoms():
        atom.SetIsAromatic(False)
    return rw.GetMol()


def _sanitized(mol: Chem.Mol) -> Chem.Mol | None:
    mol = Chem.Mol(mol)
    try:
        Chem.SanitizeMol(mol)
        return Chem.RemoveHs(mol, sanitize=False)
    except Exception:
        return None


def scaffold_matches(molecules: MolSet, query: Chem.Mol) -> tuple[list[bool], list[bool]]:
    """(has_scaffold, scaffold_exact) for every molecule (see the module doc); molecules that carry
    their own bonds and charges (a graph model's) are read with those instead of the EDM rule."""
    if molecules.has_bonds:
        return _matches(molecules, query, _own_graphs(molecules))
    _, edges, orders = molset_bonds(molecules)
    eptr = np.searchsorted(edges[:, 0], molecules.ptr)
    graphs = []
    for i in range(len(molecules)):
        a = int(molecules.ptr[i])
        graphs.append(((edges[eptr[i] : eptr[i + 1]] - a).tolist(), orders[eptr[i] : eptr[i + 1]].tolist(), None))
    return _matches(molecules, query, graphs)


def _own_graphs(molecules: MolSet) -> list[tuple[list, list, np.ndarray]]:
    """(edges, orders, charges) of every molecule from its own graph."""
    out = []
    for i in range(len(molecules)):
        rows = molecules.molecule_bonds(i)
        out.append((rows[:, :2].tolist(), rows[:, 2].tolist(), molecules.charges[molecules.ptr[i] : molecules.ptr[i + 1]]))
    return out


def _matches(molecules: MolSet, query: Chem.Mol, graphs) -> tuple[list[bool], list[bool]]:
    """(has_scaffold, scaffold_exact) of molecules with the given (edges, orders, charges) each."""
    with rdkit_quiet():
        query_topology = _topology(query)
        query_exact = _sanitized(query)
        has, exact = [], []
        for i, (e, o, q) in enumerate(graphs):
            a, b = int(molecules.ptr[i]), int(molecules.ptr[i + 1])
            mol = mol_from_edges(molecules.atomic_numbers[a:b].tolist(), e, o, charges=q)
            found = _topology(mol).HasSubstructMatch(query_topology)
            has.append(bool(found))
            target = _sanitized(mol) if found else None
            if target is None or query_exact is None:
                exact.append(False)
            else:
                exact.append(bool(target.HasSubstructMatch(query_exact)))
    return has, exact


def scaffold_in(molecules: list[Chem.Mol | None], query: Chem.Mol) -> list[bool]:
    """For RDKit molecules however their bonds were found (None: unreadable), whether each contains
    the scaffold with its bond orders (an aromatic query matches only an aromatic ring)."""
    with rdkit_quiet():
        query_exact = _sanitized(query)
        return [m is not None and query_exact is not None and m.HasSubstructMatch(query_exact) for m in molecules]
