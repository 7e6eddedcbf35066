"""Draw molecules sampled by a built-in model as a grid of 2D depictions (the picture of the README
and of the documentation's home page).

Samples with the default sampler, keeps the valid molecules in one piece (a graph model's molecules
as written; a coordinate-only model's by the EDM protocol), one per distinct SMILES, and draws the
first ones with RDKit:

    python docs/scripts/molecule_grid.py                      # -> docs/assets/molecules.png
    python docs/scripts/molecule_grid.py --model drugs --columns 4 --rows 2 -o drugs.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_OUT = Path(__file__).parents[1] / "assets" / "molecules.png"


def valid_smiles(model: str, n: int, seed: int) -> list[str]:
    """Distinct SMILES of the valid, connected molecules among ``n`` sampled with ``seed``."""
    from moldiff import defaults
    from moldiff.chem.evaluate import evaluate
    from moldiff.chem.graph_eval import evaluate_graphs
    from moldiff.models import load_generator
    from moldiff.sampling import generate
    from moldiff.solvers import get_solver, solver_times

    generator, _, _ = load_generator(model)
    times = solver_times(defaults.SOLVER, defaults.STEPS, generator.denoiser.schedule)
    molecules, _ = generate(generator, n, seed=seed, solver=get_solver(defaults.SOLVER), times=times)
    if molecules.bonds is not None:  # a graph model wrote its bonds
        _, frame = evaluate_graphs(molecules, posebusters=False)
        kept = frame[frame["valid_connected"].astype(bool)]["smiles"]
    else:
        _, frame = evaluate(molecules)
        kept = frame[frame["valid"].astype(bool) & (frame["n_fragments"] == 1)]["smiles"]
    return list(dict.fromkeys(kept))


def draw_grid(smiles: list[str], columns: int, size: int, out: Path) -> None:
    from rdkit import Chem
    from rdkit.Chem import AllChem, Draw

    mols = []
    for text in smiles:
        mol = Chem.MolFromSmiles(text)
        if mol is not None:
            AllChem.Compute2DCoords(mol)
            mols.append(mol)
    image = Draw.MolsToGridImage(mols, molsPerRow=columns, subImgSize=(size, size),
                                 legends=[Chem.MolToSmiles(m) for m in mols])  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="qm9", help="built-in model name or model file")
    parser.add_argument("--n", type=int, default=48, help="molecules to sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--columns", type=int, default=6)
    parser.add_argument("--rows", type=int, default=2)
    parser.add_argument("--size", type=int, default=200, help="pixels per molecule")
    parser.add_argument("-o", "--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    smiles = valid_smiles(args.model, args.n, args.seed)[: args.columns * args.rows]
    if not smiles:
        print("error: no valid molecule in one piece among the samples; raise --n", file=sys.stderr)
        return 2
    draw_grid(smiles, args.columns, args.size, args.out)
    print(f"{len(smiles)} molecules drawn to {args.out} ({args.out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
