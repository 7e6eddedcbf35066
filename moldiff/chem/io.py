"""Molecule files: SDF and multi-molecule XYZ, read into a MolSet and written atomically.

Readers never drop a molecule silently: each one that cannot be represented (unparsable block,
no 3D coordinates, NaN or infinite coordinates, an element moldiff does not know) is returned in
``rejects`` as ``(index in the file, reason)``. A file that cannot be read at all (missing, empty,
not SDF/XYZ, no molecule readable) raises :class:`MoldiffError` with a one-line message.

Properties are written as formatted strings (``f"{x:.3f}"``), never as RDKit doubles, which print
as ``0.40000000000000002``.
"""

from __future__ import annotations

import io
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from rdkit import Chem

from moldiff.chem.bonds import molset_bonds
from moldiff.chem.rdmol import mol_from_edges, rdkit_errors, rdkit_quiet
from moldiff.data.elements import SYMBOLS, atomic_number
from moldiff.data.molset import MolSet
from moldiff.errors import MoldiffError
from moldiff.paths import atomic_write_text

Rejects = list[tuple[int, str]]
SDF_SUFFIXES = (".sdf", ".sd", ".mol")
XYZ_SUFFIXES = (".xyz",)


# ----------------------------------------------------------------------------- formatting
def format_value(value: object) -> str:
    """A property value as text: reals with 3 decimals (tiny ones in exponent form), else str()."""
    if isinstance(value, numbers.Real) and not isinstance(value, (numbers.Integral, bool)):
        x = float(value)
        if x != 0.0 and math.isfinite(x) and abs(x) < 1e-3:
            return f"{x:.4e}"
        return f"{x:.3f}"
    return str(value)


def _property_rows(n: int, molset_props: Mapping[str, np.ndarray], extra: Mapping[str, Sequence] | None):
    columns = dict(molset_props)
    for name, values in (extra or {}).items():
        if len(values) != n:
            raise ValueError(f"property {name!r} has {len(values)} values for {n} molecules")
        columns[name] = values
    return [{name: format_value(values[i]) for name, values in columns.items()} for i in range(n)]


# ----------------------------------------------------------------------------- writing
def write_sdf(
    path: str | Path,
    molecules: MolSet | Sequence[Chem.Mol],
    properties: Mapping[str, Sequence] | None = None,
    *,
    names: Sequence[str] | None = None,
    bonds: bool = True,
    bond_source: str = "model",
) -> None:
    """Write molecules to an SDF file atomically.

    Args:
        path: destination.
        molecules: a MolSet (M molecules; its formal charges and properties are written, and with
            ``bonds`` its own bonds, or without any the EDM rule's) or RDKit molecules with a conformer.
        properties: extra per-molecule columns, name -> M values (formatted with
            :func:`format_value`).
        names: optional M title lines (default: the MolSet ids).
        bonds: write the bonds of a MolSet (False: atoms only); an SD property ``bond_source`` says
            where they came from (:func:`bonds_to_write`).
        bond_source: what the MolSet's own bonds are called in ``bond_source`` (a generator's: model).
    """
    n = len(molecules)
    if names is not None and len(names) != n:
        raise ValueError(f"{len(names)} names for {n} molecules")
    if isinstance(molecules, MolSet):
        graph = bonds_to_write(molecules, bond_source) if bonds else None
        mols = _molset_to_mols(molecules, graph)
        if graph is not None:
            properties = {**(properties or {}), "bond_source": [graph[2]] * n}
    else:
        mols = list(molecules)
    rows = _property_rows(n, molecules.properties if isinstance(molecules, MolSet) else {}, properties)
    default_names = [str(i) for i in molecules.ids] if isinstance(molecules, MolSet) else None
    buffer = io.StringIO()
    with rdkit_quiet():
        writer = Chem.SDWriter(buffer)
        writer.SetKekulize(False)
        writer.SetForceV3000(_beyond_v2000(mols))
        for i, mol in enumerate(mols):
            mol = Chem.Mol(mol)
            if names is not None or default_names is not None:
                mol.SetProp("_Name", (names or default_names)[i])
            for key, text in rows[i].items():
                mol.SetProp(key, text)
            writer.write(mol)
        writer.close()
    atomic_write_text(path, buffer.getvalue())


# V2000 atom lines hold coordinates in a 10-character field ("%10.4f"): a diverged sample with
# |x| >= 1e5 Å would make the file unreadable, so such files are written as V3000 (free format).
V2000_LIMIT = 99_999.0


