"""Generating molecules, the one way: per-molecule seeds, sizes and conditions, in batches, on a
device and in a precision, with a steering plan's wrappers (guidance, scaffold, particles) applied.

A molecule depends only on its seed, its size, its condition row and the floating-point summation
order of its batch, so any molecule of a run regenerates alone from its recorded seed.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

import numpy as np
import torch

from moldiff.data.molset import MolSet
from moldiff.diffusion.schedules import prior_std
from moldiff.diffusion.state import MolGraph, MoleculeNoise, MolState
from moldiff.errors import MoldiffError
from moldiff.solvers.categorical import CategoricalSteps, start_classes


def molecule_seeds(run_seed: int, n: int) -> list[int]:
    """Independent 63-bit seeds for molecules 0..n-1 of a run (molecule i's seed never depends on n)."""
    return [int(np.random.SeedSequence([run_seed, i]).generate_state(2, np.uint32).view(np.uint64)[0] >> 1)
            for i in range(n)]  # fmt: skip


def atom_counts(generator, run_seed: int, n: int, fixed: int | None = None) -> list[int]:
    """Atoms of molecules 0..n-1 of a run: ``fixed`` for all, or drawn from the training sizes
    (molecule i's never depends on n)."""
    if fixed is not None:
        return [int(fixed)] * n
    return generator.sample_atom_counts(n, np.random.default_rng([run_seed, 7])).tolist()


@torch.no_grad()
def generate(generator, seeds: list[int], sizes: list[int], *, solver: Callable, times: torch.Tensor,
             conditions: torch.Tensor | None = None, plan=None, batch_size: int = 100,
             device: str | torch.device = "cpu", precision: str | None = None, fixed_atoms: int = 0,
             progress: Callable[[int], None] | None = None) -> MolSet:  # fmt: skip
    """One molecule per seed, with the given sizes (atom counts), ``batch_size`` molecules at a time.

    Args:
        generator: a :class:`~moldiff.generator.MoleculeGenerator`.
        seeds, sizes: one per molecule (M,).
        solver: a solver of ``moldiff.solvers`` (options bound), ``times`` its grid (K + 1,).
        conditions: (M, C) one encoded condition row per molecule, for a conditional model
            (``moldiff.guidance.condition.PropertyNorm.encode``); None: the plan's, if any.
        plan: a :class:`~moldiff.guidance.plan.GuidancePlan` whose wrappers apply: its generator's
            guided denoiser, its scaffold (inpainting, kept types, placement) and steering.
        precision: ``fp32`` or ``bf16`` for the networks (None: as they are).
        fixed_atoms: leading atoms of every molecule whose types decoding keeps (a plan's scaffold
            sets it).
        progress: called with the molecules of each finished batch.

    Returns:
        The molecules, ids 0..M-1.
    """
    n = len(seeds)
    if len(sizes) != n:
        raise MoldiffError(f"need one atom count per seed: {len(sizes)} counts, {n} seeds")
    if n and min(sizes) < 1:
        raise MoldiffError("every molecule needs at least one atom")
    fixed = fixed_atoms
    if getattr(generator, "categorical", False) and plan is not None and plan.scaffold is not None and plan.steering:
        raise MoldiffError("steering around a scaffold does not take models with categorical discrete fields "
                           "(diffusion.discrete categorical) yet")  # fmt: skip
    if plan is not None:
        generator, solver, fixed = plan.generator, plan.solver(solver), plan.fixed_atoms
        conditions = plan.conditions(n) if conditions is None else conditions
        if precision is not None:
            plan.set_precision(precision)
    elif precision is not None:
        from moldiff.nets.precision import denoiser_networks, set_precision

        for net in denoiser_networks(generator.denoiser):
            set_precision(net, precision)
    if conditions is not None and conditions.shape[0] != n:
        raise MoldiffError(f"conditions need one row per molecule: got {tuple(conditions.shape)} for {n} molecules")
    parts = []
    for start in range(0, n, batch_size):
        end = min(start + batch_size, n)
        cond = None if conditions is None else conditions[start:end].to(device)
        parts.append(_batch(generator, seeds[start:end], sizes[start:end], solver, times, cond, device, fixed))
        if progress is not None:
            progress(end - start)
    mols = MolSet.concat(parts)
    mols.ids = np.arange(n)
    return mols if plan is None else plan.place(mols)


def _batch(generator, seeds, sizes, solver, times, cond, device, fixed: int) -> MolSet:
    """One batch: prior noise from each molecule's seed, the solver, the decoded molecules (the first
    ``fixed`` atoms of each, a scaffold, keep their types)."""
    graph = MolGraph.from_counts(torch.tensor(sizes, dtype=torch.long, device=device), cond)
    if any(f.on == "pairs" for f in generator.fields):  # a model with fields on atom pairs
        graph = graph.with_pairs()
    fields = generator.fields
    categorical = any(f.kind == "categorical" for f in fields)
    # the solver's noise covers the Gaussian fields; categorical classes draw their own uniforms
    noise = MoleculeNoise(seeds, graph, tuple(f for f in fields if f.kind == "gaussian") if categorical else fields,
                          device)  # fmt: skip
    times = times.to(device)
    # the prior N(0, (α_1² + σ_1²) I): unit variance for VP schedules, ≈ σ_max² for VE
    z = noise.randn() * float(prior_std(generator.denoiser.schedule(times[0])))
    denoiser = generator.denoiser
    if categorical:  # the solver moves the coordinates, CategoricalSteps the classes (moldiff.solvers.categorical)
        full = MolState({f.name: z[f.name] if f.kind == "gaussian" else torch.zeros(
            graph.index(f.on).shape[0], f.columns, device=device) for f in fields}, fields, graph)  # fmt: skip
        denoiser = CategoricalSteps(denoiser, start_classes(full, noise, denoiser.class_priors), noise)
    feeding_back = getattr(generator.denoiser, "feeding_back", None)  # self-conditioning along the trajectory
    with feeding_back() if feeding_back is not None else nullcontext():
        z = solver(denoiser, z, times, graph, noise)
    if categorical:
        z = denoiser.finish(z)
    return generator.decode(z, graph, graph.leading(fixed) if fixed else None)
