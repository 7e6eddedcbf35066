"""The ``moldiff`` command: a thin layer that parses, resolves names into objects, calls the
library and writes outputs. Heavy imports happen inside the commands so ``--help`` stays instant.

Every user-facing failure becomes one line on stderr and exit status 2 (no traceback).
"""

from __future__ import annotations

import sys

import typer

from moldiff.errors import MoldiffError

app = typer.Typer(
    name="moldiff",
    help="3D molecule generation with E(3)-equivariant diffusion models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def version() -> str:
    """The installed moldiff's version (the package's own where no distribution metadata is found)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("moldiff")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from moldiff import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        print(f"moldiff {version()}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                      help="Print the version and exit."),  # fmt: skip
) -> None:
    """3D molecule generation with E(3)-equivariant diffusion models."""


def _register() -> None:
    # Each command lives in its own module; importing it adds the command to ``app``.
    from moldiff.cli import campaign, config, data, evaluate, nll, predictor, report, sample, train  # noqa: F401


def _usage_errors() -> tuple[type[Exception], ...]:
    # typer >= 0.29 vendors click (its errors derive from typer.TyperException); older typer raises
    # click's own ClickException
    import click

    vendored = getattr(typer, "TyperException", None)
    return (click.exceptions.ClickException,) + ((vendored,) if vendored else ())


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning user-facing errors into a one-line message."""
    _register()
    try:
        app(args=argv, standalone_mode=False)
    except MoldiffError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"error: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort,):
        return 1
    except Exception as exc:  # usage errors (bad option value, missing option...)
        if isinstance(exc, _usage_errors()):
            if message := exc.format_message():  # empty after no_args_is_help printed the help
                print(f"error: {message}", file=sys.stderr)
            return getattr(exc, "exit_code", 2)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
