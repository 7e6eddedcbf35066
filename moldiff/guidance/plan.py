"""A steered-generation plan: parsed guidance options resolved against one model.

This is where ``moldiff sample`` and campaigns meet. Both read their steering into the same typed
config sections, which check how the settings combine and become a :class:`GuidanceSpec`
(:func:`moldiff.config.sample.guidance_spec`); here the spec meets the model (is it conditional?
does the predictor read its atoms? does the scaffold fit its elements?) and becomes a
:class:`GuidancePlan`: the generator with its denoiser wrapped, the condition rows, the scaffold
and its inpainting solver, and the per-molecule columns the outputs gain.

The plan generates whole runs (:meth:`GuidancePlan.generate`) or one batch of given seeds and sizes
(:meth:`GuidancePlan.sample`); a molecule depends only on its seed, size and batch-mates either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from moldiff.data.molset import MolSet
from moldiff.diffusion.known import takes_known_atoms
from moldiff.errors import MoldiffError
from moldiff.defaults import (RECONSTRUCTION, STEER_PARTICLES, STEER_RESAMPLINGS, STEER_SELECT, STEER_STRENGTH,
                              VALENCE_GUARD)
from moldiff.guidance.regressor import GuideTerm
from moldiff.guidance.steering import SCAFFOLD_REWARD, predicted_terms


@dataclass(frozen=True)
class GuidanceSpec:
    """What to steer, parsed: targets in canonical units, guide terms, file paths, scaffold options."""

    targets: dict[str, float] = field(default_factory=dict)  # classifier-free guidance of a conditional model
    guidance_scale: float = 1.0
    terms: tuple[GuideTerm, ...] = ()  # regressor guidance with ``predictor``
    predictor: str | None = None
    guide_scale: float = 1.0
    scaffold_sdf: str | None = None  # the first molecule of an SDF file, or
    scaffold_smiles: str | None = None  # a SMILES embedded in 3D
    scaffold_h: bool = False  # keep the scaffold's hydrogens
    jump: int = 1
    resamples: int = 1
    reconstruction: float = RECONSTRUCTION  # reconstruction-guidance weight of the scaffold (0: off)
    valence_guard: bool = VALENCE_GUARD  # new atoms bond to scaffold atoms only where they have room
    steer: tuple[GuideTerm, ...] | None = None  # reward steering with particles (): validity alone
    particles: int = STEER_PARTICLES
    steer_strength: float = STEER_STRENGTH
    resamplings: int = STEER_RESAMPLINGS
    steer_window: float = 1.0
    steer_select: str = STEER_SELECT
    # how a molecule counts: EDM bond rule, xyz2mol (neutral, one piece), or the model's own bonds;
    # None: the model's own bonds for a graph model, else the EDM rule
    steer_reader: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.targets or self.terms or self.scaffold_sdf or self.scaffold_smiles or self.steer is not None)


@dataclass
class GuidancePlan:
    generator: object  # MoleculeGenerator whose denoiser carries the guidance wrappers
    cond_row: torch.Tensor | None = None  # (1, 2P): every molecule's encoded condition
    targets: dict[str, float] = field(default_factory=dict)
    terms: list[GuideTerm] = field(default_factory=list)
    predictor: object | None = None
    predicted: list[str] = field(default_factory=list)  # properties the predictor reads for guidance or steering
    scaffold: object | None = None  # moldiff.guidance.inpaint.Scaffold
    fragment: object | None = None  # moldiff.chem.substructure.Fragment (its query graph)
    jump: int = 1
    resamples: int = 1
    reconstruction: float = 0.0
    guard: object | None = None  # moldiff.guidance.valence.ValenceGuard
    steering: dict | None = None  # keyword arguments of moldiff.guidance.steering.steering_solver
    record: dict = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return bool(self.targets or self.terms or self.scaffold is not None or self.steering is not None)

    def set_precision(self, precision: str) -> None:
        """Runs the plan's networks (the generator's, the predictor's) in ``precision``, ``fp32`` or
        ``bf16`` (``moldiff.nets.precision``)."""
        from moldiff.nets.precision import denoiser_networks, set_precision

        predictor = [] if self.predictor is None else [self.predictor.net]
        for net in denoiser_networks(self.generator.denoiser) + predictor:
            set_precision(net, precision)

    # ------------------------------------------------------------------ generating
    def conditions(self, n: int) -> torch.Tensor | None:
        """(n, 2P) conditions for ``n`` molecules, or None for an unconditional model."""
        return None if self.cond_row is None else self.cond_row.expand(n, -1).clone()

    def atom_counts(self, seed: int, n: int, n_atoms: int | None) -> list[int]:
        """Atoms of molecules 0..n-1 of a run (scaffold included); molecule i's never depends on n."""
        from moldiff.guidance.inpaint import scaffold_atom_counts
        from moldiff.generate import atom_counts

        if self.scaffold is None:
            return atom_counts(self.generator, seed, n, n_atoms)
        return scaffold_atom_counts(self.generator, self.scaffold, n, seed, n_atoms, self.open_hydrogens)

    @property
    def open_hydrogens(self) -> int:
        """The hydrogens the scaffold leaves out that the model must generate as atoms: all of them,
        but none for a graph model of heavy atoms (its hydrogens come from RDKit after decoding)."""
        generator = self.generator
        if getattr(generator, "graph_model", False) and 1 not in generator.vocab.atomic_numbers:
            return 0
        return self.fragment.open_hydrogens

    def solver(self, solver):
        """``solver`` itself, or wrapped to keep the scaffold fixed and, outermost, to steer."""
        from moldiff.guidance.inpaint import inpaint_solver
        from moldiff.guidance.steering import steering_solver

        if self.scaffold is not None:
            solver = inpaint_solver(solver, self.scaffold, self.generator.type_scale, jump=self.jump,
                                    resamples=self.resamples, reconstruction=self.reconstruction, guard=self.guard)  # fmt: skip
        if self.steering is not None:
            solver = steering_solver(solver, **self.steering)
        return solver

    @property
    def fixed_atoms(self) -> int:
        """Leading atoms of every molecule whose types are given (the scaffold's)."""
        return 0 if self.scaffold is None else len(self.scaffold.types)

    def place(self, molecules: MolSet) -> MolSet:
        """Molecules translated so the scaffold atoms sit at the given coordinates."""
        from moldiff.guidance.inpaint import align_to_scaffold

        return molecules if self.scaffold is None else align_to_scaffold(molecules, self.scaffold)

    def sample(self, seeds: list[int], n_atoms: list[int], *, solver, times: torch.Tensor,
               device: str | torch.device = "cpu") -> MolSet:  # fmt: skip
        """One batch: a molecule per seed with the given sizes (from :meth:`atom_counts`), steered."""
        from moldiff.generate import generate

        return generate(self.generator, seeds, n_atoms, solver=solver, times=times, plan=self,
                        batch_size=max(len(seeds), 1), device=device)  # fmt: skip

    def generate(self, n: int, *, seed: int, solver, times: torch.Tensor, n_atoms: int | None = None,
                 batch_size: int = 100, device: str | torch.device = "cpu", progress=None) -> tuple[MolSet, list[int]]:  # fmt: skip
        """``n`` molecules of run ``seed`` and their seeds (:func:`moldiff.generate.generate`)."""
        from moldiff.generate import generate, molecule_seeds

        seeds = molecule_seeds(seed, n)
        mols = generate(self.generator, seeds, self.atom_counts(seed, n, n_atoms), solver=solver, times=times,
                        plan=self, batch_size=batch_size, device=device, progress=progress)  # fmt: skip
        return mols, seeds

    # --------------------------------------------------------------------- outputs
    def columns(self, molecules: MolSet, smiles: list[str | None] | None = None) -> dict[str, list]:
        """Extra per-molecule columns: ``target_<p>``, ``predicted_<p>``, ``has_scaffold`` and
        ``scaffold_exact``; with ``smiles``, also RDKit's value of every guided drug-likeness score
        and ``scaffold_intact`` (:meth:`scaffold_intact`)."""
        out: dict[str, list] = {}
        n = len(molecules)
        for name, value in self.targets.items():
            out[f"target_{name}"] = [value] * n
        if self.predictor is not None:
            predicted = self.predictor.predict(molecules, device=next(self.predictor.net.parameters()).device)
            for name in self.predicted:
                out[f"predicted_{name}"] = predicted[name].tolist()
        if smiles is not None:
            from moldiff.chem.labels import SCORES, druglike_scores

            scored = [t.name for t in self.terms if t.name in SCORES]
            if scored:
                values = druglike_scores(smiles, scored)
                out.update({name: values[name].tolist() for name in scored})
        if self.scaffold is not None:
            from moldiff.chem.substructure import scaffold_matches

            out["has_scaffold"], out["scaffold_exact"] = scaffold_matches(molecules, self.fragment.query)
            if smiles is not None:
                out["scaffold_intact"] = self.scaffold_intact(smiles)
        return out

    def scaffold_intact(self, smiles) -> list[bool]:
        """Whether each molecule, read from its SMILES (xyz2mol's bonds; None or NaN: unreadable),
        contains the scaffold with its bond orders: ``scaffold_exact`` reads the EDM bond rule,
        which never finds an aromatic pyridine or benzene ring."""
        from rdkit import Chem

        from moldiff.chem.rdmol import rdkit_quiet
        from moldiff.chem.substructure import scaffold_in

        with rdkit_quiet():
            mols = [Chem.MolFromSmiles(s) if isinstance(s, str) and s else None for s in smiles]
        return scaffold_in(mols, self.fragment.query)

    def summary(self, columns: dict[str, list]) -> dict:
        """Scaffold match rates, the mean predicted value of each property the predictor reads and
        the mean RDKit value of each guided score."""
        out = {}
        for key in ("has_scaffold", "scaffold_exact", "scaffold_intact"):
            if key in columns:
                out[key] = float(np.mean(columns[key]))
        for name in self.predicted:
            values = np.asarray(columns.get(f"predicted_{name}", []), dtype=np.float64)
            if np.isfinite(values).any():
                out[f"mean_predicted_{name}"] = float(np.nanmean(values))
        for term in self.terms:
            if term.name in columns:
                values = np.asarray(columns[term.name], dtype=np.float64)
                out[f"mean_{term.name}_valid"] = float(np.nanmean(values)) if np.isfinite(values).any() else None
        return out


