"""``moldiff sample``'s config (:class:`SampleConfig`), and the sections it shares with campaign
files: how molecules are drawn (:class:`Sampling`) and steered (:class:`Guidance`,
:class:`Scaffold`, :class:`Steer`). Property values are typed (:class:`Quantity`,
:class:`Objective`) and become the library's objects directly (:func:`guidance_spec`); the
command-line options (``--target gap=4.5eV``, ``--guide qed=max:2``) are read into the same models.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, ValidationError, field_validator, model_serializer, model_validator

from moldiff import defaults
from moldiff.config.base import Strict, Tracking
from moldiff.config.errors import format_error
from moldiff.errors import MoldiffError

GRIDS = ("uniform", "log_snr", "log_snr_late", "edm")  # moldiff.solvers.grids


class Quantity(Strict):
    """A property value with an optional unit: ``4.5eV``, ``2.5``, or ``{value: 4.5, unit: eV}``."""

    expected: ClassVar[str] = "a number with an optional unit (e.g. 4.5eV)"
    value: float = Field(description="The value, in ``unit``.")
    unit: str = Field("", description="Its unit; empty: the property's own (meV for gap, Debye for mu, ...).")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data):
        if isinstance(data, (str, int, float)) and not isinstance(data, bool):
            data = {"value": data}
        if isinstance(data, dict) and isinstance(data.get("value"), str):
            data = cls._read(data, data["value"].strip())
        return data

    @classmethod
    def _read(cls, data: dict, text: str) -> dict:
        from moldiff.guidance.units import split_quantity

        try:
            value, unit = split_quantity(text)
        except MoldiffError as exc:
            raise ValueError(str(exc)) from None
        return {**data, "value": value, "unit": unit or data.get("unit", "")}

    @model_serializer
    def _compact(self):
        return f"{_number(self.value)}{self.unit}" if self.unit else _number(self.value)

    def canonical(self, name: str) -> float:
        """The value in property ``name``'s own unit (MoldiffError for a unit of another dimension)."""
        from moldiff.guidance.units import unit_factor

        return self.value * unit_factor(name, self.unit)

    @classmethod
    def parse(cls, text: str, label: str):
        """``text`` in the command-line syntax; errors begin with ``label`` (the option)."""
        try:
            return cls.model_validate(text)
        except ValidationError as exc:
            raise MoldiffError(f"{label}: {format_error(exc, cls)}") from None


class Objective(Quantity):
    """What to steer a property to: a value with an optional unit, or ``max`` / ``min``, and a
    weight: ``qed: max``, ``gap: 4.5eV``, ``sa: min:0.5`` or ``{value: 2.5, weight: 0.5}``."""

    expected: ClassVar[str] = "a number with an optional unit, max or min, and an optional :WEIGHT (e.g. max:2)"
    value: float | Literal["max", "min"] = Field(description="The target value in ``unit``, or max / min.")
    weight: float = Field(1.0, description="Weight of this term against the others.")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data):
        if isinstance(data, str):
            head, sep, tail = data.rpartition(":")
            data = {"value": head, "weight": tail} if sep else {"value": data}
        return super()._shorthand(data)

    @classmethod
    def _read(cls, data: dict, text: str) -> dict:
        if text.lower() in ("max", "min"):
            return {**data, "value": text.lower()}
        try:
            return super()._read(data, text)
        except ValueError:
            raise ValueError(f"cannot read {text!r}: expected a number with an optional unit (4.5eV), max or min") from None

    @model_serializer
    def _compact(self):
        value = self.value if isinstance(self.value, str) else Quantity._compact(self)
        return value if self.weight == 1 else {"value": value, "weight": _number(self.weight)}

    def term(self, name: str):
        """The :class:`~moldiff.guidance.regressor.GuideTerm` of property ``name``."""
        from moldiff.guidance.regressor import DIRECTIONS, GuideTerm

        if isinstance(self.value, str):
            return GuideTerm(name, direction=DIRECTIONS[self.value], weight=self.weight)
        return GuideTerm(name, target=self.canonical(name), weight=self.weight)


def _number(value: float) -> float | int:
    """2.0 as 2: a config written back reads as it was written (and campaigns keep their fingerprint)."""
    return int(value) if float(value).is_integer() else value


