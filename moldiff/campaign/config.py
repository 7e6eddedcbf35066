"""The campaign file: one validated YAML document that describes a whole generation campaign.

Unknown keys and values of the wrong type or range are a one-line :class:`MoldiffError` naming the
key and what was expected. ``guidance`` and ``scaffold`` mirror ``moldiff sample``'s steering
options and become the same :class:`~moldiff.guidance.plan.GuidanceSpec`; what depends on the model
(is it conditional, does the scaffold fit its elements) is checked when the campaign starts.
See ``configs/campaigns/example.yaml`` and ``scaffold_example.yaml`` for documented examples.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from moldiff import defaults
from moldiff.errors import MoldiffError

TRANSFORMS = ("linear", "reverse_linear", "sigmoid", "reverse_sigmoid", "step")
ALERT_CATALOGS = ("pains", "brenk")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


def _score_names() -> tuple[str, ...]:
    from moldiff.chem.scoring import NUMERIC_SCORES

    return NUMERIC_SCORES


def _check_score_names(names) -> None:
    known = _score_names()
    for name in names:
        if name not in known:
            raise ValueError(f"unknown score {name!r}; expected one of {', '.join(known)}")


class Sampling(_Strict):
    solver: str = defaults.SOLVER
    steps: int = Field(defaults.STEPS, ge=1)
    options: dict[str, float | int | bool] = {}  # solver options, e.g. {eta: 0.5} for ddim
    n_atoms: int | None = Field(None, ge=1, le=200)  # fixed size; default: drawn from the model's training sizes
    types: Literal["argmax", "closed-shell"] = "argmax"  # how elements are read (moldiff.decoding)
    batch_size: int = Field(50, ge=1)  # molecules per batch: the unit of resuming and sharding
    device: str = "auto"
    # network arithmetic (moldiff.nets.precision): bf16 runs the matrix products in bfloat16, about
    # 2x faster where the hardware has it; auto picks it there. It changes the molecules drawn.
    precision: Literal["fp32", "bf16", "auto"] = "fp32"


class Range(_Strict):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self):
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class Filters(_Strict):
    ranges: dict[str, Range] = {}  # score -> {min, max}; a molecule outside is filtered
    alerts: list[Literal["pains", "brenk"]] = []  # any match of these catalogs filters the molecule
    connected: bool = True  # filter molecules of several fragments
    scaffold: bool = True  # with a scaffold: filter molecules that lost it (bond orders, as xyz2mol reads them)
    unique: bool = True  # keep only the best-ranked copy of each SMILES
    novel: bool = False  # filter molecules found in the reference (training) set
    posebusters: bool = False  # filter molecules that fail a PoseBusters check (needs scoring.posebusters)

    @field_validator("ranges")
    @classmethod
    def _known(cls, value):
        _check_score_names(value)
        return value


class Component(_Strict):
    transform: Literal["linear", "reverse_linear", "sigmoid", "reverse_sigmoid", "step"]
    low: float
    high: float
    weight: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self):
        if self.low > self.high or (self.low == self.high and self.transform != "step"):
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class Diversity(_Strict):
    max_per_scaffold: int | None = Field(None, ge=1)  # keep at most this many molecules per Murcko scaffold


class Scoring(_Strict):
    reference: str = "training"  # "training" (the model's training set) or a SMILES/SDF/.npz file
    max_neighbours: int = Field(20_000, ge=1)  # reference molecules searched for the nearest neighbour
    posebusters: Literal["off", "fast", "full"] = "off"  # fast: no energy check (~20 ms/molecule)
    fcd: bool = True
    workers: int = Field(1, ge=1)  # processes for per-molecule scoring (results do not depend on it)


class Guidance(_Strict):
    """Steering, as ``moldiff sample``'s options of the same names."""

    targets: dict[str, Any] = {}  # a conditional model's conditions, {property: value[unit]} (--target)
    guidance_scale: float = Field(1.0, ge=0)  # classifier-free w: 1 conditional, 0 unconditional, >1 sharper
    guide: dict[str, Any] = {}  # regressor guidance, {property: value[unit] | max | min | {value, weight}}
    predictor: str | None = None  # property predictor file for guide (moldiff train-predictor)
    guide_scale: float = Field(1.0, ge=0)  # overall strength of regressor guidance

    @field_validator("targets")
    @classmethod
    def _targets(cls, value):
        from moldiff.guidance.units import parse_target

        return _checked(value, parse_target)

    @field_validator("guide")
    @classmethod
    def _guide(cls, value):
        from moldiff.guidance.regressor import parse_guide

        return _checked(value, lambda text: parse_guide(text, "guide"))

    @model_validator(mode="after")
    def _combined(self):
        if not self.targets and not self.guide:
            raise ValueError("give targets (a conditional model) or guide with a predictor, or set guidance: null")
        if self.guidance_scale != 1.0 and not self.targets:
            raise ValueError("guidance_scale needs targets (classifier-free guidance of a conditional model)")
        if self.guide and self.predictor is None:
            raise ValueError("guide needs predictor, a property predictor file (moldiff train-predictor)")
        if self.predictor is not None and not self.guide:
            raise ValueError("predictor is used only with guide")
        return self