def plan_guidance(generator, config, payload: dict, spec: GuidanceSpec, *, device: str = "cpu") -> GuidancePlan:
    """Resolve ``spec`` against a model (its generator, run config and checkpoint payload).

    Raises:
        MoldiffError: the model cannot take the spec (targets for an unconditional model, a
            predictor of other atoms, a scaffold with foreign elements, a missing file).
    """
    from moldiff.guidance.condition import PropertyNorm, null_condition

    if spec.active and hasattr(generator.denoiser, "jump") and not generator.denoiser.predicts_x0:
        raise MoldiffError("guidance and scaffolds need a flow map with the x0 or eps parameterisation "
                           "(this one predicts velocities)")  # fmt: skip
    graph_model = any(f.on == "pairs" for f in getattr(generator, "fields", ()))
    plan = GuidancePlan(generator=generator, jump=spec.jump, resamples=spec.resamples,
                        reconstruction=spec.reconstruction)  # fmt: skip
    denoiser = generator.denoiser
    properties = list(config.data.properties)

    # ---- classifier-free guidance: conditions of a conditional model
    if spec.targets:
        from moldiff.guidance.cfg import ClassifierFreeDenoiser

        if not properties:
            raise MoldiffError("this model is not conditional (trained without data.properties), so it takes "
                               "no targets; steer it with regressor guidance and a property predictor")  # fmt: skip
        if "property_stats" not in payload:
            raise MoldiffError("this conditional model has no property normalisation in its checkpoint; retrain it")
        norm = PropertyNorm.from_dict(payload["property_stats"])
        extra = sorted(set(spec.targets) - set(norm.names))
        if extra:
            raise MoldiffError(f"this model is conditioned on {', '.join(norm.names)}, not on {', '.join(extra)}")
        missing = [p for p in norm.names if p not in spec.targets]
        if missing and not config.train.cond_property_drop_prob:
            raise MoldiffError(f"this model is conditioned on {', '.join(norm.names)} together: give a target for "
                               "each (train with train.cond_property_drop_prob > 0 to condition on a subset)")  # fmt: skip
        plan.targets = {p: float(spec.targets[p]) for p in norm.names if p in spec.targets}
        values = torch.tensor([[float(spec.targets.get(p, float("nan"))) for p in norm.names]])
        plan.cond_row = norm.encode(values, torch.tensor([[p in spec.targets for p in norm.names]]))
        denoiser = ClassifierFreeDenoiser(denoiser, spec.guidance_scale)
    elif properties:  # a conditional model sampled without a target: its unconditional mode
        plan.cond_row = null_condition(1, len(properties))

    # ---- the property predictor: regressor guidance, and steering rewards RDKit cannot score
    read = predicted_terms(spec.steer or ())
    if spec.terms or read:
        from moldiff.property_model import load_property_model

        if spec.predictor is None:
            raise MoldiffError("regressor guidance and steering by a predicted property need a property "
                               "predictor file (moldiff train-predictor)")  # fmt: skip
        plan.predictor = load_property_model(spec.predictor, device)  # a built-in name or a file
        if plan.predictor.vocab != generator.vocab or plan.predictor.type_scale != generator.type_scale:
            raise MoldiffError(f"the predictor reads atoms {plan.predictor.vocab.symbols} scaled by "
                               f"{plan.predictor.type_scale}, the model writes {generator.vocab.symbols} scaled by "
                               f"{generator.type_scale}")  # fmt: skip
        plan.predicted = list(dict.fromkeys(t.name for t in (*spec.terms, *read)))
        unknown = sorted(set(plan.predicted) - set(plan.predictor.norm.names))
        if unknown:
            raise MoldiffError(f"the predictor predicts {', '.join(plan.predictor.norm.names)}, "
                               f"not {', '.join(unknown)}")  # fmt: skip
    if spec.terms:
        from moldiff.guidance.regressor import RegressorGuidedDenoiser

        plan.terms = list(spec.terms)
        denoiser = RegressorGuidedDenoiser(denoiser, plan.predictor, plan.terms, spec.guide_scale)

    # ---- scaffold
    if spec.scaffold_sdf is not None or spec.scaffold_smiles is not None:
        plan.fragment, plan.scaffold = _scaffold(spec, generator.vocab, generator.charges if graph_model else None)
        # the guard reads x̂₀'s types, which a model with categorical fields keeps as classes; its bond
        # cap alone keeps the scaffold's valences (moldiff.guidance.inpaint.cap_scaffold_bonds)
        if spec.valence_guard and plan.fragment.open_valence is not None and not getattr(generator, "categorical", False):
            from moldiff.guidance.valence import ValenceGuard

            plan.guard = ValenceGuard.build(plan.scaffold.types, plan.fragment.open_valence, generator.vocab)
    plan.generator = replace(generator, denoiser=denoiser)
    if spec.steer is not None:
        spec = replace(spec, steer_reader=steering_reader(spec.steer_reader, graph_model))
        plan.steering = _steering(spec, plan)
    plan.record = _record(spec, plan)
    return plan


