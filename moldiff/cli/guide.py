"""The guidance options of ``moldiff sample``, resolved into objects: conditions for a conditional
model (``--target``, ``--guidance-scale``), regressor guidance (``--guide``, ``--predictor``,
``--guide-scale``) and scaffolds (``--scaffold``, ``--scaffold-smiles``, ``--jump``,
``--resample``). The library does the work (``moldiff.guidance``); this module only parses,
checks and assembles, and lists the per-molecule columns the outputs gain.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from moldiff.errors import MoldiffError


@dataclass
class GuidancePlan:
    generator: object  # MoleculeGenerator whose denoiser carries the guidance wrappers
    cond: torch.Tensor | None = None  # (n, P + 1) encoded conditions of a conditional model
    targets: dict[str, float] = field(default_factory=dict)
    terms: list = field(default_factory=list)
    predictor: object | None = None
    scaffold: object | None = None
    fragment: object | None = None
    jump: int = 1
    resamples: int = 1
    record: dict = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return bool(self.targets or self.terms or self.scaffold is not None)

    def generate(self, n: int, *, seed: int, solver, times, n_atoms, **kwargs):
        """(molecules, seeds), the scaffold atoms first and at their given coordinates."""
        from moldiff.guidance.inpaint import generate_with_scaffold
        from moldiff.sampling import generate

        if self.scaffold is None:
            return generate(self.generator, n, seed=seed, solver=solver, times=times, n_atoms=n_atoms,
                            cond=self.cond, **kwargs)  # fmt: skip
        return generate_with_scaffold(self.generator, self.scaffold, n, seed=seed, solver=solver, times=times,
                                      n_atoms=n_atoms, jump=self.jump, resamples=self.resamples, cond=self.cond,
                                      **kwargs)  # fmt: skip

    def columns(self, molecules, smiles: list[str | None]) -> dict[str, list]:
        """Extra per-molecule output columns: targets, predicted and RDKit-scored properties,
        scaffold matches."""
        out: dict[str, list] = {}
        n = len(molecules)
        for name, value in self.targets.items():
            out[f"target_{name}"] = [value] * n
        if self.predictor is not None:
            predicted = self.predictor.predict(molecules)
            for term in self.terms:
                out[f"predicted_{term.name}"] = predicted[term.name].tolist()
        from moldiff.chem.labels import SCORES, druglike_scores

        scored = [t.name for t in self.terms if t.name in SCORES]
        if scored:
            values = druglike_scores(smiles, scored)
            out.update({name: values[name].tolist() for name in scored})
        if self.scaffold is not None:
            from moldiff.chem.substructure import scaffold_matches

            out["has_scaffold"], out["scaffold_exact"] = scaffold_matches(molecules, self.fragment.query)
        return out

    def summary(self, columns: dict[str, list]) -> dict:
        out = {}
        for key in ("has_scaffold", "scaffold_exact"):
            if key in columns:
                out[key] = float(np.mean(columns[key]))
        for term in self.terms:
            if term.name in columns:
                values = np.asarray(columns[term.name], dtype=np.float64)
                out[f"mean_{term.name}_valid"] = float(np.nanmean(values)) if np.isfinite(values).any() else None
        return out


def plan_guidance(generator, config, payload: dict, *, n: int, targets: list[str], guidance_scale: float,
                  guides: list[str], predictor: str | None, guide_scale: float, scaffold: Path | None,
                  scaffold_smiles: str | None, scaffold_h: bool, jump: int, resamples: int,
                  device: str = "cpu") -> GuidancePlan:  # fmt: skip
    """Resolve the guidance options into a :class:`GuidancePlan` (MoldiffError on bad input)."""
    from moldiff.guidance.condition import PropertyNorm, null_condition

    plan = GuidancePlan(generator=generator, jump=jump, resamples=resamples)
    denoiser = generator.denoiser
    properties = list(config.data.properties)

    # ---- classifier-free guidance: conditions of a conditional model
    if targets:
        from moldiff.guidance.cfg import ClassifierFreeDenoiser
        from moldiff.guidance.units import parse_target

        parsed = dict(parse_target(t) for t in targets)
        if not properties:
            raise MoldiffError("this model is not conditional (trained without data.properties); steer it with "
                               "--guide and a --predictor instead of --target")  # fmt: skip
        if "property_stats" not in payload:
            raise MoldiffError("this conditional model has no property normalisation in its checkpoint; retrain it")
        norm = PropertyNorm.from_dict(payload["property_stats"])
        extra, missing = sorted(set(parsed) - set(norm.names)), [p for p in norm.names if p not in parsed]
        if extra or missing:
            raise MoldiffError(f"this model is conditioned on {', '.join(norm.names)}: give one --target for each"
                               + (f" (not {', '.join(extra)})" if extra else ""))  # fmt: skip
        values = torch.tensor([[parsed[p] for p in norm.names]], dtype=torch.float32).expand(n, -1)
        plan.cond, plan.targets = norm.encode(values), {p: parsed[p] for p in norm.names}
        denoiser = ClassifierFreeDenoiser(denoiser, guidance_scale)
    elif guidance_scale != 1.0:
        raise MoldiffError("--guidance-scale needs --target (classifier-free guidance of a conditional model)")
    elif properties:  # a conditional model sampled without a target: its unconditional mode
        plan.cond = null_condition(n, len(properties))

    # ---- regressor guidance
    if guides:
        from moldiff.guidance.regressor import RegressorGuidedDenoiser, parse_guide

        plan.terms = [parse_guide(g) for g in guides]
        if predictor is None:
            raise MoldiffError("--guide needs --predictor, a property predictor file (moldiff train-predictor)")
        from moldiff.property_model import load_property_model

        if not Path(predictor).is_file():
            raise MoldiffError(f"no predictor file {predictor}")
        plan.predictor = load_property_model(predictor, device)
        if plan.predictor.vocab != generator.vocab or plan.predictor.type_scale != generator.type_scale:
            raise MoldiffError(f"the predictor reads atoms {plan.predictor.vocab.symbols} scaled by "
                               f"{plan.predictor.type_scale}, the model writes {generator.vocab.symbols} scaled by "
                               f"{generator.type_scale}")  # fmt: skip
        denoiser = RegressorGuidedDenoiser(denoiser, plan.predictor, plan.terms, guide_scale)
    elif predictor is not None:
        raise MoldiffError("--predictor is used only with --guide")

    # ---- scaffold
    if scaffold is not None and scaffold_smiles is not None:
        raise MoldiffError("give either --scaffold or --scaffold-smiles, not both")
    if scaffold is not None or scaffold_smiles is not None:
        from moldiff.chem.substructure import fragment_from_sdf, fragment_from_smiles
        from moldiff.guidance.inpaint import Scaffold

        if jump < 1 or resamples < 1:
            raise MoldiffError(f"--jump and --resample must be at least 1, got {jump}, {resamples}")
        if scaffold is not None:
            if scaffold.suffix.lower() not in (".sdf", ".sd", ".mol"):
                raise MoldiffError(f"--scaffold must be an SDF file (.sdf, .mol), got {scaffold}")
            plan.fragment = fragment_from_sdf(scaffold, hydrogens=scaffold_h)
        else:
            plan.fragment = fragment_from_smiles(scaffold_smiles, hydrogens=scaffold_h)
        try:
            plan.scaffold = Scaffold.from_atoms(plan.fragment.atomic_numbers, plan.fragment.positions, generator.vocab)
        except MoldiffError as exc:
            raise MoldiffError(f"the scaffold does not fit this model: {exc}") from None
    plan.generator = replace(generator, denoiser=denoiser)
    plan.record = {
        "targets": plan.targets or None,
        "guidance_scale": guidance_scale if targets else None,
        "guides": [vars(t) for t in plan.terms] or None,
        "predictor": predictor,
        "guide_scale": guide_scale if guides else None,
        "scaffold": None if plan.fragment is None else {
            "source": str(scaffold) if scaffold is not None else scaffold_smiles, "smiles": plan.fragment.smiles,
            "atoms": int(plan.scaffold.size), "hydrogens": scaffold_h, "jump": jump, "resamples": resamples},
    }  # fmt: skip
    return plan
