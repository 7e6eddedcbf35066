"""Typed, validated run configuration, loaded from YAML and overridable with ``key=value``.

A wrong key or a value of the wrong type is a one-line MoldiffError that names the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from moldiff.errors import MoldiffError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class DataConfig(_Strict):
    dataset: str = "qm9"  # "qm9" or the path of a .npz written by `moldiff data ingest`
    hydrogens: bool = True
    elements: list[str] = ["H", "C", "N", "O", "F"]
    properties: list[str] = []  # per-molecule conditioning inputs (for guidance work)
    max_train: int | None = None  # use only the first N training molecules (tiny runs)


class ModelConfig(_Strict):
    backbone: Literal["egnn"] = "egnn"
    hidden: int = 128
    layers: int = 6
    attention: bool = True
    norm_factor: float = 1.0


class DiffusionConfig(_Strict):
    schedule: Literal["polynomial"] = "polynomial"
    schedule_power: float = 2.0
    schedule_s: float = 1e-5
    prediction: Literal["eps", "x0", "velocity"] = "eps"
    type_scale: float = 0.25  # one-hot atom types are scaled by this before noising (EDM: 0.25)
    type_loss_weight: float = 1.0


class TrainConfig(_Strict):
    batch_size: int = 64
    lr: float = 5e-4
    warmup_steps: int = 500
    weight_decay: float = 1e-12
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    max_steps: int = 1_000_000
    max_minutes: float | None = None  # stop (with a checkpoint) after this wall time
    log_every: int = 50
    checkpoint_every: int = 500
    eval_every: int = 2000  # validation loss and sample quality
    eval_samples: int = 100
    eval_steps: int = 500
    val_molecules: int = 512
    seed: int = 0
    threads: int | None = None
    device: str = "auto"


class TrackingConfig(_Strict):
    enabled: bool = True
    uri: str | None = None  # default: $MLFLOW_TRACKING_URI, else sqlite:///<out_dir>/../mlflow.db
    experiment: str = "moldiff"


class RunConfig(_Strict):
    name: str = "run"
    out_dir: str = "runs/run"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    diffusion: DiffusionConfig = DiffusionConfig()
    train: TrainConfig = TrainConfig()
    tracking: TrackingConfig = TrackingConfig()


def _parse_value(text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply ``a.b=value`` strings (values parsed as YAML) to a nested dict."""
    for item in overrides:
        if "=" not in item:
            raise MoldiffError(f"override {item!r} must look like key=value")
        key, value = item.split("=", 1)
        node = raw
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise MoldiffError(f"override {key!r}: {part!r} is not a section")
        node[parts[-1]] = _parse_value(value)
    return raw


def load_config(path: str | Path | None, overrides: list[str] = ()) -> RunConfig:
    """Read a YAML config (or the defaults when ``path`` is None), apply overrides, validate."""
    raw: dict = {}
    if path is not None:
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise MoldiffError(f"config file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise MoldiffError(f"config {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(raw, dict):
            raise MoldiffError(f"config {path} must be a mapping of sections")
    return validate_config(apply_overrides(raw, list(overrides)))


def validate_config(raw: dict) -> RunConfig:
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            raise MoldiffError(f"unknown config key {key!r}") from None
        raise MoldiffError(f"config key {key!r}: {err['msg']} (got {err.get('input')!r})") from None
