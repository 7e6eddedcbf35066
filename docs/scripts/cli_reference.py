"""The command-line reference page, generated from the ``moldiff`` command itself.

Walks the command tree that typer builds from ``moldiff.cli`` and writes every command with its
help text, usage, arguments and options (type, default, help), so the page always matches
``moldiff COMMAND --help``. Works with typer's own click and with its vendored copy.

Usage: ``python docs/scripts/cli_reference.py > cli.md``; the site's build hook calls
:func:`render_cli_reference`.
"""

from __future__ import annotations

import sys
import typing
from enum import Enum
from pathlib import PurePath

TYPE_WORDS = {int: "integer", float: "number", str: "text", bool: "flag"}


def root_command():
    """The click command tree of the ``moldiff`` app, with every subcommand registered."""
    import typer

    from moldiff.cli.main import _register, app

    _register()
    return typer.main.get_command(app)


def _annotation(param):
    descriptor = getattr(param, "type_descriptor", None)
    return getattr(descriptor, "annotation", None)


def type_word(param) -> str:
    """A short name for what a parameter takes: integer, number, text, path, flag, a choice..."""
    click_type = getattr(param, "type", None)
    if click_type is not None and not isinstance(click_type, type):
        choices = getattr(click_type, "choices", None)
        if choices:
            return " \\| ".join(str(c) for c in choices)
        name = getattr(click_type, "name", "")
        return "flag" if getattr(param, "is_flag", False) else name.lower()
    annotation = _annotation(param)
    if typing.get_origin(annotation) in (list, tuple):
        annotation = (typing.get_args(annotation) or (str,))[0]
    if typing.get_origin(annotation) is typing.Union:
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " \\| ".join(str(m.value) for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return "path"
    return TYPE_WORDS.get(annotation, getattr(annotation, "__name__", "text"))


def default_text(param) -> str:
    if param.required:
        return "required"
    default = param.default
    if callable(default):
        return "–"
    if getattr(param, "is_flag", False) and param.secondary_opts:
        return param.opts[0] if default else param.secondary_opts[0]
    if default is None or default == [] or default == ():
        return "–"
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, Enum):
        default = default.value
    if isinstance(default, (list, tuple)):
        default = " ".join(str(d) for d in default)
    return f"`{default}`"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _is_argument(param) -> bool:
    return getattr(param, "param_type_name", "") == "argument" or not param.opts[0].startswith("-")


def usage(path: list[str], command) -> str:
    words = [" ".join(path)]
    if getattr(command, "commands", None):
        words.append("COMMAND [ARGS]...")
        return " ".join(words)
    if any(not _is_argument(p) for p in command.params):
        words.append("[OPTIONS]")
    for param in command.params:
        if _is_argument(param):
            name = param.name.upper() + ("..." if param.nargs == -1 else "")
            words.append(name if param.required else f"[{name}]")
    return " ".join(words)


def parameter_rows(command) -> list[str]:
    rows = []
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        if _is_argument(param):
            names = f"`{param.name.upper()}`"
        else:
            names = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
        kind = type_word(param)
        if getattr(param, "multiple", False) or param.nargs == -1:
            kind += " (repeatable)"
        rows.append(f"| {names} | {_cell(kind)} | {default_text(param)} | {_cell(getattr(param, 'help', '') or '')} |")
    return rows


def _help_markdown(text: str) -> str:
    """Typer help as Markdown: paragraphs kept, single line breaks joined, \\b blocks as code."""
    paragraphs = [p for p in (text or "").strip().split("\n\n") if p.strip()]
    return "\n\n".join(" ".join(p.replace("\b", "").split()) for p in paragraphs)


def command_section(path: list[str], command) -> list[str]:
    level = "#" * min(len(path) + 1, 4)
    lines = [f"{level} `{' '.join(path)}`", _help_markdown(command.help or ""), f"```\n{usage(path, command)}\n```"]
    subcommands = {n: c for n, c in getattr(command, "commands", {}).items() if not getattr(c, "hidden", False)}
    if subcommands:
        lines.append("| command | what it does |\n|---|---|\n" + "\n".join(
            f"| [`{' '.join(path + [n])}`](#{_anchor(path + [n])}) | {_cell(_first_sentence(c.help or ''))} |"
            for n, c in subcommands.items()))  # fmt: skip
    rows = parameter_rows(command)
    if rows:
        lines.append("| argument / option | takes | default | description |\n|---|---|---|---|\n" + "\n".join(rows))
    sections = ["\n\n".join(line for line in lines if line)]
    for name, sub in subcommands.items():
        sections += command_section(path + [name], sub)
    return sections


def _first_sentence(text: str) -> str:
    first = " ".join(text.split("\n\n")[0].split())
    return first.split(". ")[0].rstrip(".") + "."


def _anchor(path: list[str]) -> str:
    """The id the Markdown ``toc`` extension gives the heading of ``path`` (its default slugify)."""
    return "-".join(path).lower()


def render_cli_reference(root=None) -> str:
    """The whole command-line reference as one Markdown page."""
    root = root or root_command()
    intro = [
        "# Command line",
        "Generated from the `moldiff` command itself when the site is built; "
        "`moldiff COMMAND --help` prints the same. Options that take several values are repeated "
        "(`--target gap=4.5eV --target mu=2`). Bad input gives a one-line `error: ...` and exit "
        "status 2.",
    ]
    sections = command_section(["moldiff"], root)
    return "\n\n".join(intro + sections) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render_cli_reference())
