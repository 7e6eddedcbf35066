"""Generating a run of molecules from a run seed: each molecule's seed and atom count follow from
(run seed, index), and :func:`moldiff.generate.generate` makes them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from moldiff.data.molset import MolSet
from moldiff.generate import atom_counts, generate as generate_molecules, molecule_seeds
from moldiff.generator import MoleculeGenerator

__all__ = ["atom_counts", "generate", "molecule_seeds"]


def generate(generator: MoleculeGenerator, n: int, *, seed: int, solver: Callable, times: torch.Tensor,
             n_atoms: int | list[int] | None = None, batch_size: int = 100, device: str = "cpu",
             progress: Callable[[int], None] | None = None,
             cond: torch.Tensor | None = None, fixed_atoms: int = 0) -> tuple[MolSet, list[int]]:  # fmt: skip
    """``n`` molecules of run ``seed``; returns them (ids 0..n-1) and each molecule's seed.

    ``n_atoms``: one size for all, one per molecule, or None (drawn from the training sizes);
    ``cond``: per-molecule conditions (n, C) for a conditional model (see ``moldiff.guidance``);
    ``fixed_atoms``: leading atoms of every molecule (a scaffold) whose types decoding keeps.
    """
    seeds = molecule_seeds(seed, n)
    if isinstance(n_atoms, (list, tuple, np.ndarray)):
        if len(n_atoms) != n:
            raise ValueError(f"{len(n_atoms)} atom counts for {n} molecules")
        counts = [int(k) for k in n_atoms]
    else:
        counts = atom_counts(generator, seed, n, n_atoms)
    if cond is not None and cond.shape[0] != n:
        raise ValueError(f"cond must have one row per molecule: got {tuple(cond.shape)} for {n} molecules")
    mols = generate_molecules(generator, seeds, counts, solver=solver, times=times, conditions=cond,
                              batch_size=batch_size, device=device, fixed_atoms=fixed_atoms, progress=progress)  # fmt: skip
    return mols, seeds
