"""``moldiff evaluate FILE``: score molecules in an SDF or XYZ file with the EDM protocol, or, with
``--graph``, judge the bonds and charges an SDF writes together with its coordinates
(:mod:`moldiff.chem.graph_eval`).

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
    graph: Annotated[bool, typer.Option("--graph", help="Judge the SDF's bonds and charges as written, and "
                                        "them against the coordinates (EDM metrics beside).")] = False,
    posebusters: Annotated[bool, typer.Option("--posebusters/--no-posebusters",
                                              help="--graph: PoseBusters 'mol' checks (slow on drug-sized molecules).")] = True,
    xtb: Annotated[int, typer.Option(help="--graph: relax this many valid molecules with GFN2-xTB (needs tblite).")] = 0,
    workers: Annotated[int, typer.Option("--workers", "-j", help="--graph: processes for the per-molecule work.")] = 1,
) -> None:
    """Atom/molecule stability, validity, uniqueness and novelty (EDM protocol), or the graph as
    written (--graph)."""  # fmt: skip
    from moldiff.chem.evaluate import evaluate as run_evaluation
    from moldiff.chem.io import read_molecules

    if reference is not None and no_novelty:
        raise MoldiffError("--reference and --no-novelty exclude each other")
    if graph:
        _evaluate_graph(file, json_out, reference, no_novelty, out_csv, posebusters, xtb, workers)
        return
    molset, rejects = read_molecules(file)
    _warn_rejects(file, molset, rejects)
    if not (molset.atomic_numbers == 1).any():
        print(f"warning: {file} has no hydrogen atoms; the EDM protocol expects explicit hydrogens, "
              "so stability and validity will be low", file=sys.stderr)  # fmt: skip
    ref_smiles, ref_label = _reference(reference, no_novelty)
    summary, frame = run_evaluation(molset, ref_smiles, rejects=rejects)
    summary = {"file": str(file), **summary, "reference": ref_label, "protocol": "EDM (Hoogeboom et al. 2022)"}
    _report(summary, frame, json_out, out_csv, _print_table)


def _report(summary: dict, frame, json_out: bool, out_csv: Path | None, print_table) -> None:
    """Write the per-molecule CSV if asked, then the summary as JSON or as a table."""
    from moldiff.paths import atomic_write_text

    if out_csv is not None:
        atomic_write_text(out_csv, frame.to_csv(index=False))
    if json_out:
        print(json.dumps(summary))
    else:
        print_table(summary)


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


def _evaluate_graph(file: Path, json_out: bool, reference: Path | None, no_novelty: bool, out_csv: Path | None,
                    posebusters: bool, xtb: int, workers: int) -> None:  # fmt: skip
    from moldiff.chem.graph_eval import evaluate_graphs
    from moldiff.chem.io import SDF_SUFFIXES, read_sdf

    if file.suffix.lower() not in SDF_SUFFIXES:
        raise MoldiffError(f"--graph judges the bonds an SDF writes; {file.name} is not an SDF (.sdf, .sd, .mol)")
    if xtb < 0 or workers < 1:
        raise MoldiffError(f"--xtb must be >= 0 and --workers >= 1, got {xtb} and {workers}")
    molset, rejects = read_sdf(file, require_bonds=True)
    _warn_rejects(file, molset, rejects)
    ref_smiles, ref_label = _graph_reference(reference, no_novelty)
    summary, frame = evaluate_graphs(molset, ref_smiles, rejects=rejects, posebusters=posebusters,
                                     xtb_sample=xtb, workers=workers)  # fmt: skip
    summary = {"file": str(file), **summary, "reference": ref_label, "protocol": "graph as written (moldiff.chem.graph_eval)"}
    _report(summary, frame, json_out, out_csv, _print_graph_table)


def _warn_rejects(file: Path, molset, rejects) -> None:
    if rejects:
        index, why = rejects[0]
        print(f"warning: {len(rejects)} of {len(molset) + len(rejects)} molecules in {file} could not be read and count "
              f"as invalid (first: molecule {index}: {why})", file=sys.stderr)  # fmt: skip


def _graph_reference(path: Path | None, no_novelty: bool):
    """Reference SMILES in the one canonical form: a file's (an SDF's own bonds), or QM9's training
    split as its SMILES state it."""
    from moldiff.chem.rdmol import canonicalize_smiles

    if no_novelty:
        return None, None
    if path is not None:
        if path.suffix.lower() in (".sdf", ".sd", ".mol"):
            from moldiff.chem.io import read_sdf
            from moldiff.chem.smiles import sdf_smiles

            molset, _ = read_sdf(path)
            smiles = {c for s, _ in sdf_smiles(path, molset.ids) if s for c in [canonicalize_smiles(s)] if c}
        else:
            from moldiff.chem.reference import read_reference_smiles

            smiles = read_reference_smiles(path)
        return smiles, f"{path} ({len(smiles)} unique SMILES)"
    from moldiff.chem.reference import qm9_train_graph_smiles

    smiles = qm9_train_graph_smiles()
    return smiles, f"QM9 training split, its SMILES ({len(smiles)} unique)"


def _print_graph_table(summary: dict) -> None:
    from moldiff.cli.display import print_graph_summary

    print_graph_summary(summary, title=f"graph metrics: {summary['file']}")
    print(f"novelty reference: {summary['reference'] or 'none (--no-novelty)'}")