class Steer(_Strict):
    """Reward steering with particles, as ``moldiff sample --steer`` and its options."""

    rewards: dict[str, Any] | Literal["valid"] = "valid"  # {qed: max, logp: {value: 2.5, weight: 2}} or valid alone
    particles: int = Field(defaults.STEER_PARTICLES, ge=1)  # per molecule; the cost is that many times the NFE
    strength: float = Field(defaults.STEER_STRENGTH, ge=0)  # λ of the tilt exp(λ r)
    resamplings: int = Field(defaults.STEER_RESAMPLINGS, ge=0)  # resampling times before the end (0: best of the particles)
    window: float = Field(1.0, gt=0, le=1)  # the last fraction of the steps over which to resample
    select: Literal["best", "sample"] = defaults.STEER_SELECT
    reader: Literal["edm", "xyz2mol"] = "edm"  # a molecule counts if valid by the EDM rule, or by xyz2mol (neutral, one piece)
    predictor: str | None = None  # property predictor file for rewards RDKit cannot score (gap, mu, ...)

    @field_validator("rewards")
    @classmethod
    def _rewards(cls, value):
        from moldiff.guidance.steering import parse_rewards

        return value if value == "valid" else _checked(value, lambda text: parse_rewards([text], "steer"))

    @model_validator(mode="after")
    def _predicted(self):
        from moldiff.guidance.steering import predicted_terms

        read = [t.name for t in predicted_terms(self.terms())]
        if read and self.predictor is None:
            raise ValueError(f"rewards {', '.join(read)} need predictor, a property predictor file "
                             "(RDKit scores only qed, logp, sa and mw)")  # fmt: skip
        if self.predictor is not None and not read:
            raise ValueError("predictor is used only with rewards RDKit cannot score")
        return self

    def terms(self) -> tuple:
        """The reward terms, in name order, as ``moldiff sample --steer`` parses them."""
        from moldiff.guidance.steering import parse_rewards

        if self.rewards == "valid":
            return ()
        return parse_rewards([f"{k}={_quantity(v)}" for k, v in sorted(self.rewards.items())], "steer")


def _checked(entries: dict, parse) -> dict:
    """``{property: value}`` with canonical property names, each value read by ``parse`` exactly as
    ``moldiff sample`` reads its option (so the campaign and the command accept the same values)."""
    from moldiff.guidance.units import property_name

    out = {}
    for key, value in entries.items():
        try:
            name = property_name(str(key))
        except MoldiffError as exc:
            raise ValueError(str(exc)) from None
        try:
            parse(f"{name}={_quantity(value)}")
        except MoldiffError as exc:
            raise ValueError(f"{name}: {exc}") from None
        out[name] = value
    return out


