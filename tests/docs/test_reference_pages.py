"""The generated reference pages of the documentation say what the code says: every command and
option of the `moldiff` command, every key of every config model with its default."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

ROOT = Path(__file__).parents[2]
SCRIPTS = ROOT / "docs" / "scripts"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cli():
    return _load("cli_reference")


@pytest.fixture(scope="module")
def config():
    return _load("config_reference")


def _commands(command, path):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, [*path, name])


def test_every_command_and_option_is_on_the_cli_page(cli):
    root = cli.root_command()
    page = cli.render_cli_reference(root)
    for path, command in _commands(root, ["moldiff"]):
        assert f"`{' '.join(path)}`" in page
        for param in command.params:
            for opt in [*param.opts, *param.secondary_opts]:
                shown = f"`{param.name.upper()}`" if not opt.startswith("-") else f"`{opt}`"
                assert shown in page, f"{' '.join(path)} {opt}"


def _section(page: str, path: list[str]) -> str:
    """The part of the page under the heading of command ``path``, up to the next heading."""
    lines = page.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("#") and line.endswith(f"`{' '.join(path)}`"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    return "\n".join(lines[start:end])


def test_each_option_row_gives_its_default_and_help(cli):
    root = cli.root_command()
    page = cli.render_cli_reference(root)
    checked = 0
    for path, command in _commands(root, ["moldiff"]):
        for param in command.params:
            if not param.opts[0].startswith("-"):
                continue
            row = next(line for line in _section(page, path).splitlines() if line.startswith(f"| `{param.opts[0]}`"))
            if getattr(param, "help", None):
                assert " ".join(param.help.split()).replace("|", "\\|") in row
            if isinstance(param.default, int) and not isinstance(param.default, bool):
                assert f"`{param.default}`" in row
                checked += 1
    assert checked > 0


def _leaves(model: type[BaseModel], prefix: str = ""):
    for name, field in model.model_fields.items():
        yield f"{prefix}{name}", field


def test_every_key_of_every_schema_is_on_the_configuration_page(config):
    found = config.schemas()
    page = config.render_config_reference(found)
    assert {"train", "campaign"} <= set(found)
    for command, model in found.items():
        section = page.split(f"## `moldiff {command}`", 1)[1].split("\n## ", 1)[0]
        for path, field in _leaves(model):
            assert f"| `{path}` |" in section, f"{command}: {path}"
        for path, kind, default, _ in config.rows(model):
            assert f"| `{path}` | " in section


def test_configuration_page_shows_defaults_and_source_comments(config):
    class Inner(BaseModel):
        rate: float = 0.5  # how fast it goes

    class Outer(BaseModel):
        """An example section."""

        # the inner section
        inner: Inner = Inner()
        names: list[str] = ["a", "b"]
        shares: dict[str, Inner] = {}

    table = {row[0]: row for row in config.rows(Outer)}
    assert table["inner"][3] == "the inner section"
    assert table["inner.rate"][1:] == ("number", "`0.5`", "how fast it goes")
    assert table["names"][2] == "`[a, b]`"
    assert "shares.<name>.rate" in table