def _by_property(entries: dict) -> dict:
    """``entries`` under canonical property names, each unit checked against its property."""
    from moldiff.guidance.units import property_name

    out = {}
    for key, quantity in entries.items():
        try:
            name = property_name(str(key))
        except MoldiffError as exc:
            raise ValueError(str(exc)) from None
        try:
            if not isinstance(quantity.value, str):
                quantity.canonical(name)
        except MoldiffError as exc:
            raise ValueError(f"{name}: {exc}") from None
        out[name] = quantity
    return out


class Sampling(Strict):
    """How molecules are drawn: the solver and its grid, the atom counts, the arithmetic."""

    solver: str | None = Field(None, description="ddpm, ddim, euler-maruyama, pc, euler, heun, dpmpp-2m, "
                               f"dpmpp-2m-sde, adaptive or flow-map. Default: {defaults.SOLVER}; flow-map for a "
                               "flow-map model.")  # fmt: skip
    steps: int | None = Field(None, ge=1, description="Network evaluations (NFE) per molecule; sets the solver's "
                              f"grid. Default: {defaults.STEPS}; {defaults.FLOWMAP_STEPS} for a flow-map model.")  # fmt: skip
    grid: Literal[GRIDS] | None = Field(None, description="Time grid: uniform, log_snr, log_snr_late or edm "
                                        "(default: the solver's own).")  # fmt: skip
    options: dict[str, float | int | bool | str] = Field({}, description="Solver options, e.g. {eta: 0.5} for ddim.")
    n_atoms: int | None = Field(None, ge=1, le=200, description="Atoms per molecule, a scaffold's included "
                                "(default: drawn from the model's training set).")  # fmt: skip
    types: Literal["argmax", "closed-shell"] = Field(
        "argmax", description="How each atom's element is read (moldiff.decoding): the argmax of its type "
        "features, or closed-shell (the most likely assignment with an even electron count).")  # fmt: skip
    bonds: Literal["argmax", "valence"] = Field(
        "valence", description="Graph models: how each pair's bond is read (moldiff.decoding.decode_bonds): "
        "valence (strongest bonds first, none beyond what its atoms' element and charge allow), or the argmax of "
        "its bond features.")  # fmt: skip
    batch_size: int = Field(100, ge=1, description="Molecules denoised together; with steering, particles.")
    device: str = Field("auto", description="cpu, cuda or auto.")
    precision: Literal["fp32", "bf16", "auto"] = Field(
        "fp32", description="Network arithmetic (moldiff.nets.precision): bf16 runs the matrix products in "
        "bfloat16, about 2x faster where the hardware has it; auto picks it there. It changes the molecules drawn.")  # fmt: skip

    def resolved(self, flow_map: bool) -> Sampling:
        """This section with the solver and steps a model of this kind samples with by default."""
        solver = self.solver or ("flow-map" if flow_map else defaults.SOLVER)
        if flow_map and solver != "flow-map":  # a flow map only jumps
            raise MoldiffError(f"the model is a flow map: sample it with --solver flow-map (sampling.solver: "
                               f"flow-map), not {solver!r}")  # fmt: skip
        steps = self.steps or (defaults.FLOWMAP_STEPS if flow_map else defaults.STEPS)
        return self.model_copy(update={"solver": solver, "steps": steps})


class Guidance(Strict):
    """Steering toward property values: classifier-free guidance of a conditional model (``targets``),
    or regressor guidance of any model with a property predictor (``guide``)."""

    targets: dict[str, Quantity] = Field({}, description="A conditional model's conditions, {property: "
                                         "value[unit]}, e.g. {gap: 4.5eV}; one per property it was trained on.")  # fmt: skip
    guidance_scale: float = Field(1.0, ge=0, description="Classifier-free guidance w: 1 conditional, 0 "
                                  "unconditional, above 1 sharper.")  # fmt: skip
    guide: dict[str, Objective] = Field({}, description="Regressor guidance, {property: value[unit] | max | min}, "
                                        "e.g. {qed: max, logp: {value: 2.5, weight: 0.5}}.")  # fmt: skip
    predictor: str | None = Field(None, description="Property predictor file for guide (moldiff train-predictor).")
    guide_scale: float = Field(1.0, ge=0, description="Overall strength of regressor guidance.")

    @field_validator("targets", "guide")
    @classmethod
    def _properties(cls, value):
        return _by_property(value)

    @model_validator(mode="after")
    def _combined(self):
        if self.guidance_scale != 1.0 and not self.targets:
            raise ValueError("guidance_scale needs targets (classifier-free guidance of a conditional model)")
        if self.guide and self.predictor is None:
            raise ValueError("guide needs predictor, a property predictor file (moldiff train-predictor)")
        if self.predictor is not None and not self.guide:
            raise ValueError("predictor is used only with guide")
        if not self.targets and not self.guide:
            raise ValueError("give targets (a conditional model) or guide with a predictor, or leave guidance out")
        return self