def _beyond_v2000(mols: Sequence[Chem.Mol]) -> bool:
    for mol in mols:
        if mol.GetNumConformers() and np.abs(mol.GetConformer().GetPositions()).max(initial=0.0) >= V2000_LIMIT:
            return True
    return False


EDM_BOND_SOURCE = "edm-distance-table"  # bonds of a coordinate-only set: the EDM distance rule


def bonds_to_write(molset: MolSet, own: str = "model") -> tuple[np.ndarray, np.ndarray, str]:
    """The bonds an SDF gets for ``molset`` and where they came from: the set's own graph (``own``:
    a graph model's bonds) if it carries one, else the EDM distance rule on its coordinates.

    Returns:
        (bonds (E, 3) as (i, j, order) local to their molecule, bond_ptr (M + 1,), source).
    """
    if molset.has_bonds:
        return molset.bonds, molset.bond_ptr, own
    _, edges, orders = molset_bonds(molset)  # global atom indices, molecule by molecule
    eptr = np.searchsorted(edges[:, 0], molset.ptr)
    local = edges - np.repeat(molset.ptr[:-1], np.diff(eptr))[:, None]
    return np.column_stack([local, orders]).astype(np.int64).reshape(-1, 3), eptr.astype(np.int64), EDM_BOND_SOURCE


def _molset_to_mols(molset: MolSet, graph: tuple[np.ndarray, np.ndarray, str] | None) -> list[Chem.Mol]:
    mols = []
    for i in range(len(molset)):
        a, b = int(molset.ptr[i]), int(molset.ptr[i + 1])
        e, o = [], []
        if graph is not None:
            rows = graph[0][graph[1][i] : graph[1][i + 1]]
            e, o = rows[:, :2].tolist(), rows[:, 2].tolist()
        mols.append(
            mol_from_edges(molset.atomic_numbers[a:b].tolist(), e, o, molset.positions[a:b], molset.charges[a:b])
        )
    return mols


