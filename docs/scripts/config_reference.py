"""The configuration reference page, generated from the config models themselves.

``moldiff.config.SCHEMAS`` maps each command that reads a YAML file to its pydantic model. Every
field is walked recursively and listed with its key path, type, default and description. The
description is the field's own ``description`` when it has one, else the comments written beside
and above the field in the source, so the page says what the code says.

Usage: ``python docs/scripts/config_reference.py > configuration.md``; the site's build hook calls
:func:`render_config_reference`.
"""

from __future__ import annotations

import inspect
import io
import re
import sys
import textwrap
import tokenize
import typing
from enum import Enum

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

TYPE_WORDS = {int: "integer", float: "number", str: "text", bool: "boolean", type(None): "null"}
FIELD_LINE = re.compile(r"^(\s+)(\w+)\s*:")


def schemas() -> dict[str, type[BaseModel]]:
    """The config model of each command, by command name."""
    import moldiff.config as config

    found = getattr(config, "SCHEMAS", None)
    if found:
        return dict(found)
    from moldiff.campaign.config import CampaignConfig

    return {"train": config.RunConfig, "train-flowmap": config.FlowMapRunConfig,
            "train-predictor": config.PredictorConfig, "campaign": CampaignConfig}  # fmt: skip


# -- descriptions from the source ---------------------------------------------------------------------


def _class_comments(cls: type) -> dict[str, str]:
    """``{field: comment}`` from one class body: comment lines right above a field and the comment
    at the end of its line."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    trailing: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            trailing[token.start[0]] = token.string.lstrip("#").strip()
    lines = source.splitlines()
    body_indent = None
    comments: dict[str, str] = {}
    above: list[str] = []
    for number, line in enumerate(lines[1:], start=2):
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(trailing.get(number, ""))
            continue
        match = FIELD_LINE.match(line)
        if match and (body_indent is None or len(match.group(1)) == body_indent):
            body_indent = len(match.group(1))
            own = trailing.get(number, "")
            own = "" if own.startswith(("fmt:", "noqa", "type:")) else own
            comments[match.group(2)] = " ".join(p for p in [*above, own] if p)
        above = []
    return comments


def field_comments(model: type[BaseModel]) -> dict[str, str]:
    """Comments of every field of ``model``, its own class winning over the classes it extends."""
    merged: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if isinstance(cls, type) and issubclass(cls, BaseModel) and cls is not BaseModel:
            merged.update({k: v for k, v in _class_comments(cls).items() if v})
    return merged


# -- types and defaults -------------------------------------------------------------------------------


def _models_in(annotation, in_mapping: bool = False) -> list[tuple[type[BaseModel], bool]]:
    """The config models a field holds, each with whether it sits in a mapping (``{name: model}``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, in_mapping)]
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is dict and len(args) == 2:
        return _models_in(args[1], True)
    return [found for arg in args for found in _models_in(arg, in_mapping)]


def type_text(annotation) -> str:
    """A readable type: ``integer``, ``text or null``, ``list of text``, ``fp32 | bf16 | auto``..."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join(type_text(a) for a in args)
    if origin in (list, tuple, set, frozenset):
        inner = [a for a in args if a is not Ellipsis]
        if origin is tuple and len(inner) > 1:
            return "pair of " + " and ".join(type_text(a) for a in inner) if len(inner) == 2 else "tuple"
        return "list of " + (type_text(inner[0]) if inner else "values")
    if origin is dict:
        value = type_text(args[1]) if len(args) == 2 else "value"
        return f"mapping of name to {value}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    if annotation is typing.Any:
        return "any"
    return TYPE_WORDS.get(annotation, getattr(annotation, "__name__", str(annotation)))


def default_text(field) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is PydanticUndefined:
        return "–"
    if isinstance(value, BaseModel):
        return "see below"
    if value is None:
        return "`null`"
    if value == "":
        return '`""`'
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, (list, tuple)):
        return "`[" + ", ".join(str(v) for v in value) + "]`"
    if isinstance(value, dict):
        return "`{}`" if not value else "`{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}`"
    return f"`{value}`"


def constraints(field) -> str:
    """Bounds declared on the field (``≥ 1``, ``< 1``...)."""
    words = []
    for item in field.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"), ("min_length", "length ≥")):
            bound = getattr(item, attr, None)
            if bound is not None:
                words.append(f"{sign} {bound}")
        if getattr(item, "pattern", None):
            words.append(f"matches `{item.pattern}`")
    return ", ".join(words)


# -- the walk ------------------------------------------------------------------------------------------


def rows(model: type[BaseModel], prefix: str = "", seen: tuple = ()) -> list[tuple[str, str, str, str]]:
    """(key path, type, default, description) of every field, sections followed by their keys."""
    comments = field_comments(model)
    out = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        description = field.description or comments.get(name, "")
        bounds = constraints(field)
        if bounds:
            description = f"{description} ({bounds})" if description else bounds[0].upper() + bounds[1:]
        nested = [(m, in_mapping) for m, in_mapping in _models_in(field.annotation) if m not in seen]
        out.append((path, type_text(field.annotation), default_text(field), description))
        for sub, in_mapping in nested:
            doc = inspect.getdoc(sub) or ""
            if doc and not description and doc != inspect.getdoc(BaseModel):
                out[-1] = (*out[-1][:3], " ".join(doc.split()))
            out += rows(sub, f"{path}.<name>." if in_mapping else f"{path}.", (*seen, model, sub))
    return out


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|") if "\\|" not in str(text) else " ".join(str(text).split())


def command_section(command: str, model: type[BaseModel]) -> str:
    doc = inspect.getdoc(model) or ""
    doc = "" if doc == inspect.getdoc(BaseModel) else " ".join(doc.split())
    lines = [f"## `moldiff {command}`", doc, f"The model is `{model.__module__}.{model.__qualname__}`.",
             "| key | type | default | description |\n|---|---|---|---|"]  # fmt: skip
    table = [f"| `{path}` | {_cell(kind)} | {_cell(default)} | {_cell(text)} |" for path, kind, default, text in rows(model)]
    lines[-1] += "\n" + "\n".join(table)
    return "\n\n".join(line for line in lines if line)


def render_config_reference(found: dict[str, type[BaseModel]] | None = None) -> str:
    """The whole configuration reference as one Markdown page."""
    found = found or schemas()
    intro = [
        "# Configuration",
        "Every key of every YAML file moldiff reads, generated from the config models when the site "
        "is built. Files are strict: an unknown key or a value of the wrong type is a one-line error "
        "that names the key. On the command line, `--set KEY=VALUE` changes any key of a training "
        "config (`--set train.lr=1e-4`, `--set data.elements=[H,C,N,O,F]`); values are read as YAML.",
        "`<name>` in a key stands for a name you choose (a score in `filters.ranges.<name>`, for "
        "instance). Sections whose default is `null` are off until given.",
        "Sections: " + ", ".join(f"[`moldiff {c}`](#moldiff-{c})" for c in found) + ".",
    ]
    return "\n\n".join(intro + [command_section(c, m) for c, m in found.items()]) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render_config_reference())
