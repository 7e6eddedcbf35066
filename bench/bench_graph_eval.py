"""The graph evaluator: its calibration on QM9's own graphs, and the built-in models as a new user
meets them.

    python bench/bench_graph_eval.py [--threads 2] [-n 300] [--samples DIR]

(a) Calibration: the whole QM9 test split with the bonds and charges of its SMILES
    (``load_qm9_graphs('test')``) must pass every check of :mod:`moldiff.chem.graph_eval`;
    PoseBusters ``mol`` and GFN2-xTB ΔE_relax on the first molecules of the split.
(b) Baseline: ``moldiff sample -n 300 --model M`` for the built-in coordinate-only ``qm9-edm``
    and ``drugs`` models; the molecules are judged with the bonds the SDF writes (the EDM distance
    rule) and, separately, with xyz2mol's bonds and charges. These are the numbers graph models
    must beat (floors of the drug-like and QM9 graph models: valid, connected and
    geometry-consistent >= 50 %, PoseBusters mol >= 50 %; valid and connected >= 93 %,
    charge-aware stable >= 90 %).

Writes bench/results/graph_eval.json. ``--samples DIR`` reuses ``DIR/<model>.sdf`` written by the
same command earlier (sampling 300 drug-like molecules takes ~20 min on two CPU cores); parts can
be run apart (``--models``, ``--skip-calibration``), each keeping the others' results in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
FLOORS = {
    "drugs": {"valid_connected_consistent": 0.50, "posebusters_pass": 0.50},
    "qm9-edm": {"valid_connected": 0.93, "mol_stability": 0.90},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=300, help="molecules sampled per model")
    parser.add_argument("--threads", "-j", type=int, default=2, help="processes for the per-molecule work")
    parser.add_argument("--samples", type=Path, default=None, help="folder with <model>.sdf to reuse or keep")
    parser.add_argument("--models", nargs="*", default=["qm9-edm", "drugs"])
    parser.add_argument("--calibration-posebusters", type=int, default=100, help="QM9 test molecules for PoseBusters")
    parser.add_argument("--xtb-qm9", type=int, default=30, help="molecules relaxed with GFN2-xTB per qm9 row")
    parser.add_argument("--xtb-drugs", type=int, default=16, help="molecules relaxed with GFN2-xTB per drugs row")
    parser.add_argument("--skip-calibration", action="store_true", help="keep the calibration of an earlier --out")
    parser.add_argument("--out", type=Path, default=RESULTS / "graph_eval.json")
    args = parser.parse_args()

    start = time.perf_counter()
    record: dict = {"command": "python bench/bench_graph_eval.py " + " ".join(sys.argv[1:]), "threads": args.threads}
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    if not args.skip_calibration:
        record["calibration"] = {"command": record["command"], **calibration(args)}
        _dump(args.out, record)
    elif "calibration" in previous:  # run in parts: keep what an earlier run measured
        record["calibration"] = previous["calibration"]
    record["models"] = {k: v for k, v in previous.get("models", {}).items() if k not in args.models}
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.samples or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for model in args.models:
            record["models"][model] = {"command": record["command"], **baseline(model, folder, args)}
            _dump(args.out, record)
    record["seconds"] = time.perf_counter() - start
    _dump(args.out, record)
    print(f"wrote {args.out} ({record['seconds']:.0f} s)")


def calibration(args) -> dict:
    from moldiff.chem.graph_eval import evaluate_graphs
    from moldiff.chem.graphs import load_qm9_graphs

    molset, unplaced = load_qm9_graphs("test")
    t0 = time.perf_counter()
    summary, frame = evaluate_graphs(molset, posebusters=False, workers=args.threads)
    seconds = time.perf_counter() - t0
    first = molset.subset(np.arange(min(args.calibration_posebusters, len(molset))))
    pb_summary, pb_frame = evaluate_graphs(first, posebusters=True, xtb_sample=args.xtb_qm9, edm=False,
                                           workers=args.threads)  # fmt: skip
    out = {
        "set": "QM9 test split (EDM split), bonds and charges of its SMILES placed on its coordinates",
        "n_unplaced": len(unplaced),
        "summary": _rounded(summary),
        "seconds": seconds,
        "failures": _failures(frame),
        "posebusters": {"n": len(first), "posebusters_pass": pb_summary["posebusters_pass"],
                        "posebusters_pass_se": pb_summary["posebusters_pass_se"],
                        "failed_checks": _counts(pb_frame["pb_failed"])},  # fmt: skip
        "xtb": pb_summary.get("xtb"),
    }
    print("calibration:", json.dumps(_headline(summary)), file=sys.stderr)
    return out


def baseline(model: str, folder: Path, args) -> dict:
    from moldiff.chem.graph_eval import evaluate_graphs
    from moldiff.chem.io import read_sdf
    from moldiff.chem.rdmol import rdkit_quiet
    from moldiff.chem.scoring import xyz2mol_molecules

    sdf = folder / f"{model}.sdf"
    command = ["moldiff", "sample", "-n", str(args.n), "--model", model, "-o", str(sdf), "--json"]
    sample_seconds = None
    if not sdf.exists():
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", *command], check=True, stdout=subprocess.DEVNULL)
        sample_seconds = time.perf_counter() - t0
    posebusters = model == "drugs"  # the floor that needs it; on QM9 it costs minutes and bounds nothing
    k = args.xtb_drugs if model == "drugs" else args.xtb_qm9
    out: dict = {"sample_command": " ".join(command[:-3] + ["-o", f"{model}.sdf"]), "sample_seconds": sample_seconds}

    molset, rejects = read_sdf(sdf, require_bonds=True)
    t0 = time.perf_counter()
    summary, frame = evaluate_graphs(molset, rejects=rejects, posebusters=posebusters, xtb_sample=k,
                                     workers=args.threads)  # fmt: skip
    out["sdf_bonds"] = {"bonds": "as moldiff sample writes them (the EDM distance rule), neutral atoms",
                        "summary": _rounded(summary), "failures": _failures(frame),
                        "seconds": time.perf_counter() - t0}  # fmt: skip
    print(f"{model}, SDF bonds:", json.dumps(_headline(summary)), file=sys.stderr)

    coords, _ = read_sdf(sdf)
    with rdkit_quiet():
        mols, reasons = xyz2mol_molecules(coords)  # the SDF's bonds left aside
    kept = [i for i, m in enumerate(mols) if m is not None]
    failed = [(int(coords.ids[i]), reasons[i]) for i, m in enumerate(mols) if m is None]
    t0 = time.perf_counter()
    summary, frame = evaluate_graphs([mols[i] for i in kept], rejects=failed, posebusters=posebusters, xtb_sample=k,
                                     edm=False, workers=args.threads)  # fmt: skip
    out["xyz2mol"] = {"bonds": "RDKit xyz2mol (DetermineBonds, total charge 0): its bonds and formal charges",
                      "n_xyz2mol_failed": len(failed), "summary": _rounded(summary), "failures": _failures(frame),
                      "seconds": time.perf_counter() - t0}  # fmt: skip
    print(f"{model}, xyz2mol:", json.dumps(_headline(summary)), file=sys.stderr)
    out["floors"] = {key: {"floor": floor, "sdf_bonds": out["sdf_bonds"]["summary"].get(key),
                           "xyz2mol": out["xyz2mol"]["summary"].get(key)} for key, floor in FLOORS[model].items()}  # fmt: skip
    return out


def _failures(frame, top: int = 8) -> dict:
    """The most common reasons a molecule failed each check."""
    invalid = frame.loc[~frame["valid"].fillna(False).astype(bool), "failure"]
    unstable = frame.loc[~frame["stable"].fillna(False).astype(bool), "unstable_atoms"].dropna()
    atoms = Counter(note.split(":")[0] for notes in unstable for note in str(notes).split("; ") if note)
    inconsistent = frame[~frame["geometry_consistent"].fillna(False).astype(bool)]
    return {
        "invalid": _counts(invalid.map(_reason), top),
        "unstable_atoms_by_element": dict(atoms.most_common(top)),
        "geometry": {"n_inconsistent": len(inconsistent),
                     "with_missing_bonds": int((inconsistent["n_missing_bonds"].fillna(0) > 0).sum()),
                     "with_extra_bonds": int((inconsistent["n_extra_bonds"].fillna(0) > 0).sum())},  # fmt: skip
    }


def _reason(text: str) -> str:
    """A failure reason without the atom index, so that reasons can be counted."""
    import re

    return re.sub(r"\b(atom|atoms|index)\s*#?\s*\d+", r"\1 #", str(text))[:120]


def _counts(values, top: int = 8) -> dict:
    return dict(Counter(v for v in values if v).most_common(top))


def _headline(summary: dict) -> dict:
    keys = ("validity", "valid_connected", "mol_stability", "geometry_consistency", "valid_connected_consistent",
            "posebusters_pass")  # fmt: skip
    return {k: round(summary[k], 4) for k in keys if summary.get(k) is not None}


def _rounded(value):
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _dump(path: Path, record: dict) -> None:
    path.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
