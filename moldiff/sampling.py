"""Generating many molecules: per-molecule seeds, atom counts, batching and progress."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from moldiff.data.molset import MolSet
from moldiff.generator import MoleculeGenerator


def molecule_seeds(run_seed: int, n: int) -> list[int]:
    """Independent 63-bit seeds for molecules 0..n-1 of a run (molecule i's seed never depends on n)."""
    return [int(np.random.SeedSequence([run_seed, i]).generate_state(2, np.uint32).view(np.uint64)[0] >> 1)
            for i in range(n)]  # fmt: skip


def atom_counts(generator: MoleculeGenerator, run_seed: int, n: int, fixed: int | None = None) -> list[int]:
    if fixed is not None:
        return [int(fixed)] * n
    return generator.sample_atom_counts(n, np.random.default_rng([run_seed, 7])).tolist()


def generate(generator: MoleculeGenerator, n: int, *, seed: int, solver: Callable, times: torch.Tensor,
             n_atoms: int | list[int] | None = None, batch_size: int = 100, device: str = "cpu",
             progress: Callable[[int], None] | None = None,
             cond: torch.Tensor | None = None, fixed_atoms: int = 0) -> tuple[MolSet, list[int]]:  # fmt: skip
    """``n`` molecules; returns them (ids 0..n-1) and each molecule's seed.

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
    parts = []
    for start in range(0, n, batch_size):
        end = min(start + batch_size, n)
        part_cond = None if cond is None else cond[start:end].to(device)
        parts.append(generator.sample(seeds[start:end], counts[start:end], solver=solver, times=times,
                                      cond=part_cond, device=device, fixed_atoms=fixed_atoms))  # fmt: skip
        if progress is not None:
            progress(end - start)
    mols = MolSet.concat(parts)
    mols.ids = np.arange(n)
    return mols, seeds
