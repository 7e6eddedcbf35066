"""How many QM9 molecules get the bonds and charges of their SMILES placed on their coordinates.

    python bench/bench_qm9_graphs.py          # about two minutes on one core; writes bench/results/qm9_graphs.json

Each molecule's coordinates are read for connectivity (covalent radii) and matched to its SMILES
graph with explicit hydrogens (moldiff.chem.graphs); a molecule whose SMILES graph is not in its
coordinates is counted with the reason, per EDM split.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from moldiff.chem.graphs import load_qm9_graphs
from moldiff.data.qm9 import SPLIT_SIZES
from moldiff.paths import atomic_write_text

OUT = Path(__file__).parent / "results" / "qm9_graphs.json"


def charged(molset) -> int:
    owner = np.repeat(np.arange(len(molset)), molset.n_atoms)
    return int(len(np.unique(owner[molset.charges != 0])))


def main() -> None:
    start = time.time()
    graphs, failed = load_qm9_graphs()
    seconds = time.time() - start
    splits = {}
    for split in SPLIT_SIZES:
        part, part_failed = load_qm9_graphs(split)
        splits[split] = {"molecules": SPLIT_SIZES[split], "placed": len(part), "not_placed": len(part_failed),
                         "with_formal_charges": charged(part)}  # fmt: skip
    reasons = Counter(reason.split(":")[0] for reason in failed.values())
    result = {
        "protocol": "QM9 bonds and charges from qm9pack's SMILES placed on its coordinates",
        "command": "python bench/bench_qm9_graphs.py",
        "seconds": round(seconds, 1),
        "molecules": len(graphs) + len(failed),
        "placed": len(graphs),
        "not_placed": len(failed),
        "with_formal_charges": charged(graphs),
        "reasons": dict(reasons.most_common()),
        "examples": {str(k): v for k, v in list(failed.items())[:10]},
        "splits": splits,
    }
    atomic_write_text(OUT, json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "examples"}, indent=2))


if __name__ == "__main__":
    main()