class Scaffold(Strict):
    """Atoms kept fixed while the rest is generated around them. A plain string is a SMILES, or an
    SDF file when it ends in .sdf/.sd/.mol."""

    smiles: str | None = Field(None, description="A SMILES, embedded in 3D (ETKDG + MMFF); * marks attachment "
                               "points, where new atoms bond (its other hydrogens are kept).")  # fmt: skip
    sdf: str | None = Field(None, description="Or the first molecule of this SDF file, at its coordinates.")
    hydrogens: bool = Field(False, description="Keep the scaffold's hydrogens too.")
    jump: int = Field(1, ge=1, description="Solver intervals between RePaint replacements.")
    resample: int = Field(1, ge=1, description="RePaint resamplings of each segment.")
    reconstruction: float = Field(defaults.RECONSTRUCTION, ge=0, description="Reconstruction-guidance weight (0: off).")
    valence_guard: bool = Field(defaults.VALENCE_GUARD, description="New atoms bond only to scaffold atoms with "
                                "an open valence.")  # fmt: skip

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data):
        from moldiff.chem.substructure import SCAFFOLD_FILES

        if isinstance(data, str):
            return {"sdf" if Path(data).suffix.lower() in SCAFFOLD_FILES else "smiles": data}
        if isinstance(data, dict) and "n_atoms" in data:  # one atom count for the whole run
            raise ValueError("set the atom count in sampling.n_atoms (with a scaffold it counts the scaffold's atoms)")
        return data

    @field_validator("smiles")
    @classmethod
    def _parsable(cls, value):
        from moldiff.chem.rdmol import canonicalize_smiles

        if value is not None and (not value.strip() or canonicalize_smiles(value) is None):
            raise ValueError(f"unparsable SMILES {value!r}")
        return value

    @field_validator("sdf")
    @classmethod
    def _sdf_file(cls, value):
        from moldiff.chem.substructure import SCAFFOLD_FILES

        if value is not None and Path(value).suffix.lower() not in SCAFFOLD_FILES:
            raise ValueError(f"must be an SDF file ({', '.join(SCAFFOLD_FILES)}), got {value!r}")
        return value

    @model_validator(mode="after")
    def _one_source(self):
        if self.smiles is not None and self.sdf is not None:
            raise ValueError("give the scaffold as smiles or as sdf, not both")
        if self.smiles is None and self.sdf is None:
            raise ValueError("give the scaffold's smiles or sdf")
        return self


class Steer(Strict):
    """Reward steering with particles (Feynman-Kac steering, ``moldiff.guidance.steering``): each
    molecule is drawn from several particles, resampled and selected by a reward."""

    rewards: dict[str, Objective] | Literal["valid"] = Field(
        "valid", description="RDKit scores (qed, logp, sa, mw) or, with a predictor, other properties, as in "
        "guidance.guide: {qed: max, logp: {value: 2.5, weight: 2}}; or valid alone (a valid molecule).")  # fmt: skip
    particles: int = Field(defaults.STEER_PARTICLES, ge=1, description="Particles per molecule; the cost is that "
                           "many times the NFE.")  # fmt: skip
    strength: float = Field(defaults.STEER_STRENGTH, ge=0, description="lambda of the reward tilt exp(lambda r).")
    resamplings: int = Field(defaults.STEER_RESAMPLINGS, ge=0, description="Resampling times before the end "
                             "(0: the best or a draw of the final particles).")  # fmt: skip
    window: float = Field(1.0, gt=0, le=1, description="The last fraction of the steps over which to resample.")
    select: Literal["best", "sample"] = Field(defaults.STEER_SELECT, description="Keep the best final particle, "
                                              "or draw one by its weight.")  # fmt: skip
    reader: Literal["edm", "xyz2mol", "model"] | None = Field(
        None, description="A molecule counts if valid by the EDM bond rule (edm), as xyz2mol reads it (neutral and "
        "in one piece), or by a graph model's own bonds and charges (model: valid as written, in one piece). "
        "Default: model for a graph model, edm otherwise.")  # fmt: skip
    predictor: str | None = Field(None, description="Property predictor file for rewards RDKit cannot score "
                                  "(gap, mu, ...).")  # fmt: skip

    @field_validator("rewards")
    @classmethod
    def _rewards(cls, value):
        return value if value == "valid" else _by_property(value)

    @model_validator(mode="after")
    def _predicted(self):
        read = self.predicted()
        if read and self.predictor is None:
            raise ValueError(f"rewards {', '.join(read)} need predictor, a property predictor file "
                             "(RDKit scores only qed, logp, sa and mw)")  # fmt: skip
        if self.predictor is not None and not read:
            raise ValueError("predictor is used only with rewards RDKit cannot score")
        return self

    def predicted(self) -> list[str]:
        """The rewarded properties RDKit cannot score, which a property predictor reads."""
        from moldiff.chem.labels import SCORES

        return [] if self.rewards == "valid" else [name for name in self.rewards if name not in SCORES]

    def terms(self, by_name: bool = False) -> tuple:
        """The reward terms (:class:`~moldiff.guidance.regressor.GuideTerm`); () for validity alone."""
        if self.rewards == "valid":
            return ()
        return tuple(self.rewards[name].term(name) for name in (sorted if by_name else list)(self.rewards))


