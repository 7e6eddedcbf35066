"""SMILES -> one 3D conformer with explicit hydrogens (RDKit ETKDG v3, then MMFF94 or UFF).

Every molecule is embedded with the same fixed seed, so a molecule's conformer depends only on its
SMILES and the seed, not on its position in the input or on the number of worker processes.
Failures are returned as a one-line reason, never raised, so a bad row costs one reject.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdDistGeom
from rdkit.Chem import rdForceFieldHelpers as ff

from moldiff.chem.rdmol import rdkit_quiet

DEFAULT_SEED = 42
EMBED_TIMEOUT_S = 60  # ETKDG can stall on large macrocycles; give up on such a molecule instead
OPTIMIZE_ITERS = 2000
_CHUNK = 16  # molecules per pool task: amortises inter-process overhead, keeps the progress bar live

Screen = Callable[[np.ndarray], "str | None"]


@dataclass(frozen=True)
class Conformer:
    """One embedded molecule. ``forcefield`` is ``"MMFF94"``, ``"UFF"`` (MMFF had no parameters) or
    ``"none"`` (neither had: ETKDG geometry as is).

    Shapes: atomic_numbers (n,) int64, positions (n, 3) float64 Å, charges (n,) int64.
    """

    atomic_numbers: np.ndarray
    positions: np.ndarray
    charges: np.ndarray
    smiles: str
    forcefield: str


def smiles_to_3d(smiles: str, *, seed: int = DEFAULT_SEED, screen: Screen | None = None) -> Conformer | str:
    """Embed one SMILES in 3D with explicit hydrogens and relax it with a force field.

    Args:
        smiles: the input SMILES.
        seed: ETKDG random seed (the same for every molecule).
        screen: optional check on the atomic numbers with hydrogens added, run *before* embedding
            so molecules that will be rejected anyway cost no embedding; returns a reason or None.

    Returns:
        A :class:`Conformer`, or a one-line reason: ``"empty SMILES"``, ``"unparsable SMILES"``,
        the screen's reason, ``"conformer embedding failed"`` (ETKDG found no geometry, also
        when it timed out), ``"conformer generation failed: ..."`` (RDKit raised).
    """
    if not smiles or not smiles.strip():
        return "empty SMILES"
    with rdkit_quiet():
        mol = Chem.MolFromSmiles(smiles.strip())
        if mol is None:
            return "unparsable SMILES"
        canonical = Chem.MolToSmiles(mol)
        mol = Chem.AddHs(mol)
        z = np.array([a.GetAtomicNum() for a in mol.GetAtoms()], dtype=np.int64)
        if screen is not None and (reason := screen(z)) is not None:
            return reason
    return embed_mol(mol, seed=seed, smiles=canonical)


def embed_mol(mol: Chem.Mol, *, seed: int = DEFAULT_SEED, smiles: str = "") -> Conformer | str:
    """Embed a molecule whose hydrogens are all explicit atoms (ETKDG, then a force field); the
    conformer keeps its atom order. Returns a :class:`Conformer` or the reason it failed."""
    mol = Chem.Mol(mol)
    with rdkit_quiet():
        try:
            if not _embed(mol, seed):
                return "conformer embedding failed"
            forcefield = _relax(mol)
        except Exception as exc:  # RDKit raises several types on exotic input; cost one molecule only
            return f"conformer generation failed: {' '.join(str(exc).split()) or type(exc).__name__}"
    return Conformer(
        atomic_numbers=np.array([a.GetAtomicNum() for a in mol.GetAtoms()], dtype=np.int64),
        positions=np.asarray(mol.GetConformer().GetPositions(), dtype=np.float64),
        charges=np.array([a.GetFormalCharge() for a in mol.GetAtoms()], dtype=np.int64),
        smiles=smiles,
        forcefield=forcefield,
    )


def _embed(mol, seed: int) -> bool:
    """ETKDG v3; on failure retry once from random coordinates (helps strained and large rings)."""
    params = rdDistGeom.ETKDGv3()
    params.randomSeed = seed
    params.timeout = EMBED_TIMEOUT_S
    params.numThreads = 1  # parallelism comes from the process pool
    if rdDistGeom.EmbedMolecule(mol, params) == 0:
        return True
    params.useRandomCoords = True
    return rdDistGeom.EmbedMolecule(mol, params) == 0


def _relax(mol) -> str:
    """MMFF94 when it has parameters for every atom, else UFF, else leave the ETKDG geometry."""
    if ff.MMFFHasAllMoleculeParams(mol):
        ff.MMFFOptimizeMolecule(mol, maxIters=OPTIMIZE_ITERS)
        return "MMFF94"
    if ff.UFFHasAllMoleculeParams(mol):
        ff.UFFOptimizeMolecule(mol, maxIters=OPTIMIZE_ITERS)
        return "UFF"
    return "none"


def _embed_chunk(smiles: Sequence[str], seed: int, screen: Screen | None) -> list[Conformer | str]:
    return [smiles_to_3d(s, seed=seed, screen=screen) for s in smiles]


def embed_many(
    smiles: Sequence[str],
    *,
    workers: int | None = None,
    seed: int = DEFAULT_SEED,
    screen: Screen | None = None,
    progress: bool | None = None,
) -> list[Conformer | str]:
    """:func:`smiles_to_3d` over many SMILES in a process pool; results in input order.

    Args:
        smiles: the input SMILES, (M,).
        workers: processes (default ``os.cpu_count()``); 1 runs in this process.
        seed: ETKDG seed, shared by all molecules (results do not depend on ``workers``).
        screen: see :func:`smiles_to_3d`; must be picklable (a module-level function or a
            ``functools.partial`` of one) when ``workers > 1``.
        progress: show a progress bar on stderr; ``None`` shows it only on a terminal.

    Returns:
        (M,) list, each a :class:`Conformer` or a failure reason.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    workers = max(1, workers or os.cpu_count() or 1)
    size = max(1, min(_CHUNK, -(-len(smiles) // workers)))  # small inputs still use every worker
    chunks = [list(smiles[i : i + size]) for i in range(0, len(smiles), size)]
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("conformers"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, transient=True, disable=not (console.is_terminal if progress is None else progress),
    )  # fmt: skip
    results: list[list[Conformer | str] | None] = [None] * len(chunks)
    with bar:
        task = bar.add_task("embed", total=len(smiles))
        if workers == 1 or len(chunks) <= 1:
            for i, chunk in enumerate(chunks):
                results[i] = _embed_chunk(chunk, seed, screen)
                bar.advance(task, len(chunk))
        else:
            # spawn, not fork: the parent may hold torch/OpenMP threads that a forked child inherits
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(min(workers, len(chunks)), mp_context=context) as pool:
                futures = {pool.submit(_embed_chunk, c, seed, screen): i for i, c in enumerate(chunks)}
                for future in as_completed(futures):
                    i = futures[future]
                    results[i] = future.result()
                    bar.advance(task, len(chunks[i]))
    return [r for chunk in results for r in chunk]  # type: ignore[union-attr]
