"""How well a scaffold-aware model (``model.known_atoms``) grows molecules around fragments of its
own validation molecules: the scaffold task exactly as it was trained, with no SMILES embedding and
no guess of the atom count in the way.

    python bench/bench_known_fragments.py --model qm9-scaffold --config moldiff/configs/qm9_valence.yaml
    python bench/bench_known_fragments.py --model train_state/drugs_scaffold/last.pt --config moldiff/configs/drugs_scaffold.yaml

For each of ``--molecules`` validation molecules a random connected fragment of heavy atoms (at
least ``--min-atoms``; ``--hydrogens``: with their hydrogens) is drawn as in training
(``moldiff.diffusion.known.random_fragments``), given with its open valences, and ``--samples``
molecules of the molecule's own size are generated around it (the default sampler, 50 NFE).
Reported: the EDM evaluator's atom stability, validity and molecules in one piece, per molecule
and pooled, beside the same model sampled freely at the same sizes.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from moldiff import defaults
from moldiff.chem.evaluate import evaluate
from moldiff.config import load_config
from moldiff.data.batch import collate
from moldiff.diffusion.known import covalent_radii, open_valences, random_fragments
from moldiff.guidance.inpaint import Scaffold, generate_with_scaffold
from moldiff.models import load_generator
from moldiff.nets.precision import resolve_precision, set_precision
from moldiff.sampling import generate
from moldiff.solvers import get_solver, solver_times
from moldiff.train.data import load_training_data

METRICS = ("atom_stability", "validity", "connectivity")


def fragment_of(gen, batch, seed: int, hydrogens: bool, min_atoms: int) -> Scaffold:
    """A training-style fragment of the one molecule in ``batch``, as a Scaffold with open valences."""
    z0, graph = gen.encode(batch)
    radii, is_h = covalent_radii(gen.vocab.atomic_numbers), torch.tensor([s == "H" for s in gen.vocab.symbols])
    draws = torch.Generator().manual_seed(seed)
    for _ in range(200):  # redraw until the fragment has the asked-for hydrogens and size
        known = random_fragments(z0["coords"], batch.atom_type, graph, radii, is_h, 1.0, draws)
        if bool(is_h[batch.atom_type[known]].any()) == hydrogens and int(known.sum()) >= min_atoms:
            break
    index = known.nonzero().flatten()
    valence = open_valences(z0["coords"], batch.atom_type, graph, radii, known)[index]
    return Scaffold(batch.pos[index].double(), batch.atom_type[index], valence)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--config", required=True, help="the model's training config (for its validation set)")
    p.add_argument("--molecules", type=int, default=4)
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--min-atoms", type=int, default=4)
    p.add_argument("--hydrogens", action="store_true")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--precision", default="auto", choices=("fp32", "bf16", "auto"))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    _, valid = load_training_data(load_config(args.config, []).data)
    gen, _, _ = load_generator(args.model)
    set_precision(gen.denoiser.net, resolve_precision(args.precision))
    gen.type_decoding = "closed-shell"
    solver = get_solver(defaults.SOLVER)
    times = solver_times(defaults.SOLVER, args.steps, gen.denoiser.schedule)
    rows, pooled = [], {"around a fragment": [], "free": []}
    for m in range(args.molecules):
        batch = collate(valid, [m], gen.vocab)
        scaffold = fragment_of(gen, batch, m, args.hydrogens, args.min_atoms)
        size = int(batch.pos.shape[0])
        grown, _ = generate_with_scaffold(gen, scaffold, args.samples, seed=m, solver=solver, times=times,
                                          n_atoms=size, batch_size=args.samples)  # fmt: skip
        free, _ = generate(gen, args.samples, seed=m, solver=solver, times=times, n_atoms=size,
                           batch_size=args.samples)  # fmt: skip
        row = {"molecule": m, "atoms": size, "fragment": scaffold.size, "open_valence": scaffold.open_valence.tolist()}
        for label, mols in (("around a fragment", grown), ("free", free)):
            summary, _ = evaluate(mols, reference_smiles=None)
            row[label] = {k: round(float(summary[k]), 3) for k in METRICS}
            pooled[label].append(row[label])
        rows.append(row)
        print(json.dumps(row), flush=True)
    for label, values in pooled.items():
        means = {k: round(float(np.mean([v[k] for v in values])), 3) for k in METRICS}
        print(f"{label}: {means} ({args.molecules} molecules x {args.samples} samples)")


if __name__ == "__main__":
    main()
