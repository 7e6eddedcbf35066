"""``moldiff campaign run FILE|NAME [--set KEY=VALUE] [--shard K/N] [--resume]``, ``moldiff campaign
merge DIR...`` and ``moldiff campaign regenerate DIR INDEX...``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from moldiff.cli.main import app

campaign_app = typer.Typer(help="Run generation campaigns described by a campaign file.", no_args_is_help=True)
app.add_typer(campaign_app, name="campaign")


def _log(message: str) -> None:
    print(message, file=sys.stderr)


@campaign_app.command("run")
def run_command(
    file: Annotated[str, typer.Argument(help="The campaign file (YAML), or the name of a shipped campaign "
                                        "(moldiff config list).")],  # fmt: skip
    overrides: Annotated[Optional[list[str]], typer.Option("--set", help="Override a key of the file: "
                                                           "--set sampling.steps=20")] = None,  # fmt: skip
    shard: Annotated[Optional[str], typer.Option(help="Generate only shard K of N (0 <= K < N), e.g. 0/4; "
                                                 "finish with `campaign merge`.")] = None,  # fmt: skip
    resume: Annotated[bool, typer.Option("--resume", help="Continue a campaign directory; finished batches are kept.")] = False,
    out: Annotated[Optional[Path], typer.Option("-o", "--out", help="Output directory (default: the file's output_dir).")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option(help="MLflow tracking URI.")] = None,
    track: Annotated[bool, typer.Option("--track/--no-track", help="Log the finished campaign to MLflow.")] = True,
) -> None:
    """Generate, score, filter and rank molecules; write the campaign directory and its report."""
    from moldiff.campaign.config import load_campaign
    from moldiff.campaign.runner import Shard, run_campaign
    from moldiff.cli.display import progress_bar

    config = load_campaign(file, {"output_dir": str(out)} if out is not None else None, overrides or [])
    part = Shard.parse(shard) if shard is not None else None
    total = config.n_molecules if part is None else sum(
        min(config.sampling.batch_size, config.n_molecules - b * config.sampling.batch_size)
        for b in part.batches(config.n_batches))  # fmt: skip
    with progress_bar(total, "generating") as advance:
        result = run_campaign(config, shard=part, resume=resume, tracking_uri=tracking_uri, track=track,
                              progress=advance, log=_log)  # fmt: skip
    if result is not None:
        _done(result)


@campaign_app.command("merge")
def merge_command(
    dirs: Annotated[list[Path], typer.Argument(help="Campaign directories holding the shards' batches.")],
    out: Annotated[Optional[Path], typer.Option("-o", "--out", help="Where to write the outputs (default: the first DIR).")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option(help="MLflow tracking URI.")] = None,
    track: Annotated[bool, typer.Option("--track/--no-track", help="Log the finished campaign to MLflow.")] = True,
) -> None:
    """Finish a sharded campaign: exactly the outputs of one unsplit run with the same file."""
    from moldiff.campaign.runner import merge

    _done(merge(list(dirs), out, tracking_uri=tracking_uri, track=track, log=_log))


@campaign_app.command("regenerate")
def regenerate_command(
    directory: Annotated[Path, typer.Argument(help="A campaign directory (it holds campaign.yaml).")],
    molecules: Annotated[list[int], typer.Argument(help="Molecule indices (the `index` column of molecules.csv).")],
    out: Annotated[Optional[Path], typer.Option("-o", "--out", help="SDF file to write (default: DIR/regenerated.sdf).")] = None,
) -> None:
    """Generate molecules of a campaign again from their seeds and check them against the saved ones."""
    from moldiff.campaign.runner import regenerate_saved
    from moldiff.chem.io import write_sdf
    from moldiff.chem.scoring import sdf_molecules

    again = regenerate_saved(directory, list(molecules), log=_log)
    ids = again.molecules.ids.tolist()
    target = out or directory / "regenerated.sdf"
    write_sdf(target, sdf_molecules(again.molecules), {"index": ids, "seed": again.seeds},
              names=[f"{again.config.name}_{i}" for i in ids])  # fmt: skip
    for i, d, where in zip(ids, again.deviation, again.compared_with):
        if d is None:
            verdict = "no saved copy in this directory (a shard that did not make it, or no batch files)"
        elif d == 0:
            verdict = f"identical to the campaign's ({where})"
        elif d == float("inf"):
            verdict = f"other atoms than the campaign's ({where})"
        else:
            verdict = f"differs from the campaign's ({where}) by up to {d:.2g} Å: another kind of machine or torch build?"
        print(f"molecule {i}: {verdict}")
    print(f"{len(ids)} molecules -> {target}")


def _done(result) -> None:
    m = result.metrics
    valid = "–" if m.get("validity") is None else f"{100 * m['validity']:.1f}%"
    print(f"{m['n']} generated, {m['n_valid']} valid ({valid}), {m['n_kept']} kept -> {result.out_dir}/report.html")
    if result.run_id:
        print(f"MLflow run {result.run_id}", file=sys.stderr)