def steering_reader(reader: str | None, graph_model: bool) -> str:
    """The reader a steering reward counts molecules with: ``reader``, or by default a graph model's
    own bonds (``model``) and the EDM bond rule for a coordinate-only model.

    Raises:
        MoldiffError: ``model`` for a model that writes no bonds.
    """
    if reader is None:
        return "model" if graph_model else "edm"
    if reader == "model" and not graph_model:
        raise MoldiffError("the 'model' steering reader reads a graph model's own bonds; this model writes none "
                           "(steer it with the 'edm' or 'xyz2mol' reader)")  # fmt: skip
    return reader


def _scaffold(spec: GuidanceSpec, vocab, charges: tuple[int, ...] | None = None):
    """(Fragment, Scaffold) of the spec's SDF file or SMILES; with ``charges`` (a graph model's formal
    charges), the scaffold carries its charges and Kekulé bonds, which generation keeps."""
    from moldiff.chem.substructure import SCAFFOLD_FILES, fragment_from_sdf, fragment_from_smiles
    from moldiff.guidance.inpaint import Scaffold

    if spec.scaffold_sdf is not None and spec.scaffold_smiles is not None:
        raise MoldiffError("give the scaffold as an SDF file or as a SMILES, not both")
    if spec.scaffold_sdf is not None:
        if Path(spec.scaffold_sdf).suffix.lower() not in SCAFFOLD_FILES:
            raise MoldiffError(f"the scaffold file must be an SDF file (.sdf, .mol), got {spec.scaffold_sdf}")
        fragment = fragment_from_sdf(spec.scaffold_sdf, hydrogens=spec.scaffold_h)
    else:
        fragment = fragment_from_smiles(spec.scaffold_smiles, hydrogens=spec.scaffold_h)
    if charges is not None and 1 not in vocab.atomic_numbers:  # a graph model of heavy atoms
        fragment = fragment.heavy_atoms()
    try:
        scaffold = Scaffold.from_atoms(fragment.atomic_numbers, fragment.positions, vocab, fragment.open_valence)
        if charges is not None:
            if fragment.bond_orders is None or fragment.open_valence is None:
                raise MoldiffError("RDKit cannot read its bonds as single, double and triple (Kekulé) bonds")
            scaffold = scaffold.with_graph(fragment.charges, fragment.bond_orders, charges)
    except MoldiffError as exc:
        raise MoldiffError(f"the scaffold does not fit this model: {exc}") from None
    return fragment, scaffold


