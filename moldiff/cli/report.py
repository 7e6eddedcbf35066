"""``moldiff report DIR``: rebuild a campaign's offline HTML report from its files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from moldiff.cli.main import app


@app.command("report")
def report_command(
    folder: Annotated[Path, typer.Argument(help="A finished campaign directory.")],
) -> None:
    """Regenerate DIR/report.html (self-contained, works offline)."""
    from moldiff.campaign.report import write_report
    from moldiff.errors import MoldiffError

    if not folder.is_dir():
        raise MoldiffError(f"no such campaign directory: {folder}")
    print(write_report(folder))
