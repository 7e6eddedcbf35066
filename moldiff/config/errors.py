"""A config's validation error as one line that names the key and says what it expects:
``key 'steer.particles': expected an integer >= 1 (got 'many')``."""

from __future__ import annotations

import difflib
import types
from typing import Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def format_error(exc: ValidationError, schema: type[BaseModel], source: str | None = None,
                 origins: dict[str, str] | None = None) -> str:  # fmt: skip
    """The first (deepest) error of ``exc`` in one line, prefixed by ``source`` (a file name).

    Args:
        exc: what ``schema.model_validate`` raised.
        schema: the validated model, which says what each key expects.
        source: where the config came from, e.g. ``sample.yaml``.
        origins: dotted keys set by command-line options, and the option's name: an error of
            such a key (or inside it) names the option instead (``--particles: expected ...``).
    """
    # a union reports one error per member: the deepest is the one about the member that fits
    err = max(exc.errors(), key=lambda e: len(_key(e["loc"])))
    key = ".".join(_key(err["loc"]))
    if err["type"] == "extra_forbidden":
        text = f"unknown key {key!r}{_suggestion(schema, key)}"
    elif err["type"] == "missing":
        field = _field(schema, key)
        text = f"missing key {key!r}" + (f" (expected {expected(*field)})" if field else "")
    else:
        text = _problem(err, schema, key)
        option = next((o for k, o in (origins or {}).items() if key == k or key.startswith(f"{k}.")), None)
        if option is not None:
            return f"{option}: {text}"
        text = f"key {key!r}: {text}" if key else text
    return f"{source}: {text}" if source else text


def _key(loc) -> tuple[str, ...]:
    # union members show up in locations as tags: literal['valid'], dict[str,Objective], function-...
    return tuple(str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))


def _problem(err: dict, schema, key: str) -> str:
    if err["type"] in ("value_error", "assertion_error"):
        return err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    field = _field(schema, key)
    text = f"expected {expected(*field)}" if field else err["msg"]
    got = err.get("input")
    return text + (f" (got {got!r})" if isinstance(got, (str, int, float, bool)) else "")


def _suggestion(schema, key: str) -> str:
    parent = _field(schema, key.rpartition(".")[0]) if "." in key else (schema, [])
    model = _model(parent[0]) if parent else None
    if model is None:
        return ""
    close = difflib.get_close_matches(key.rpartition(".")[2], model.model_fields, 1)
    return f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(model.model_fields)}"


def _members(annotation) -> tuple:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _model(annotation) -> type[BaseModel] | None:
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def _field(schema, key: str) -> tuple | None:
    """(annotation, constraints) of the field at dotted ``key`` (dict keys and list indices as parts)."""
    annotation, metadata = schema, []
    for part in key.split(".") if key else []:
        model = _model(annotation)
        containers = [m for m in _members(annotation) if get_origin(m) in (dict, list, tuple)]
        if model is not None and part in model.model_fields:
            info = model.model_fields[part]
            annotation, metadata = info.annotation, info.metadata
        elif containers:
            annotation, metadata = get_args(containers[0])[-1], []
        else:
            return None
    return annotation, metadata


def expected(annotation, metadata=()) -> str:
    """What a field takes, in words: ``an integer >= 1``, ``one of 'best', 'sample'``, ``... or null``."""
    members = [m for m in _members(annotation) if m is not type(None)]
    words = " or ".join(_word(m) for m in members)
    bounds = [f"{sign} {getattr(m, name)}" for m in metadata for name, sign in _BOUNDS if hasattr(m, name)]
    nullable = len(members) < len(_members(annotation))
    return words + (" " + " and ".join(bounds) if bounds else "") + (" or null" if nullable else "")


def _word(annotation) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(annotation))
    if origin in (list, tuple):
        return "a list"
    if origin is dict:
        return "a mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return getattr(annotation, "expected", "a mapping of keys")
    return _WORDS.get(annotation, getattr(annotation, "__name__", str(annotation)))