def write_xyz(path: str | Path, molset: MolSet, comments: Sequence[str] | None = None) -> None:
    """Write a multi-molecule XYZ file atomically: per molecule a count line, a comment line and
    one ``symbol x y z`` line per atom.

    The default comment holds the molecule's properties as ``name=value`` pairs, which
    :func:`read_xyz` reads back.
    """
    if comments is not None and len(comments) != len(molset):
        raise ValueError(f"{len(comments)} comments for {len(molset)} molecules")
    rows = _property_rows(len(molset), molset.properties, None)
    lines = []
    for i in range(len(molset)):
        z, pos = molset.molecule(i)
        lines.append(str(len(z)))
        if comments is not None:
            comment = " ".join(str(comments[i]).splitlines())
        else:
            comment = " ".join(f"{k}={v}" for k, v in rows[i].items()) or f"molecule {molset.ids[i]}"
        lines.append(comment)
        for a, (x, y, w) in zip(z.tolist(), pos.tolist()):
            lines.append(f"{SYMBOLS[a]:<2s} {x:12.6f} {y:12.6f} {w:12.6f}")
    atomic_write_text(path, "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- reading
def read_molecules(path: str | Path) -> tuple[MolSet, Rejects]:
    """Read an SDF (``.sdf``, ``.sd``, ``.mol``) or XYZ (``.xyz``) file, chosen by extension."""
    suffix = Path(path).suffix.lower()
    if suffix in SDF_SUFFIXES:
        return read_sdf(path)
    if suffix in XYZ_SUFFIXES:
        return read_xyz(path)
    known = ", ".join(SDF_SUFFIXES + XYZ_SUFFIXES)
    raise MoldiffError(f"cannot tell the format of {path}: unknown extension {suffix or '(none)'!r} (expected {known})")


def _read_text(path: str | Path, kind: str) -> str:
    path = Path(path)
    if not path.exists():
        raise MoldiffError(f"no such file: {path}")
    if path.is_dir():
        raise MoldiffError(f"{path} is a directory, not a {kind} file")
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise MoldiffError(f"cannot read {path}: {exc.strerror}") from None
    if not text.strip():
        raise MoldiffError(f"{path} is empty")
    return text


def read_sdf(path: str | Path, *, require_bonds: bool = False) -> tuple[MolSet, Rejects]:
    """Read every molecule of an SDF file (hydrogens kept, no sanitization, formal charges kept).

    The bond block is kept as written, in Kekulé orders (aromatic bonds are kekulized): the MolSet
    carries ``bonds`` when every accepted molecule's bonds can be stated so. A molecule whose bonds
    cannot (aromatic bonds that do not kekulize, query or dative bonds) is read without them, and
    the set then carries none, unless ``require_bonds``, which rejects that molecule instead.

    Args:
        path: the SDF file.
        require_bonds: reject molecules whose bonds have no Kekulé form (for judging the graph as
            written).

    Returns:
        (MolSet of the accepted molecules, rejects). ``MolSet.ids`` holds each molecule's 0-based
        position in the file; numeric SD properties become ``MolSet.properties`` (NaN where a
        molecule lacks one; properties with non-numeric values are skipped).
    """
    text = _read_text(path, "SDF")
    supplier = Chem.SDMolSupplier()
    supplier.SetData(text, sanitize=False, removeHs=False, strictParsing=True)
    n_blocks = len(supplier)
    if n_blocks == 0:
        raise MoldiffError(f"{path} is not an SDF file: no molecule block found")
    atoms, rejects, props, graphs = [], [], [], []
    for index in range(n_blocks):
        with rdkit_errors() as messages:
            mol = supplier[index]
        if mol is None:
            rejects.append((index, "unparsable block" + (f": {messages[0]}" if messages else "")))
            continue
        parsed = _atoms_of(mol)
        if isinstance(parsed, str):
            rejects.append((index, parsed))
            continue
        bonds = kekule_bonds(mol)
        if isinstance(bonds, str) and require_bonds:
            rejects.append((index, bonds))
            continue
        atoms.append((index, *parsed))
        graphs.append(bonds)
        props.append({k: mol.GetProp(k) for k in mol.GetPropNames()})
    molset = _assemble(path, "SDF", atoms, props, rejects)
    if all(not isinstance(b, str) for b in graphs):
        molset.bonds = np.concatenate(graphs).astype(np.int64).reshape(-1, 3)
        molset.bond_ptr = np.concatenate([[0], np.cumsum([len(b) for b in graphs])]).astype(np.int64)
        molset._check_bonds(len(molset))
    return molset, rejects


_KEKULE_ORDER = {Chem.BondType.SINGLE: 1, Chem.BondType.DOUBLE: 2, Chem.BondType.TRIPLE: 3}


def kekule_bonds(mol: Chem.Mol) -> np.ndarray | str:
    """(b, 3) bonds ``(i, j, order)`` of a parsed block, ``i < j``, Kekulé orders 1-3, sorted; or
    why its bonds have no such form."""
    if any(b.GetBondType() == Chem.BondType.AROMATIC for b in mol.GetBonds()):
        mol = Chem.Mol(mol)
        try:
            with rdkit_quiet():
                mol.UpdatePropertyCache(strict=False)
                Chem.Kekulize(mol, clearAromaticFlags=True)
        except Exception as exc:  # RDKit raises several types
            return f"aromatic bonds without a Kekulé form: {' '.join(str(exc).split()) or type(exc).__name__}"
    rows = []
    for bond in mol.GetBonds():
        order = _KEKULE_ORDER.get(bond.GetBondType())
        if bond.GetBondType() == Chem.BondType.AROMATIC:  # RDKit leaves an aromatic bond outside a ring as it is
            return f"aromatic bonds without a Kekulé form: bond {bond.GetIdx() + 1} is not in a ring"
        if order is None:
            return f"bond {bond.GetIdx() + 1} has type {bond.GetBondType()}, not single, double, triple or aromatic"
        i, j = sorted((bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()))
        rows.append((i, j, order))
    return np.array(sorted(rows), dtype=np.int64).reshape(-1, 3)


def _atoms_of(mol: Chem.Mol) -> tuple[list[int], np.ndarray, list[int]] | str:
    """(atomic numbers, positions (n, 3), charges) of a parsed block, or the reason to reject it."""
    if mol.GetNumAtoms() == 0:
        return "no atoms"
    z = [a.GetAtomicNum() for a in mol.GetAtoms()]
    unknown = sorted({a.GetSymbol() for a in mol.GetAtoms() if not 0 < a.GetAtomicNum() < len(SYMBOLS)})
    if unknown:
        return f"unsupported element {', '.join(unknown)}"
    if mol.GetNumConformers() == 0:
        return "no coordinates"
    conf = mol.GetConformer()
    pos = np.asarray(conf.GetPositions(), dtype=np.float64)
    if not np.isfinite(pos).all():
        return "non-finite (NaN or infinite) coordinates"
    if len(z) > 1 and not pos.any():
        return "no 3D coordinates (all coordinates are zero)"
    if not conf.Is3D() and not pos[:, 2].any():
        return "no 3D coordinates (2D block, all z = 0)"
    return z, pos, [a.GetFormalCharge() for a in mol.GetAtoms()]


def read_xyz(path: str | Path) -> tuple[MolSet, Rejects]:
    """Read a (multi-molecule) XYZ file: count line, comment line, ``symbol x y z`` lines, repeated.

    Extra columns after ``x y z`` are ignored; a symbol may also be an atomic number. ``name=value``
    pairs with numeric values in comment lines become ``MolSet.properties``.

    Returns:
        (MolSet of the accepted molecules, rejects); ``MolSet.ids`` holds each molecule's 0-based
        position in the file.
    """
    lines = _read_text(path, "XYZ").splitlines()
    atoms, props, rejects = [], [], []
    row, index = 0, 0
    while row < len(lines):
        if not lines[row].strip():
            row += 1
            continue
        count = _atom_count(lines[row])
        if count is None:
            problem = f"line {row + 1}: expected an atom count, got {lines[row].strip()[:40]!r}"
            if index == 0:
                raise MoldiffError(f"{path} is not an XYZ file: {problem}")
            rejects.append((index, f"{problem}; rest of file skipped"))
            break
        block = lines[row + 2 : row + 2 + count]
        if len(block) < count or row + 1 >= len(lines):
            found = f"{len(block)} atom lines found"
            rejects.append((index, f"truncated: {count} atoms announced on line {row + 1}, {found}"))
            break
        parsed = _parse_xyz_atoms(block, row + 3)
        if isinstance(parsed, str):
            rejects.append((index, parsed))
        else:
            atoms.append((index, *parsed, [0] * count))
            props.append(dict(re.findall(r"([A-Za-z_][\w.\-]*)=(\S+)", lines[row + 1])))
        row += 2 + count
        index += 1
    return _assemble(path, "XYZ", atoms, props, rejects), rejects


def _atom_count(line: str) -> int | None:
    tokens = line.split()
    if len(tokens) != 1 or not tokens[0].isdigit():
        return None
    return int(tokens[0])


def _parse_xyz_atoms(block: list[str], first_line: int) -> tuple[list[int], np.ndarray] | str:
    """(atomic numbers, positions (n, 3)) of XYZ atom lines, or the reason to reject them."""
    if not block:
        return "no atoms"
    z, pos = [], []
    for k, line in enumerate(block):
        tokens = line.split()
        if len(tokens) < 4:
            return f"line {first_line + k}: expected 'symbol x y z', got {line.strip()[:40]!r}"
        try:
            z.append(int(tokens[0]) if tokens[0].isdigit() else atomic_number(tokens[0]))
            pos.append([float(t) for t in tokens[1:4]])
        except ValueError:
            return f"line {first_line + k}: unreadable coordinates {' '.join(tokens[1:4])!r}"
        except MoldiffError:
            return f"line {first_line + k}: unknown element {tokens[0]!r}"
        if not 0 < z[-1] < len(SYMBOLS):
            return f"line {first_line + k}: unsupported atomic number {z[-1]}"
    positions = np.asarray(pos, dtype=np.float64)
    if not np.isfinite(positions).all():
        return "non-finite (NaN or infinite) coordinates"
    if len(z) > 1 and not positions.any():
        return "no 3D coordinates (all coordinates are zero)"
    return z, positions


def _assemble(path, kind: str, atoms: list, props: list[dict[str, str]], rejects: Rejects) -> MolSet:
    """Pack accepted molecules ``(index, z, positions, charges)`` into a MolSet."""
    if not atoms:
        first = f"; first problem: molecule {rejects[0][0]}: {rejects[0][1]}" if rejects else ""
        raise MoldiffError(f"no molecule could be read from {kind} file {path} ({len(rejects)} rejected{first})")
    counts = np.array([len(z) for _, z, _, _ in atoms], dtype=np.int64)
    return MolSet(
        atomic_numbers=np.concatenate([z for _, z, _, _ in atoms]),
        positions=np.concatenate([p for _, _, p, _ in atoms]),
        ptr=np.concatenate([[0], np.cumsum(counts)]),
        charges=np.concatenate([c for _, _, _, c in atoms]),
        ids=np.array([i for i, _, _, _ in atoms], dtype=np.int64),
        properties=_numeric_properties(props),
    )


def _numeric_properties(props: list[dict[str, str]]) -> dict[str, np.ndarray]:
    """Columns whose every present value parses as a number (NaN where absent)."""
    names = list(dict.fromkeys(k for p in props for k in p))
    out = {}
    for name in names:
        column = []
        for p in props:
            text = p.get(name, "").strip()
            try:
                column.append(float(text) if text else math.nan)
            except ValueError:
                break
        else:
            out[name] = np.array(column, dtype=np.float64)
    return out
