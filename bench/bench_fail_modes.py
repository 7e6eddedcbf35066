"""How sampled molecules fail: the EDM metrics beside the share of atoms with too many and too few
bonds, molecules in one piece, and nearest-neighbour distances (Å), for any model and solver.

    python bench/bench_fail_modes.py 200 qm9-fast:flow-map:4 qm9-fast:flow-map:8:1.0 qm9-edm:dpmpp-2m-sde:50

Each argument after the molecule count is MODEL:SOLVER:NFE[:GAMMA] (GAMMA: the flow-map re-noising);
every row samples the same molecules (seed 0). Over-bonded atoms with atoms packed too close mean
jumps that stack atoms; under-bonded ones with few molecules in one piece mean scattered atoms.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch

from common import solver_times

from moldiff.chem.bonds import ALLOWED_VALENCES, atom_stable, molset_bonds
from moldiff.chem.evaluate import evaluate
from moldiff.data.elements import SYMBOLS
from moldiff.models import load_generator
from moldiff.sampling import generate
from moldiff.solvers import get_solver


def nearest_neighbour_distances(molset) -> np.ndarray:
    """Per atom, the distance to the nearest other atom of its molecule (inf for a lone atom)."""
    out = []
    for m in range(len(molset)):
        p = molset.positions[molset.batch == m]
        d = np.linalg.norm(p[:, None] - p[None], axis=-1)
        np.fill_diagonal(d, np.inf)
        out.append(d.min(1))
    return np.concatenate(out)


def fail_modes(molset) -> dict:
    valences, _, _ = molset_bonds(molset)
    z = molset.atomic_numbers
    stable = atom_stable(z, valences)
    allowed = [ALLOWED_VALENCES.get(SYMBOLS[a], (0,)) for a in z]  # the evaluator's own table
    most, least = np.array([max(v) for v in allowed]), np.array([min(v) for v in allowed])
    nn = nearest_neighbour_distances(molset)
    heavy = z > 1
    summary, _ = evaluate(molset)
    return {"atom_stability": summary["atom_stability"], "mol_stability": summary["mol_stability"],
            "validity": summary["validity"], "one_piece": summary["connectivity"],
            "over_bonded_atoms": float(((~stable) & (valences > most)).mean()),
            "under_bonded_atoms": float(((~stable) & (valences < least)).mean()),
            "heavy_nn_p05": float(np.quantile(nn[heavy], 0.05)), "heavy_nn_median": float(np.median(nn[heavy])),
            "elements": {int(k): int(v) for k, v in zip(*np.unique(z, return_counts=True))}}  # fmt: skip


def main() -> None:
    if len(sys.argv) < 3 or not sys.argv[1].isdigit():
        sys.exit(__doc__)
    torch.set_num_threads(2)
    n = int(sys.argv[1])
    for spec in sys.argv[2:]:
        model, solver, nfe, *rest = spec.split(":")
        options = {"gamma": float(rest[0])} if rest else {}
        gen, _, _ = load_generator(model)
        times = solver_times(solver, int(nfe), gen.denoiser.schedule, **options)
        mols, _ = generate(gen, n, seed=0, solver=get_solver(solver, **options), times=times, batch_size=100)
        row = {k: round(v, 3) if isinstance(v, float) else v for k, v in fail_modes(mols).items()}
        print(spec, json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
