"""The campaign file: one validated YAML document that describes a whole generation campaign.

It is read like every moldiff config (:func:`moldiff.config.load_config`): a file, or the name of
a campaign shipped in ``moldiff/configs/campaigns`` (``moldiff campaign run example``). Its
``sampling``, ``guidance``, ``scaffold``, ``steer`` and ``tracking`` sections are ``moldiff
sample``'s (:mod:`moldiff.config.sample`); what depends on the model (is it conditional, does the
scaffold fit its elements) is checked when the campaign starts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from moldiff import defaults
from moldiff.config import (CAMPAIGNS, Guidance, Sampling, Scaffold, Steer, Strict, Tracking, load_config,
                            validate_config)
from moldiff.config import dump_yaml  # noqa: F401  (campaign code writes the resolved file with it)
from moldiff.config.sample import guidance_spec


def _check_score_names(names) -> None:
    from moldiff.chem.scoring import NUMERIC_SCORES

    for name in names:
        if name not in NUMERIC_SCORES:
            raise ValueError(f"unknown score {name!r}; expected one of {', '.join(NUMERIC_SCORES)}")


class CampaignSampling(Sampling):
    """How molecules are drawn (as ``moldiff sample``'s sampling section), in batches."""

    batch_size: int = Field(50, ge=1, description="Molecules per batch: the unit of resuming and sharding.")


class Range(Strict):
    """Bounds of a score; a molecule outside them is filtered."""

    min: float | None = Field(None, description="Lowest value kept.")
    max: float | None = Field(None, description="Highest value kept.")

    @model_validator(mode="after")
    def _ordered(self):
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class Filters(Strict):
    """Hard filters: a molecule failing one stays in molecules.csv, with the reason, but is not kept."""

    ranges: dict[str, Range] = Field({}, description="Score -> {min, max}, e.g. {qed: {min: 0.6}}.")
    alerts: list[Literal["pains", "brenk"]] = Field([], description="Structural-alert catalogs; any match filters "
                                                    "the molecule.")  # fmt: skip
    connected: bool = Field(True, description="Filter molecules of several fragments.")
    scaffold: bool = Field(True, description="With a scaffold: filter molecules that lost it (bond orders as "
                           "xyz2mol reads them).")  # fmt: skip
    unique: bool = Field(True, description="Keep only the best-ranked copy of each SMILES.")
    novel: bool = Field(False, description="Filter molecules found in the reference (training) set.")
    posebusters: bool = Field(False, description="Filter molecules that fail a PoseBusters check (needs "
                              "scoring.posebusters).")  # fmt: skip

    @field_validator("ranges")
    @classmethod
    def _known(cls, value):
        _check_score_names(value)
        return value


class Component(Strict):
    """One score's part of the desirability: its transform to [0, 1] and its weight."""

    transform: Literal["linear", "reverse_linear", "sigmoid", "reverse_sigmoid", "step"] = Field(
        description="How the score maps to [0, 1] between low and high (reverse_*: high scores are worse).")
    low: float = Field(description="Where the transform starts rising (or falling).")
    high: float = Field(description="Where it reaches the top.")
    weight: float = Field(1.0, gt=0, description="Weight in the geometric mean.")

    @model_validator(mode="after")
    def _ordered(self):
        if self.low > self.high or (self.low == self.high and self.transform != "step"):
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class Diversity(Strict):
    """Limits on similar molecules among those kept."""

    max_per_scaffold: int | None = Field(None, ge=1, description="Keep at most this many molecules per Murcko scaffold.")


class Scoring(Strict):
    """What each molecule is scored against, and how."""

    reference: str = Field("training", description="Novelty, similarity and FCD reference: training (the model's "
                           "training set), moses, or a SMILES, SDF or .npz file.")  # fmt: skip
    max_neighbours: int = Field(20_000, ge=1, description="Reference molecules searched for each molecule's "
                                "nearest neighbour.")  # fmt: skip
    posebusters: Literal["off", "fast", "full"] = Field("off", description="PoseBusters checks: fast leaves out the "
                                                        "energy check (about 20 ms per molecule).")  # fmt: skip
    fcd: bool = Field(True, description="Compute the Frechet ChemNet distance of the kept set.")
    workers: int = Field(1, ge=1, description="Processes for per-molecule scoring (results do not depend on it).")


class CampaignConfig(Strict):
    """A generation campaign (``moldiff campaign run``): generate in batches, score, filter, rank,
    report."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$", description="Campaign name (letters, digits, "
                      "_ . -): names its directory, molecules and MLflow run.")  # fmt: skip
    model: str = Field("qm9", description="A built-in model name (qm9, qm9-edm, qm9-fast, qm9-scaffold, drugs, "
                       "drugs-scaffold) or a model file.")  # fmt: skip
    n_molecules: int = Field(ge=1, description="Molecules to generate.")
    seed: int = Field(0, ge=0, description="Run seed; molecule i gets a seed derived from (seed, i), so any one "
                      "regenerates exactly.")  # fmt: skip
    output_dir: str | None = Field(None, description="The campaign directory (default: campaigns/<name>).")
    sampling: CampaignSampling = Field(CampaignSampling(), description="How molecules are drawn.")
    guidance: Guidance | None = Field(None, description="Steering toward property values, in every batch.")
    scaffold: Scaffold | None = Field(None, description="Atoms kept in every molecule.")
    steer: Steer | None = Field(None, description="Reward steering with particles.")
    scoring: Scoring = Field(Scoring(), description="What molecules are scored against.")
    filters: Filters = Field(Filters(), description="Hard filters.")
    desirability: dict[str, Component] = Field({}, description="Score -> component; the desirability is their "
                                               "weighted geometric mean, and a zero vetoes.")  # fmt: skip
    diversity: Diversity = Field(Diversity(), description="Limits on similar kept molecules.")
    top_n: int = Field(24, ge=0, description="Molecules drawn in the report.")
    tracking: Tracking = Field(Tracking(experiment="moldiff-campaigns"), description="MLflow tracking of the "
                               "finished campaign.")  # fmt: skip

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
        """The steering as a :class:`~moldiff.guidance.plan.GuidanceSpec`, as ``moldiff sample`` builds it;
        terms in name order, since the order of the keys, which the fingerprint ignores, must not matter."""
        return guidance_spec(self.guidance, self.scaffold, self.steer, by_name=True)

    def out_dir(self) -> Path:
        return Path(self.output_dir or f"campaigns/{self.name}")

    def fingerprint(self) -> str:
        """Hash of everything that decides the generated molecules and their scores (not the
        output directory, tracking, selection, FCD or worker count, which only change the finishing step)."""
        keep = self.model_dump(include={"model", "n_molecules", "seed", "sampling", "scoring"})
        sampling = keep["sampling"]
        sampling.pop("device", None)
        # defaults left out or spelt as they always were, so that a campaign keeps its hash
        sampling["solver"] = sampling["solver"] or defaults.SOLVER
        sampling["steps"] = sampling["steps"] or defaults.STEPS
        for key, default in (("precision", "fp32"), ("grid", None), ("bonds", "valence")):
            if sampling[key] == default:
                sampling.pop(key)
        for steering in ("guidance", "scaffold", "steer"):  # only when set
            if getattr(self, steering) is not None:
                keep[steering] = getattr(self, steering).model_dump()
        if self.steer is not None and self.steer.reader is None:
            # the default reader, spelt as it always was (edm: the only default before graph models)
            keep["steer"]["reader"] = "edm"
        for finishing_only in ("workers", "fcd"):
            keep["scoring"].pop(finishing_only, None)
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def load_campaign(name: str | Path, changes: Mapping | None = None, overrides: list[str] = ()) -> CampaignConfig:
    """Read and validate a campaign file, or a shipped campaign by name.

    Args:
        name: a YAML file, or the name of a campaign in ``moldiff/configs/campaigns``.
        changes: merged into the file: a mapping into the file's mapping of the same key
            (``{"sampling": {"steps": 20}}`` changes the steps alone), anything else replaces the value.
        overrides: ``a.b=value`` strings (``--set``).
    """
    return load_config(name, overrides, CampaignConfig, changes=changes, folder=CAMPAIGNS,
                       usage="moldiff campaign run {}")  # fmt: skip


def validate_campaign(raw: dict, source: str | None = None) -> CampaignConfig:
    """Validate a campaign mapping; errors name the key (``filters.ranges.qed.min``)."""
    return validate_config(raw, CampaignConfig, source)