def _quantity(value) -> str:
    """A target or guide value as the text ``moldiff sample`` takes: 2.5, 4.5eV, max, or with a
    weight ``{value: max, weight: 2}`` -> max:2 (a mapping, since YAML reads 2:1 as a base-60 number)."""
    if isinstance(value, dict) and set(value) <= {"value", "weight"} and "value" in value:
        return ":".join(_quantity(value[k]) for k in ("value", "weight") if k in value)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise MoldiffError(f"expected a number, a number with a unit, max, min or {{value, weight}}, got {value!r}")
    return str(value)


class Scaffold(_Strict):
    """Atoms kept fixed while the rest is generated, as ``moldiff sample --scaffold``; a plain
    string is a SMILES, or an SDF file when it ends in .sdf/.sd/.mol."""

    smiles: str | None = None  # embedded in 3D with ETKDG + MMFF (--scaffold-smiles)
    sdf: str | None = None  # or the first molecule of this file (--scaffold)
    hydrogens: bool = False  # keep the scaffold's hydrogens too (--scaffold-h)
    jump: int = Field(1, ge=1)  # solver intervals between RePaint replacements (--jump)
    resample: int = Field(1, ge=1)  # RePaint resamplings of each segment (--resample)
    reconstruction: float = Field(defaults.RECONSTRUCTION, ge=0)  # reconstruction-guidance weight (--reconstruction)
    valence_guard: bool = defaults.VALENCE_GUARD  # new atoms bond only where the scaffold has room (--valence-guard)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data):
        from moldiff.chem.substructure import SCAFFOLD_FILES

        if isinstance(data, str):
            return {"sdf" if Path(data).suffix.lower() in SCAFFOLD_FILES else "smiles": data}
        if isinstance(data, dict) and "n_atoms" in data:  # one atom count for the whole campaign
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
        if (self.smiles is None) == (self.sdf is None):
            raise ValueError("give exactly one of smiles or sdf")
        return self


class Tracking(_Strict):
    enabled: bool = True
    uri: str | None = None  # default: --tracking-uri, $MLFLOW_TRACKING_URI, sqlite:///mlflow.db
    experiment: str = "moldiff-campaigns"


