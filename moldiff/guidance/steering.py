"""Reward steering with particles: Feynman–Kac steering (Singhal et al. 2025, "A general framework
for inference-time scaling and steering of diffusion models").

Regressor guidance needs a differentiable, noise-aware predictor of the property. Many of the
scores chemists care about (RDKit's QED, logP, SA, validity itself) are neither, but they can be
computed on the molecule the model currently predicts. Steering runs P particles per requested
molecule through any solver and, at a few times t_1 > … > t_K, scores each particle's prediction
x̂₀(z_t) with a reward r and resamples the particles of each molecule with weights

    w ∝ exp(λ (r(x̂₀(z_{t_k})) − r(x̂₀(z_{t_{k−1}}))))      (the "difference" potential, r_0 = 0),

so the potentials telescope: the molecule finally kept (drawn with the last weights, or the best
particle with ``select="best"``) follows, approximately, p(x) e^{λ r(x)}. λ = 0 gives plain
samples; P = 1 is exactly the wrapped solver. The cost is P × the solver's NFE plus one network
call per particle at each of the K resampling times, and K + 1 RDKit scorings of every particle.

Particles of one molecule share its size, condition and scaffold flags; particle 0 starts from the
molecule's own prior draw and the others from noise seeded by it, and resampling draws from a
generator seeded by it, so a molecule still depends only on its seed and size. The solver restarts
at each resampling time (a multistep solver takes one first-order step there), as inpainting's
segments do.

A model with categorical discrete fields keeps their classes in its categorical step
(:class:`~moldiff.solvers.categorical.CategoricalSteps`), beside the solver's Gaussian state. Its
particles get a step of their own: particle 0 starts from the molecule's own prior classes and the
others from classes drawn with their own seeds; resampling copies a particle's classes, its time
and its last prediction with its coordinates. The reward reads each particle's x̂₀ with its
likeliest clean classes, and at the end its final classes, which the kept particle hands back to
the molecule's step.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from moldiff import defaults
from moldiff.diffusion.schedules import prior_std
from moldiff.diffusion.state import MolGraph, MoleculeNoise, MolState
from moldiff.errors import MoldiffError
from moldiff.solvers.categorical import CategoricalSteps

SELECTIONS = ("sample", "best")
READERS = ("edm", "xyz2mol", "model")  # how a reward decides that a molecule counts
INVALID_REWARD = -1.0  # a molecule RDKit cannot read scores below any valid one of the scores here
SCAFFOLD_REWARD = 1.0  # a counted molecule with its scaffold intact (bond orders too) scores this much more


def _take(z: MolState, chosen: torch.Tensor, graph: MolGraph) -> MolState:
    """The molecules ``chosen`` (M,) of ``z``, in that order, as a state on ``graph`` (theirs)."""
    return z.molecules(chosen, graph)


def _segments(intervals: int, resamplings: int, window: float = 1.0) -> list[tuple[int, int]]:
    """Runs of solver intervals between resampling times: ``resamplings`` of them spread evenly over
    the last ``window`` of the intervals, at intervals·(1 − window + window·j/(K + 1)), j = 1..K
    (coinciding or end points dropped)."""
    j = np.arange(1, resamplings + 1)
    points = np.round(intervals * (1 - window + window * j / (resamplings + 1))).astype(int)
    bounds = np.unique(np.concatenate([[0], points[(points > 0) & (points < intervals)], [intervals]]))
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))


def _check_reader(reader: str) -> None:
    if reader not in READERS:
        raise MoldiffError(f"unknown molecule reader {reader!r}; choose from {', '.join(READERS)}")


def _check_scores(terms) -> None:
    from moldiff.chem.labels import SCORES

    unknown = [t.name for t in terms if t.name not in SCORES]
    if unknown:
        raise MoldiffError(f"cannot steer {', '.join(unknown)}: steering rewards are RDKit scores "
                           f"({', '.join(SCORES)}) or 'valid' alone")  # fmt: skip


def check_settings(*, particles: int, strength: float, resamplings: int, window: float, select: str,
                   reader: str = "edm") -> None:  # fmt: skip
    """A one-line MoldiffError for steering settings :func:`steering_solver` or a reader cannot take."""
    if particles < 1 or resamplings < 0 or strength < 0 or not 0 < window <= 1:
        raise MoldiffError(f"steering needs particles >= 1, resamplings >= 0, strength >= 0 and 0 < window <= 1; "
                           f"got {particles}, {resamplings}, {strength}, {window}")  # fmt: skip
    if select not in SELECTIONS:
        raise MoldiffError(f"unknown steering selection {select!r}; choose from {', '.join(SELECTIONS)}")
    _check_reader(reader)


def predicted_terms(terms) -> list:
    """The reward terms RDKit cannot score (QM9's properties): a property predictor reads them."""
    from moldiff.chem.labels import SCORES

    return [t for t in terms if t.name not in SCORES]


def scored_terms(terms) -> list:
    """The reward terms RDKit scores itself (QED, logP, SA, MW), even when a predictor could read them."""
    from moldiff.chem.labels import SCORES

    return [t for t in terms if t.name in SCORES]


def steering_solver(solver: Callable, reward: Callable[[torch.Tensor, MolGraph], np.ndarray], *,
                    particles: int = defaults.STEER_PARTICLES, strength: float = defaults.STEER_STRENGTH,
                    resamplings: int = defaults.STEER_RESAMPLINGS, window: float = 1.0,
                    select: str = defaults.STEER_SELECT) -> Callable:  # fmt: skip
    """A solver (same signature as ``solver``) that steers towards high ``reward``.

    Args:
        solver: any solver of ``moldiff.solvers`` (or a wrapped one, e.g. inpainting's).
        reward: ``reward(x0, graph) -> (M,)`` finite rewards of the molecules a state decodes to.
        particles: P per molecule.
        strength: λ, in inverse reward units.
        resamplings: K resampling times, spread evenly over the last ``window`` (0, 1] of the
            solver's intervals: a prediction x̂₀ early in the noise says little about the molecule.
        select: ``"sample"`` (the Feynman–Kac draw) or ``"best"`` (the highest final reward).
    """
    check_settings(particles=particles, strength=strength, resamplings=resamplings, window=window, select=select)

    def sample(denoiser, z: MolState, times: torch.Tensor, graph: MolGraph, noise: MoleculeNoise,
               callback=None) -> MolState:  # fmt: skip
        if particles == 1:
            return solver(denoiser, z, times, graph, noise, callback)
        b, p = graph.num_graphs, particles
        # per molecule: P particle seeds and a resampling generator, all drawn from its own noise
        draws = [torch.randint(0, 2**62, (p + 1,), generator=g).tolist() for g in noise.generators]
        pgraph, _ = graph.repeat(p)
        pnoise = MoleculeNoise([s for d in draws for s in d[:p]], pgraph, z.specs, z.device, z.dtype)
        pick = [torch.Generator().manual_seed(d[p]) for d in draws]
        start = pnoise.randn() * float(prior_std(denoiser.schedule(times[0])))  # as generator.sample
        first = torch.zeros(b * p, dtype=torch.bool, device=z.device)
        first[torch.arange(b, device=z.device) * p] = True  # particle 0 of each molecule: the given start
        zp = z.molecules(torch.arange(b).repeat_interleave(p), pgraph).where(first, start)
        steps = isinstance(denoiser, CategoricalSteps)  # classes beside the solver's state: they travel too
        pden = denoiser
        if steps:
            pden = denoiser.molecules(torch.arange(b).repeat_interleave(p), pgraph, pnoise)
            pden.redraw(~first)
        previous = np.zeros(b * p)

        def resample(values: np.ndarray, final: bool) -> torch.Tensor:
            log_w = strength * (values - previous).reshape(b, p)
            if final and select == "best":
                return torch.as_tensor(values.reshape(b, p).argmax(1)) + torch.arange(b) * p
            w = torch.as_tensor(np.exp(log_w - log_w.max(1, keepdims=True)))
            picks = [torch.multinomial(w[i], 1 if final else p, replacement=True, generator=pick[i]) for i in range(b)]
            return torch.cat([i * p + c for i, c in enumerate(picks)])

        spans = _segments(len(times) - 1, resamplings, window)
        for k, (a, e) in enumerate(spans):
            zp = solver(pden, zp, times[a : e + 1], pgraph, pnoise)
            if callback is not None:
                callback(e - 1, zp)
            if k < len(spans) - 1:
                t = times[e].expand(b * p).to(device=zp.device, dtype=zp.dtype)
                x0 = pden.x0(zp, t, pgraph)
                values = np.asarray(reward(pden.clean_estimate(x0) if steps else x0, pgraph), dtype=np.float64)
                chosen = resample(values, final=False)
                zp, previous = _take(zp, chosen, pgraph), values[chosen.numpy()]
                if steps:
                    pden = pden.molecules(chosen, pgraph, pnoise)
        final = pden.molecules(torch.arange(b * p), pgraph, pnoise).finish(zp) if steps else zp  # a copy finishes
        chosen = resample(np.asarray(reward(final, pgraph), dtype=np.float64), final=True)
        if steps:  # the molecule's own step takes the kept particle's classes; its finish gives the ones scored
            denoiser.adopt(pden.molecules(chosen, graph, noise))
        return _take(zp, chosen, graph)

    return sample


def readable_molecules(molecules, reader: str = "edm") -> list:
    """RDKit molecules (heavy atoms) of a MolSet, or None for each one that does not count: under
    ``edm`` the EDM bond rule must give a valid molecule in one piece; under ``xyz2mol`` RDKit's
    xyz2mol must succeed on a neutral molecule in one piece (how campaigns read a coordinate-only
    model's molecules); under ``model`` the set's own bonds and formal charges (a graph model's) must
    give a molecule in one piece that is valid as written, every valence allowed
    (:func:`moldiff.chem.scoring.written_molecules`, how campaigns read a graph model's)."""
    from rdkit import Chem

    from moldiff.chem.rdmol import rdkit_quiet
    from moldiff.chem.scoring import bonded_molecules, xyz2mol_molecules

    _check_reader(reader)
    if reader == "model":
        if not molecules.has_bonds:
            raise MoldiffError("the 'model' reader reads a graph model's own bonds; these molecules carry none "
                               "(read them with 'edm' or 'xyz2mol')")  # fmt: skip
        with rdkit_quiet():
            mols, _ = bonded_molecules(molecules)
            return [Chem.RemoveHs(m) if m is not None and len(Chem.GetMolFrags(m)) == 1 else None for m in mols]
    with rdkit_quiet():
        if reader == "edm":
            from moldiff.chem.bonds import molset_bonds
            from moldiff.chem.evaluate import edm_smiles, fragment_counts

            _, edges, orders = molset_bonds(molecules)
            smiles, _ = edm_smiles(molecules, edges, orders)
            pieces = fragment_counts(molecules, edges)
            return [Chem.MolFromSmiles(s) if s is not None and n == 1 else None for s, n in zip(smiles, pieces)]
        mols, _ = xyz2mol_molecules(molecules)  # from the coordinates, whatever bonds the set carries
        return [Chem.RemoveHs(m) if m is not None and len(Chem.GetMolFrags(m)) == 1
                and not any(a.GetFormalCharge() for a in m.GetAtoms()) else None for m in mols]  # fmt: skip


def score_reward(decode: Callable[[torch.Tensor, MolGraph], object], terms, invalid: float = INVALID_REWARD,
                 reader: str = "edm", scaffold=None,
                 energy: Callable[[torch.Tensor, MolGraph], np.ndarray] | None = None,
                 ) -> Callable[[torch.Tensor, MolGraph], np.ndarray]:  # fmt: skip
    """The reward of RDKit scores (``moldiff.chem.labels.SCORES``) of the molecules a state decodes
    to: Σ_k w_k·(±score_k) for a direction, −w_k·(score_k − target_k)² for a target, over the
    ``terms`` (:class:`~moldiff.guidance.regressor.GuideTerm`; none: every counted molecule scores
    0); molecules that do not count under ``reader`` (:func:`readable_molecules`), or that a score
    fails on, get ``invalid``. With a ``scaffold`` (an RDKit query), a counted molecule that
    contains it with its bond orders scores SCAFFOLD_REWARD more: its atoms are fixed, but whether
    an aromatic ring stays aromatic depends on what grows on it. ``decode(z, graph)`` gives their
    MolSet. ``energy(z, graph) -> (M,)``, e.g. :func:`predictor_energy`'s, is subtracted from the
    reward of every counted molecule: properties RDKit cannot compute, read by a predictor."""
    from moldiff.chem.labels import SCORES
    from moldiff.chem.substructure import scaffold_in

    _check_reader(reader)
    _check_scores(terms)

    def reward(z: MolState, graph: MolGraph) -> np.ndarray:
        mols = readable_molecules(decode(z, graph), reader)
        total = np.full(len(mols), invalid)
        bonus = np.zeros(len(mols)) if scaffold is None else SCAFFOLD_REWARD * np.asarray(scaffold_in(mols, scaffold))
        if energy is not None:
            bonus = bonus - np.asarray(energy(z, graph), dtype=np.float64)
        for i, mol in enumerate(mols):
            if mol is None:
                continue
            try:
                total[i] = bonus[i] + sum(t.weight * (t.direction * SCORES[t.name](mol) if t.target is None
                                                       else -((SCORES[t.name](mol) - t.target) ** 2)) for t in terms)  # fmt: skip
            except Exception:  # a score RDKit cannot compute for this molecule: it does not count
                total[i] = invalid
        total[~np.isfinite(total)] = invalid  # a predictor's NaN must not win an argmax
        return total

    return reward


def predictor_energy(energy, schedule) -> Callable[[torch.Tensor, MolGraph], np.ndarray]:
    """``energy`` (a :class:`~moldiff.guidance.regressor.PropertyEnergy`) of clean molecules (t = 0),
    as a function of a state and its graph, for :func:`score_reward`."""

    def read(z: MolState, graph: MolGraph) -> np.ndarray:
        t = torch.zeros(graph.num_graphs, device=z.device, dtype=z.dtype)
        with torch.no_grad():
            return energy(z, t, graph, schedule).double().cpu().numpy()

    return read


__all__ = ["INVALID_REWARD", "READERS", "SCAFFOLD_REWARD", "SELECTIONS", "check_settings", "predicted_terms",
           "predictor_energy", "readable_molecules", "score_reward", "scored_terms", "steering_solver"]
