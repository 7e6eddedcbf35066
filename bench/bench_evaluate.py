"""Speed of the EDM evaluator on 10,000 QM9 molecules (target: under 15 s on 2 CPU cores).

    python bench/bench_evaluate.py [--repeats 3]

The set is the 13,083-molecule test split's first 8,000 molecules plus the validation split's
first 2,000 (QM9-sized molecules, 9 to 29 atoms). Times ``evaluate`` (bonds, stability, RDKit
validity, uniqueness, novelty against the cached QM9 training reference), and separately reading
the same molecules back from an SDF file. Writes ``bench/results/evaluate.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from moldiff.chem.evaluate import evaluate
from moldiff.chem.io import read_sdf, write_sdf
from moldiff.chem.reference import qm9_train_reference_smiles
from moldiff.data.molset import MolSet
from moldiff.data.qm9 import load_qm9
from moldiff.paths import atomic_write_text

RESULTS = Path(__file__).parent / "results" / "evaluate.json"


def benchmark_set() -> MolSet:
    return MolSet.concat([load_qm9("test").subset(slice(0, 8000)), load_qm9("valid").subset(slice(0, 2000))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    molset = benchmark_set()
    t0 = time.perf_counter()
    reference = qm9_train_reference_smiles()
    reference_s = time.perf_counter() - t0

    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        summary, _ = evaluate(molset, reference)
        times.append(time.perf_counter() - t0)

    with tempfile.TemporaryDirectory() as tmp:
        sdf = Path(tmp) / "bench.sdf"
        write_sdf(sdf, molset)
        t0 = time.perf_counter()
        read_sdf(sdf)
        read_s = time.perf_counter() - t0

    best = min(times)
    result = {
        "n_molecules": len(molset),
        "n_atoms": int(molset.n_atoms.sum()),
        "evaluate_seconds": [round(t, 3) for t in times],
        "evaluate_best_seconds": round(best, 3),
        "molecules_per_second": round(len(molset) / best, 1),
        "read_sdf_seconds": round(read_s, 3),
        "reference_load_seconds": round(reference_s, 3),
        "metrics": {k: v for k, v in summary.items() if isinstance(v, float)},
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "rdkit": __import__("rdkit").__version__,
    }
    atomic_write_text(RESULTS, json.dumps(result, indent=2) + "\n")
    print(f"evaluate: {len(molset)} molecules in {best:.2f} s (best of {args.repeats}: "
          f"{', '.join(f'{t:.2f}' for t in times)}), {len(molset) / best:.0f} molecules/s")  # fmt: skip
    print(f"read_sdf: {read_s:.2f} s; reference load: {reference_s:.2f} s; results in {RESULTS}")


if __name__ == "__main__":
    main()