def guidance_spec(guidance: Guidance | None, scaffold: Scaffold | None, steer: Steer | None, *,
                  by_name: bool = False):  # fmt: skip
    """The steering sections as the :class:`~moldiff.guidance.plan.GuidanceSpec` a model is steered
    with; ``by_name``: guide and reward terms in name order rather than as given."""
    from moldiff.guidance.plan import GuidanceSpec

    order = sorted if by_name else list
    spec = {}
    if (g := guidance) is not None:
        spec.update(targets={name: q.canonical(name) for name, q in g.targets.items()},
                    terms=tuple(g.guide[name].term(name) for name in order(g.guide)),
                    guidance_scale=g.guidance_scale, predictor=g.predictor, guide_scale=g.guide_scale)  # fmt: skip
    if (s := scaffold) is not None:
        spec.update(scaffold_sdf=s.sdf, scaffold_smiles=s.smiles, scaffold_h=s.hydrogens, jump=s.jump,
                    resamples=s.resample, reconstruction=s.reconstruction, valence_guard=s.valence_guard)  # fmt: skip
    if (r := steer) is not None:
        if r.predictor is not None:
            if spec.get("predictor") not in (None, r.predictor):
                raise MoldiffError("guidance.predictor and steer.predictor must be the same file")
            spec["predictor"] = r.predictor
        spec.update(steer=r.terms(by_name), particles=r.particles, steer_strength=r.strength,
                    resamplings=r.resamplings, steer_window=r.window, steer_select=r.select, steer_reader=r.reader)  # fmt: skip
    return GuidanceSpec(**spec)


class SampleConfig(Strict):
    """A ``moldiff sample`` run: which model, how many molecules, how they are drawn and steered."""

    model: str = Field("qm9", description="A built-in model name (qm9, qm9-edm, qm9-fast, qm9-scaffold, drugs, "
                       "drugs-scaffold) or a model file.")  # fmt: skip
    n: int = Field(100, ge=1, description="Number of molecules.")
    seed: int = Field(0, description="Run seed; molecule i gets a seed derived from (seed, i).")
    output: str = Field("samples.sdf", description="SDF file to write; a CSV of scores and a run record "
                        "(.run.json) go beside it.")  # fmt: skip
    novelty: bool = Field(True, description="Score novelty against the model's training set.")
    sampling: Sampling = Field(Sampling(), description="How molecules are drawn.")
    guidance: Guidance | None = Field(None, description="Steering toward property values.")
    scaffold: Scaffold | None = Field(None, description="Atoms kept in every molecule.")
    steer: Steer | None = Field(None, description="Reward steering with particles.")
    tracking: Tracking = Field(Tracking(enabled=False), description="MLflow tracking (off by default).")

    @field_validator("output")
    @classmethod
    def _sdf(cls, value):
        if Path(value).suffix.lower() != ".sdf":
            raise ValueError(f"must end in .sdf, got {value!r}")
        return value

    def guidance_spec(self):
        """The steering as a :class:`~moldiff.guidance.plan.GuidanceSpec`."""
        return guidance_spec(self.guidance, self.scaffold, self.steer)