class CampaignConfig(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    model: str = "qm9"  # built-in model name (qm9; drugs once trained) or a model file
    n_molecules: int = Field(ge=1)
    seed: int = Field(0, ge=0)
    output_dir: str | None = None  # default: campaigns/<name>
    sampling: Sampling = Sampling()
    guidance: Guidance | None = None  # steer every batch (see Guidance)
    scaffold: Scaffold | None = None  # keep these atoms in every molecule (see Scaffold)
    steer: Steer | None = None  # reward steering with particles (see Steer)
    scoring: Scoring = Scoring()
    filters: Filters = Filters()
    desirability: dict[str, Component] = {}
    diversity: Diversity = Diversity()
    top_n: int = Field(24, ge=0)  # molecules drawn in the report
    tracking: Tracking = Tracking()

    @field_validator("desirability")
    @classmethod
    def _known(cls, value):
        _check_score_names(value)
        return value

    @model_validator(mode="after")
    def _posebusters_scored(self):
        if self.filters.posebusters and self.scoring.posebusters == "off":
            raise ValueError("filters.posebusters needs scoring.posebusters set to fast or full")
        return self

    @property
    def n_batches(self) -> int:
        return -(-self.n_molecules // self.sampling.batch_size)

    def guidance_spec(self):
        """The steering as a :class:`~moldiff.guidance.plan.GuidanceSpec`, what ``moldiff sample`` builds."""
        from moldiff.guidance.plan import GuidanceSpec
        from moldiff.guidance.regressor import parse_guide
        from moldiff.guidance.units import parse_target

        spec = {}
        if (g := self.guidance) is not None:
            spec.update(targets=dict(parse_target(f"{k}={_quantity(v)}") for k, v in g.targets.items()),
                        # by name: the order of the keys, which the fingerprint ignores, cannot matter
                        terms=tuple(parse_guide(f"{k}={_quantity(v)}", "guide") for k, v in sorted(g.guide.items())),
                        guidance_scale=g.guidance_scale, predictor=g.predictor, guide_scale=g.guide_scale)  # fmt: skip
        if (s := self.scaffold) is not None:
            spec.update(scaffold_sdf=s.sdf, scaffold_smiles=s.smiles, scaffold_h=s.hydrogens, jump=s.jump,
                        resamples=s.resample, reconstruction=s.reconstruction, valence_guard=s.valence_guard)  # fmt: skip
        if (r := self.steer) is not None:
            if r.predictor is not None:
                if spec.get("predictor") not in (None, r.predictor):
                    raise MoldiffError("guidance.predictor and steer.predictor must be the same file")
                spec["predictor"] = r.predictor
            spec.update(steer=r.terms(), particles=r.particles, steer_strength=r.strength, resamplings=r.resamplings,
                        steer_window=r.window, steer_select=r.select, steer_reader=r.reader)  # fmt: skip
        return GuidanceSpec(**spec)

    def out_dir(self) -> Path:
        return Path(self.output_dir or f"campaigns/{self.name}")

    def fingerprint(self) -> str:
        """Hash of everything that decides the generated molecules and their scores (not the
        output directory, tracking, selection, FCD or worker count, which only change the finishing step)."""
        keep = self.model_dump(include={"model", "n_molecules", "seed", "sampling", "scoring"})
        keep["sampling"].pop("device", None)
        if keep["sampling"]["precision"] == "fp32":  # the default: older campaigns keep their hash
            keep["sampling"].pop("precision")
        for steering in ("guidance", "scaffold", "steer"):  # only when set, so older campaigns keep their hash
            if getattr(self, steering) is not None:
                keep[steering] = getattr(self, steering).model_dump()
        for finishing_only in ("workers", "fcd"):
            keep["scoring"].pop(finishing_only, None)
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def load_campaign(path: str | Path, overrides: dict | None = None) -> CampaignConfig:
    """Read and validate a campaign file. ``overrides`` are merged into it: a mapping into the file's
    mapping of the same key (``{"sampling": {"steps": 20}}`` changes the steps alone), anything else
    replaces the value."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise MoldiffError(f"campaign file not found: {path}") from None
    except IsADirectoryError:
        raise MoldiffError(f"campaign file {path} is a directory") from None
    except yaml.YAMLError as exc:
        raise MoldiffError(f"campaign file {path} is not valid YAML: {' '.join(str(exc).split())[:160]}") from None
    if not isinstance(raw, dict):
        raise MoldiffError(f"campaign file {path} must be a mapping of keys (name, model, n_molecules, ...)")
    return validate_campaign(_merged(raw, overrides or {}), str(path))


def _merged(base: dict, changes: dict) -> dict:
    out = dict(base)
    for key, value in changes.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merged(out[key], value) if both else value
    return out


def validate_campaign(raw: dict, source: str = "campaign") -> CampaignConfig:
    """Validate a campaign mapping; errors name the key (``filters.ranges.qed.min``)."""
    try:
        return CampaignConfig.model_validate(raw)
    except ValidationError as exc:
        raise MoldiffError(f"{source}: {_describe(exc.errors()[0])}") from None


def _describe(err: dict) -> str:
    key = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("function-", "literal[")))
    where = f"key {key!r}" if key else "top level"
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return f"unknown key {key!r}"
    if err["type"] == "missing":
        return f"missing key {key!r}"
    got = err.get("input")
    shown = f" (got {got!r})" if isinstance(got, (str, int, float, bool)) and err["type"] != "value_error" else ""
    return f"{where}: {message}{shown}"


def dump_yaml(config: CampaignConfig) -> str:
    """The resolved config (every default filled in) as YAML."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
