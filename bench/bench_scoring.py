"""Speed of per-molecule scoring on 10,000 molecules (target: under 2 minutes on this machine,
without PoseBusters' energy check).

    python bench/bench_scoring.py [--n 10000] [--posebusters-sample 200] [--moses]

The set is QM9's test split's first 10,000 molecules as 3D coordinates, scored exactly as a
campaign scores generated molecules (:func:`moldiff.chem.scoring.score_molset`): xyz2mol bonds,
canonical SMILES, every descriptor (QED, SA, logP, MW, TPSA, HBD/HBA, rotatable bonds, Lipinski),
named PAINS/Brenk alerts, Murcko scaffold, EDM-rule validity, novelty against QM9 train and the
nearest neighbour among 20,000 training molecules. Timed apart: the set metrics (internal
diversity, scaffolds, SNN), FCD (ChemNet; the reference statistics are cached after the first
run), and PoseBusters' ``mol_fast`` checks on a sample (their per-molecule cost, extrapolated).
``--moses`` also scores 10,000 drug-like MOSES test SMILES (descriptors, alerts, neighbours; no 3D
step) to show the cost at drug-like size. Writes ``bench/results/scoring.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from moldiff.chem.reference_set import ReferenceSet
from moldiff.chem.scoring import fcd_score, score_molset, score_smiles, set_metrics
from moldiff.data.qm9 import load_qm9
from moldiff.paths import atomic_write_text

RESULTS = Path(__file__).parent / "results" / "scoring.json"


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--posebusters-sample", type=int, default=200)
    parser.add_argument("--moses", action="store_true", help="also score 10,000 MOSES test SMILES")
    parser.add_argument("--workers", type=int, default=1, help="scoring processes")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (ChemNet for FCD)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)  # on a shared 2-core machine, 2 threads oversubscribe badly

    molset = load_qm9("test").subset(slice(0, args.n))
    reference, ref_s = _timed(ReferenceSet.from_smiles, [str(s) for s in load_qm9("train").smiles], "QM9 train")
    reference.fingerprints()
    frame, score_s = _timed(score_molset, molset, reference, workers=args.workers)
    metrics, metrics_s = _timed(set_metrics, frame, reference)
    result = {
        "n": len(molset),
        "workers": args.workers,
        "torch_threads": args.threads,
        "score_seconds": round(score_s, 2),
        "molecules_per_second": round(len(molset) / score_s, 1),
        "set_metrics_seconds": round(metrics_s, 2),
        "reference_seconds": round(ref_s, 2),
        "validity_xyz2mol": metrics["validity"],
        "edm_validity": metrics["edm_validity"],
    }
    try:
        valid = list(frame.loc[frame["valid"], "smiles"])
        from moldiff.chem import fcd
        from moldiff.chem.scoring import FCD_REFERENCE

        _, stats_s = _timed(fcd.cached_statistics, reference.sample[:FCD_REFERENCE])
        value, fcd_s = _timed(fcd_score, valid, reference)
        result.update(fcd=round(value, 3), fcd_seconds=round(fcd_s, 2), fcd_reference_seconds=round(stats_s, 2))
    except Exception as exc:  # fcd not installed
        result["fcd"] = f"skipped: {exc}"
    if args.posebusters_sample:
        try:
            sample = molset.subset(slice(0, args.posebusters_sample))
            _, base_s = _timed(score_molset, sample, reference)
            _, pb_s = _timed(score_molset, sample, reference, posebusters="fast")
            per = (pb_s - base_s) / len(sample)
            result.update(posebusters_fast_ms_per_molecule=round(1000 * per, 1),
                          posebusters_fast_seconds_for_n=round(per * len(molset), 1))  # fmt: skip
        except Exception as exc:  # posebusters not installed
            result["posebusters"] = f"skipped: {exc}"
    if args.moses:
        from moldiff.data.moses import moses_smiles

        smiles = moses_smiles("test")[: args.n]
        moses_frame, moses_s = _timed(score_smiles, smiles, reference)
        result.update(moses_n=len(smiles), moses_score_seconds=round(moses_s, 2),
                      moses_mean_qed=round(float(moses_frame["qed"].mean()), 3))  # fmt: skip
    result.update(machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                  load_average=os.getloadavg()[0], note="other jobs (model training) shared the cores")  # fmt: skip
    atomic_write_text(RESULTS, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
