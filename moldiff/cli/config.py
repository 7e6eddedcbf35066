"""``moldiff config list`` and ``moldiff config show``: the configs shipped with moldiff, and any
config resolved as its command reads it."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from moldiff.cli.main import app

config_app = typer.Typer(help="The configs shipped with moldiff, resolved with every default.", no_args_is_help=True)
app.add_typer(config_app, name="config")

USAGE = {"train": "moldiff train --config {}", "train-flowmap": "moldiff train-flowmap --config {}",
         "train-predictor": "moldiff train-predictor --config {}", "sample": "moldiff sample --config {}",
         "campaign": "moldiff campaign run {}"}  # fmt: skip


@config_app.command("list")
def list_command() -> None:
    """List the shipped configs by name, each with the command that runs it."""
    from moldiff.config import CAMPAIGNS, CONFIGS, command_of, read_config, shipped_configs

    for folder in (CONFIGS, CAMPAIGNS):
        for name, path in shipped_configs(folder).items():
            print(f"{name:<24} {USAGE[command_of(read_config(path), path)].format(name)}")


@config_app.command("show")
def show_command(
    name: Annotated[Optional[str], typer.Argument(help="A shipped config's name or a YAML file (none: the "
                                                  "command's defaults).")] = None,  # fmt: skip
    command: Annotated[Optional[str], typer.Option("--for", help="The command that reads it: train, train-flowmap, "
                                                   "train-predictor, sample or campaign (default: told by its keys; "
                                                   "train without a NAME).")] = None,  # fmt: skip
    overrides: Annotated[Optional[list[str]], typer.Option("--set", help="Override a key: --set train.lr=1e-4")] = None,
) -> None:
    """Print a config as its command reads it: every key, with the defaults filled in, as YAML."""
    from moldiff.config import (CAMPAIGNS, CONFIGS, command_of, dump_yaml, find_config, load_config, read_config,
                                schemas, shipped_configs)
    from moldiff.errors import MoldiffError

    path = None if name is None else find_config(name, CAMPAIGNS if name in shipped_configs(CAMPAIGNS) else CONFIGS)
    command = command or (command_of(read_config(path), path) if path is not None else "train")
    if command not in schemas():
        raise MoldiffError(f"--for {command!r}: expected one of {', '.join(schemas())}")
    print(dump_yaml(load_config(path, overrides or [], schemas()[command])), end="")