def _steering(spec: GuidanceSpec, plan: GuidancePlan) -> dict:
    """The steering solver's settings, its reward reading states as the plan's generator decodes them."""
    from moldiff.guidance.regressor import PropertyEnergy
    from moldiff.guidance.steering import predictor_energy, score_reward, scored_terms

    generator, fixed = plan.generator, plan.fixed_atoms

    def decode(z, graph):
        return generator.decode(z, graph, graph.leading(fixed) if fixed else None)

    scaffold = None if plan.fragment is None else plan.fragment.query
    energy, read = None, predicted_terms(spec.steer)
    if read:  # the predictor's energy of the clean molecule, as regressor guidance defines it
        energy = predictor_energy(PropertyEnergy(plan.predictor, read), generator.denoiser.schedule)
    return dict(reward=score_reward(decode, scored_terms(spec.steer), reader=spec.steer_reader, scaffold=scaffold,
                                    energy=energy),
                particles=spec.particles,
                strength=spec.steer_strength,
                resamplings=spec.resamplings, window=spec.steer_window, select=spec.steer_select)  # fmt: skip


def _record(spec: GuidanceSpec, plan: GuidancePlan) -> dict:
    """What was steered, for run records and reports."""
    scaffold = None
    if plan.fragment is not None:
        scaffold = {"source": spec.scaffold_sdf or spec.scaffold_smiles, "smiles": plan.fragment.smiles,
                    "atoms": int(plan.scaffold.size), "hydrogens": spec.scaffold_h, "jump": spec.jump,
                    "resamples": spec.resamples, "reconstruction": spec.reconstruction,
                    "valence_guard": plan.guard is not None,
                    "open_valence": None if plan.fragment.open_valence is None else plan.fragment.open_valence.tolist(),
                    "known_atoms": takes_known_atoms(plan.generator.denoiser)}  # fmt: skip
    return {
        "targets": plan.targets or None,
        "guidance_scale": spec.guidance_scale if plan.targets else None,
        "guides": [vars(t) for t in plan.terms] or None,
        "predictor": spec.predictor if plan.predictor is not None else None,
        "guide_scale": spec.guide_scale if plan.terms else None,
        "scaffold": scaffold,
        "steer": None if plan.steering is None else {
            "rewards": [vars(t) for t in spec.steer] or "valid", "particles": spec.particles,
            "strength": spec.steer_strength, "resamplings": spec.resamplings, "window": spec.steer_window,
            "select": spec.steer_select, "reader": spec.steer_reader,
            "scaffold_bonus": SCAFFOLD_REWARD if plan.fragment is not None else 0.0},
    }
