"""Quality against cost for every solver: sample a trained model with each solver at several NFE
budgets, score with the EDM protocol, write a table and a plot.

    python bench/bench_solvers.py                         # built-in qm9 model, n=1000, NFE 10 20 50 100 1000
    python bench/bench_solvers.py --n 20 --nfe 10 20      # a quick look
    python bench/bench_solvers.py --model runs/qm9/model.pt --solvers ddpm heun dpmpp-2m

Every solver samples the same molecules: the same run seed gives the same atom counts and the same
starting noise (the stochastic solvers then draw their own per-molecule noise). ``steps`` is each
solver's NFE budget (``moldiff.solvers.solver_times``); the adaptive solver has no budget, so a
tolerance is picked per target (``ADAPTIVE_RTOL``) and the NFE it really spent is reported.
Writes bench/results/solvers.{md,json,png} (``--out`` changes the stem).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from moldiff.chem.evaluate import evaluate
from moldiff.models import load_generator
from moldiff.sampling import generate
from moldiff.solvers import SOLVERS, get_solver, solver_times

# adaptive solver: rtol = atol per NFE target, read off the built-in model (rtol 0.1 -> ~28 NFE,
# 1e-2 -> ~40, 1e-3 -> ~73); targets in between are interpolated in log-log
ADAPTIVE_RTOL = {10: 1.0, 20: 0.3, 50: 3e-3, 100: 3e-4, 1000: 1e-7}
METRICS = ("atom_stability", "mol_stability", "validity", "valid_x_unique")


def adaptive_rtol(nfe: int) -> float:
    xs = np.log10(sorted(ADAPTIVE_RTOL))
    ys = np.log10([ADAPTIVE_RTOL[k] for k in sorted(ADAPTIVE_RTOL)])
    return float(10 ** np.interp(math.log10(nfe), xs, ys))


def run(gen, solver: str, nfe: int, n: int, seed: int, batch_size: int, device: str) -> dict:
    options = {"rtol": adaptive_rtol(nfe), "atol": adaptive_rtol(nfe)} if solver == "adaptive" else {}
    times = solver_times(solver, nfe, gen.denoiser.schedule, **options)
    gen.denoiser.nfe = 0
    start = time.perf_counter()
    mols, _ = generate(gen, n, seed=seed, solver=get_solver(solver, **options), times=times,
                       batch_size=batch_size, device=device)  # fmt: skip
    seconds = time.perf_counter() - start
    summary, _ = evaluate(mols, reference_smiles=None)
    return {"solver": solver, "target_nfe": nfe, "nfe": gen.denoiser.nfe / -(-n // batch_size), "options": options,
            "n": n, **{k: summary[k] for k in METRICS}, "seconds_per_molecule": seconds / n}  # fmt: skip


def markdown(rows: list[dict], title: str) -> str:
    head = "| solver | target NFE | NFE | atom stab. % | mol stab. % | valid % | valid×unique % | s / molecule |"
    lines = [f"### {title}", "", head, "|" + "---|" * 8]
    for r in rows:
        pct = " | ".join(f"{100 * r[k]:.1f}" for k in METRICS)
        cost = f"{r['seconds_per_molecule']:.3f}"
        lines.append(f"| {r['solver']} | {r['target_nfe']} | {r['nfe']:g} | {pct} | {cost} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panels = (("mol_stability", "molecule stability %"), ("validity", "validity %"),
              ("seconds_per_molecule", "wall time per molecule (s)"))  # fmt: skip
    for solver in dict.fromkeys(r["solver"] for r in rows):
        mine = sorted((r for r in rows if r["solver"] == solver), key=lambda r: r["nfe"])
        x = [r["nfe"] for r in mine]
        for ax, (key, label) in zip(axes, panels):
            y = [r[key] * (1 if key == "seconds_per_molecule" else 100) for r in mine]
            ax.plot(x, y, marker="o", label=solver)
            ax.set_xscale("log")
            ax.set_xlabel("NFE per molecule")
            ax.set_ylabel(label)
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qm9", help="built-in model name or model file")
    parser.add_argument("--n", type=int, default=1000, help="molecules per (solver, NFE)")
    parser.add_argument("--nfe", type=int, nargs="+", default=[10, 20, 50, 100, 1000])
    parser.add_argument("--solvers", nargs="+", default=list(SOLVERS), choices=list(SOLVERS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "solvers"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen, _, payload = load_generator(args.model, device=args.device)
    title = f"{args.model} (step {payload.get('step')}), {args.n} molecules per row"
    rows = []
    for solver in args.solvers:
        for nfe in args.nfe:
            row = run(gen, solver, nfe, args.n, args.seed, args.batch_size, args.device)
            rows.append(row)
            print(f"{solver:15s} NFE {row['nfe']:7.1f}  mol stab {100 * row['mol_stability']:5.1f}%  "
                  f"valid {100 * row['validity']:5.1f}%  {row['seconds_per_molecule']:.3f} s/mol",
                  flush=True)  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"model": args.model, "model_step": payload.get("step"),
                                                    "n": args.n, "seed": args.seed, "threads": args.threads,
                                                    "rows": rows}, indent=2) + "\n")  # fmt: skip
    out.with_suffix(".md").write_text(markdown(rows, title))
    plot(rows, out.with_suffix(".png"), title)
    print(f"wrote {out.with_suffix('.md')}, .json and .png")


if __name__ == "__main__":
    main()
