"""``moldiff evaluate FILE``: score molecules in an SDF or XYZ file with the EDM protocol.

Molecules of the file that cannot be read (unparsable, no 3D coordinates, unknown element...) are
reported on stderr and count as generated but invalid: a generator that writes an unreadable
molecule has failed on it, so dropping it would flatter the metrics.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from moldiff.cli.main import app
from moldiff.errors import MoldiffError



@app.command()
def evaluate(
    file: Annotated[Path, typer.Argument(help="Molecules to score: .sdf or multi-molecule .xyz, with hydrogens.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout, no table.")] = False,
    reference: Annotated[
        Optional[Path],
        typer.Option(help="Reference molecules for novelty (.sdf, .xyz, .smi, .csv). Default: QM9's training split."),
    ] = None,
    no_novelty: Annotated[bool, typer.Option("--no-novelty", help="Skip novelty (no reference needed).")] = False,
    out_csv: Annotated[
        Optional[Path], typer.Option(help="Write one row per molecule (SMILES or failure reason) here.")
    ] = None,
) -> None:
    """Atom/molecule stability, validity, uniqueness and novelty (EDM protocol)."""
    from moldiff.chem.evaluate import evaluate as run_evaluation
    from moldiff.chem.io import read_molecules
    from moldiff.paths import atomic_write_text

    if reference is not None and no_novelty:
        raise MoldiffError("--reference and --no-novelty exclude each other")
    molset, rejects = read_molecules(file)
    if rejects:
        index, why = rejects[0]
        n_total = len(molset) + len(rejects)
        print(f"warning: {len(rejects)} of {n_total} molecules in {file} could not be read and count as invalid "
              f"(first: molecule {index}: {why})", file=sys.stderr)  # fmt: skip
    if not (molset.atomic_numbers == 1).any():
        print(f"warning: {file} has no hydrogen atoms; the EDM protocol expects explicit hydrogens, "
              "so stability and validity will be low", file=sys.stderr)  # fmt: skip
    ref_smiles, ref_label = _reference(reference, no_novelty)
    summary, frame = run_evaluation(molset, ref_smiles, rejects=rejects)
    summary = {"file": str(file), **summary, "reference": ref_label, "protocol": "EDM (Hoogeboom et al. 2022)"}
    if out_csv is not None:
        atomic_write_text(out_csv, frame.to_csv(index=False))
    if json_out:
        print(json.dumps(summary))
    else:
        _print_table(summary)


def _reference(path: Path | None, no_novelty: bool) -> tuple[set[str] | None, str | None]:
    from moldiff.chem.reference import qm9_train_reference_smiles, read_reference_smiles

    if no_novelty:
        return None, None
    if path is not None:
        smiles = read_reference_smiles(path)
        return smiles, f"{path} ({len(smiles)} unique SMILES)"
    from moldiff.chem.reference import qm9_reference_cache

    if not qm9_reference_cache().exists():
        print("computing QM9 training-split reference SMILES once (about 15 s; cached)...", file=sys.stderr)
    smiles = qm9_train_reference_smiles()
    return smiles, f"QM9 training split ({len(smiles)} unique SMILES)"


def _print_table(summary: dict) -> None:
    from moldiff.cli.display import print_summary

    print_summary(summary, title=f"EDM metrics: {summary['file']}")
    print(f"novelty reference: {summary['reference'] or 'none (--no-novelty)'}")
