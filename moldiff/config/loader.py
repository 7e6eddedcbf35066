"""Reading a config: a YAML file (or a shipped config by name), ``a.b=value`` overrides, validation.

Every command reads its config the same way: :func:`load_config` finds the file, applies the
overrides and validates the result against the command's schema; a wrong key or value is a
one-line :class:`~moldiff.errors.MoldiffError` that names the key and what it expects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from moldiff.config.errors import format_error
from moldiff.config.run import RunConfig
from moldiff.errors import MoldiffError

CONFIGS = Path(__file__).parents[1] / "configs"  # the configs shipped with moldiff, found by name
CAMPAIGNS = CONFIGS / "campaigns"

_SCIENTIFIC = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def parse_value(text: str):
    """A command-line value read as YAML (numbers, booleans, lists, words), and ``1e-3`` as the
    number it means: YAML 1.1 reads a float without a dot in the mantissa as a string."""
    if _SCIENTIFIC.fullmatch(text.strip()):
        return float(text)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(raw: dict, overrides: Sequence[str | tuple[str, object]]) -> dict:
    """Apply ``a.b=value`` strings (values parsed as YAML), or (``a.b``, value) pairs, to a nested dict."""
    for item in overrides:
        if isinstance(item, tuple):
            key, value = item
        else:
            key, sep, text = item.partition("=")
            if not sep or not key.strip():
                raise MoldiffError(f"override {item!r} must look like key=value")
            value = parse_value(text)
        node = raw
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if node.get(part) is None:  # a section left out, or null
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise MoldiffError(f"override {key.strip()!r}: {part!r} is not a section")
        node[parts[-1]] = value
    return raw


def merged(base: dict, changes: Mapping) -> dict:
    """``base`` with ``changes`` merged in: a mapping into the mapping of the same key, anything
    else replacing the value."""
    out = dict(base)
    for key, value in changes.items():
        both = isinstance(value, Mapping) and isinstance(out.get(key), dict)
        out[key] = merged(out[key], value) if both else value
    return out


def shipped_configs(folder: Path = CONFIGS) -> dict[str, Path]:
    """The configs shipped in ``folder`` (training configs, or :data:`CAMPAIGNS`), by name."""
    return {path.stem: path for path in sorted(folder.glob("*.yaml"))}


def command_of(raw: dict, path: Path) -> str:
    """The command that reads a config file (a key of :data:`moldiff.config.SCHEMAS`), from its keys."""
    if path.parent.resolve() == CAMPAIGNS.resolve() or "n_molecules" in raw:
        return "campaign"
    if "flowmap" in raw:
        return "train-flowmap"
    if {"targets", "noisy"} & set(raw):
        return "train-predictor"
    if {"n", "output", "sampling", "guidance", "scaffold", "steer"} & set(raw):
        return "sample"
    return "train"


def find_config(name: str | Path, folder: Path = CONFIGS, usage: str = "--config {}") -> Path:
    """A config file: ``name`` itself when it exists, else the shipped config of that name.

    Args:
        name: a path, or the name of a config in ``folder`` (``qm9_builtin``).
        folder: where the shipped configs of this kind live.
        usage: how a shipped config is named on the command line, for the error message.
    """
    path = Path(name)
    if path.exists():
        return path
    shipped = shipped_configs(folder)
    if str(name) in shipped:
        return shipped[str(name)]
    if path.suffix in (".yaml", ".yml") and path.stem in shipped:  # a path to a shipped config elsewhere
        raise MoldiffError(f"config file not found: {name}; the shipped configs are now found by name "
                           f"({usage.format(path.stem)})")  # fmt: skip
    raise MoldiffError(f"config file not found: {name} (shipped configs: {', '.join(shipped) or 'none'})")


def read_config(path: Path) -> dict:
    """The mapping a YAML config file holds."""
    try:
        raw = yaml.safe_load(path.read_text())
    except IsADirectoryError:
        raise MoldiffError(f"config {path} is a directory, not a file") from None
    except yaml.YAMLError as exc:
        raise MoldiffError(f"config {path} is not valid YAML: {' '.join(str(exc).split())[:160]}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise MoldiffError(f"config {path} must be a mapping of keys")
    return raw


def load_config(name: str | Path | None, overrides: Sequence[str | tuple[str, object]] = (),
                schema: type[BaseModel] | None = None, *, changes: Mapping | None = None,
                origins: Mapping[str, str] | None = None, folder: Path = CONFIGS, usage: str = "--config {}"):  # fmt: skip
    """Read a config (the schema's defaults when ``name`` is None), apply overrides, validate.

    Args:
        name: a YAML file, or the name of a config shipped in ``folder`` (see :func:`find_config`).
        overrides: ``a.b=value`` strings (``--set``, values read as YAML) or (``a.b``, value) pairs.
        schema: the model to validate against (default :class:`~moldiff.config.RunConfig`).
        changes: a nested mapping merged in last (see :func:`merged`).
        origins: dotted keys set by command-line options, and the option's name, which errors name.
        folder, usage: where shipped configs of this kind live, and how they are named (errors).
    """
    raw, source = {}, None
    if name is not None:
        raw, source = read_config(find_config(name, folder, usage)), str(name)
    raw = merged(apply_overrides(raw, overrides), changes or {})
    keys = [o.partition("=")[0].strip() for o in overrides if isinstance(o, str)]
    return validate_config(raw, schema, source, {**{k: f"--set {k}" for k in keys}, **(origins or {})})


def validate_config(raw: dict, schema: type[BaseModel] | None = None, source: str | None = None,
                    origins: dict[str, str] | None = None):  # fmt: skip
    """``raw`` validated against ``schema`` (default :class:`~moldiff.config.RunConfig`); a one-line
    MoldiffError naming the key otherwise (prefixed by ``source``, or by the option in ``origins``)."""
    schema = schema or RunConfig
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        raise MoldiffError(format_error(exc, schema, source, origins)) from None


def is_flowmap_config(name: str | Path | None, overrides: Sequence[str] = ()) -> bool:
    """Whether a config (or an override) has a ``flowmap`` section, i.e. describes a flow-map run."""
    if any(o.split("=", 1)[0].strip().startswith("flowmap.") for o in overrides):
        return True
    if name is None:
        return False
    try:
        return "flowmap" in read_config(find_config(name))
    except (OSError, MoldiffError):
        return False  # load_config reports it


def dump_yaml(config: BaseModel) -> str:
    """A resolved config (every default filled in) as YAML."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
