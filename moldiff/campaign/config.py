"""The campaign file: one validated YAML document that describes a whole generation campaign.

Unknown keys and values of the wrong type or range are a one-line :class:`MoldiffError` naming the
key and what was expected. ``guidance`` and ``scaffold`` are part of the schema so that files
written for them read today, but they give a "not supported yet" error until those features land.
See ``configs/campaigns/example.yaml`` for a documented example.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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
    solver: str = "ddpm"
    steps: int = Field(500, ge=1)
    options: dict[str, float | int | bool] = {}  # solver options, e.g. {eta: 0.5} for ddim
    n_atoms: int | None = Field(None, ge=1, le=200)  # fixed size; default: drawn from the model's training sizes
    batch_size: int = Field(50, ge=1)  # molecules per batch: the unit of resuming and sharding
    device: str = "auto"


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
    guidance: dict[str, Any] | None = None
    scaffold: str | None = None
    scoring: Scoring = Scoring()
    filters: Filters = Filters()
    desirability: dict[str, Component] = {}
    diversity: Diversity = Diversity()
    top_n: int = Field(24, ge=0)  # molecules drawn in the report
    tracking: Tracking = Tracking()

    @field_validator("guidance")
    @classmethod
    def _no_guidance(cls, value):
        if value is not None:
            raise ValueError("guidance is not supported yet (it arrives with controllable generation); remove the key")
        return value

    @field_validator("scaffold")
    @classmethod
    def _no_scaffold(cls, value):
        if value is not None:
            raise ValueError("scaffold-constrained generation is not supported yet; remove the key")
        return value

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

    def out_dir(self) -> Path:
        return Path(self.output_dir or f"campaigns/{self.name}")

    def fingerprint(self) -> str:
        """Hash of everything that decides the generated molecules and their scores (not the
        output directory, tracking, selection, FCD or worker count, which only change the finishing step)."""
        keep = self.model_dump(include={"model", "n_molecules", "seed", "sampling", "scoring"})
        keep["sampling"].pop("device", None)
        for finishing_only in ("workers", "fcd"):
            keep["scoring"].pop(finishing_only, None)
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def load_campaign(path: str | Path, overrides: dict | None = None) -> CampaignConfig:
    """Read and validate a campaign file; ``overrides`` replace top-level keys (e.g. output_dir)."""
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
    raw.update(overrides or {})
    return validate_campaign(raw, str(path))


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
