"""Quality against cost for every solver: sample a trained model with each solver at several NFE
budgets, score with the EDM protocol, write a table and a plot.

    python bench/bench_solvers.py                         # built-in qm9-edm model: every solver at NFE 10 20 50 100,
                                                          # and the 1000-step ancestral reference
    python bench/bench_solvers.py --solvers ddpm@edm "dpmpp-2m,eta=1.0"   # a grid or options per row
    python bench/bench_solvers.py --n 20 --nfe 10 20      # a quick look
    python bench/bench_solvers.py --nfe 10 20 50 100 1000 # every solver at 1000 NFE too (hours on a CPU)
    python bench/bench_solvers.py --model runs/qm9/model.pt --solvers ddpm heun dpmpp-2m

Every solver samples the same molecules: the same run seed gives the same atom counts and the same
starting noise (the stochastic solvers then draw their own per-molecule noise). ``steps`` is each
solver's NFE budget (``moldiff.solvers.solver_times``); the adaptive solver has no budget, so a
tolerance is picked per target (``ADAPTIVE_RTOL``) and the NFE it really spent is reported.
The reference row (``--reference``, default ``ddpm:1000``, on ``--reference-n`` molecules) is what the
targets compare against: the best solver at <= 50 NFE within 2 points of its molecule stability, and
at <= 20 NFE within 5. Each percentage carries a binomial standard error of sqrt(p(1-p)/n).
Writes bench/results/solvers.{md,json,png} (``--out`` changes the stem).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from common import METRICS, parse_label, sample_and_score

from moldiff.models import load_generator
from moldiff.solvers import SOLVERS, get_solver
from moldiff.solvers.grids import GRIDS

# adaptive solver: rtol = atol per NFE target, read off the built-in model (rtol 0.1 -> ~28 NFE,
# 1e-2 -> ~40, 1e-3 -> ~73); targets in between are interpolated in log-log
ADAPTIVE_RTOL = {10: 1.0, 20: 0.3, 50: 3e-3, 100: 3e-4, 1000: 1e-7}


def adaptive_rtol(nfe: int) -> float:
    xs = np.log10(sorted(ADAPTIVE_RTOL))
    ys = np.log10([ADAPTIVE_RTOL[k] for k in sorted(ADAPTIVE_RTOL)])
    return float(10 ** np.interp(math.log10(nfe), xs, ys))


def run(gen, label: str, nfe: int, n: int, seed: int, batch_size: int, device: str) -> dict:
    """One row; ``label`` names a solver, optionally with a time grid and options (``parse_label``)."""
    solver, grid, options = parse_label(label)
    if solver == "adaptive":
        options = {"rtol": adaptive_rtol(nfe), "atol": adaptive_rtol(nfe), **options}
    row = sample_and_score(gen, solver, nfe, n=n, seed=seed, batch_size=batch_size, device=device,
                           options=options, grid=grid)  # fmt: skip
    return {**row, "solver": label, "target_nfe": nfe}


def markdown(rows: list[dict], reference: dict, title: str) -> str:
    head = ("| solver | target NFE | NFE | n | atom stab. % | mol stab. % | Δ mol stab. vs ref. | valid % "
            "| valid×unique % | valid & one piece % | s / molecule |")
    lines = [f"### {title}", "", head, "|" + "---|" * 11]
    for r in [reference, *rows]:
        pct = [f"{100 * r[k]:.1f}" for k in METRICS]
        gap = 100 * (r["mol_stability"] - reference["mol_stability"])
        name = f"**{r['solver']}** (reference)" if r is reference else r["solver"]
        lines.append(f"| {name} | {r['target_nfe']} | {r['nfe']:g} | {r['n']} | {pct[0]} | {pct[1]} | {gap:+.1f} "
                     f"| {pct[2]} | {pct[3]} | {pct[4]} | {r['seconds_per_molecule']:.3f} |")  # fmt: skip
    lines += ["", *target_lines(rows, reference)]
    return "\n".join(lines) + "\n"


def stderr_pct(p: float, n: int) -> float:
    return 100 * math.sqrt(max(p * (1 - p), 1e-12) / n)


def target_lines(rows: list[dict], reference: dict) -> list[str]:
    """The issue's targets: the best solver within ``max_nfe`` NFE against the reference."""
    out = []
    for max_nfe, tolerance in ((50, 2.0), (20, 5.0)):
        budget = [r for r in rows if r["nfe"] <= max_nfe]
        if not budget:
            continue
        best = max(budget, key=lambda r: r["mol_stability"])
        gap = 100 * (best["mol_stability"] - reference["mol_stability"])
        se = math.hypot(stderr_pct(best["mol_stability"], best["n"]),
                        stderr_pct(reference["mol_stability"], reference["n"]))  # fmt: skip
        verdict = "met" if gap >= -tolerance else "NOT met"
        out.append(f"- ≤ {max_nfe} NFE: best is {best['solver']} at {best['nfe']:g} NFE, molecule stability "
                   f"{100 * best['mol_stability']:.1f} % vs {100 * reference['mol_stability']:.1f} % "
                   f"({gap:+.1f} ± {se:.1f} points; target within {tolerance:g}: {verdict})")  # fmt: skip
    return out


def plot(rows: list[dict], reference: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panels = (("mol_stability", "molecule stability %"), ("validity", "validity %"),
              ("seconds_per_molecule", "wall time per molecule (s)"))  # fmt: skip
    colours = plt.cm.tab20.colors  # distinct colours for up to 20 solvers
    for index, solver in enumerate(dict.fromkeys(r["solver"] for r in rows)):
        mine = sorted((r for r in rows if r["solver"] == solver), key=lambda r: r["nfe"])
        x = [r["nfe"] for r in mine]
        for ax, (key, label) in zip(axes, panels):
            y = [r[key] * (1 if key == "seconds_per_molecule" else 100) for r in mine]
            ax.plot(x, y, marker="o", label=solver, color=colours[index % len(colours)])
            ax.set_xscale("log")
            ax.set_xlabel("NFE per molecule")
            ax.set_ylabel(label)
    for ax, (key, _) in zip(axes, panels):  # the reference as a star
        ax.plot([reference["nfe"]], [reference[key] * (1 if key == "seconds_per_molecule" else 100)], "k*",
                markersize=12, label=f"{reference['solver']} (reference)")
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qm9-edm", help="built-in model name or model file")
    parser.add_argument("--n", type=int, default=200, help="molecules per (solver, NFE)")
    parser.add_argument("--nfe", type=int, nargs="+", default=[10, 20, 50, 100])
    parser.add_argument("--reference", default="ddpm:1000", help="SOLVER:NFE the targets compare against")
    parser.add_argument("--reference-n", type=int, default=None, help="molecules for the reference (default --n)")
    parser.add_argument("--solvers", nargs="+", default=[s for s in SOLVERS if s != "flow-map"],
                        help="solvers as NAME[@GRID][,KEY=VALUE...]: ddpm, ddpm@edm, dpmpp-2m,eta=1.0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "solvers"))
    args = parser.parse_args()
    for label in [*args.solvers, args.reference.rsplit(":", 1)[0]]:
        solver, grid, options = parse_label(label)
        if solver not in SOLVERS or (grid and grid not in GRIDS):
            parser.error(f"{label!r}: solvers are {', '.join(SOLVERS)}; grids are {', '.join(GRIDS)}")
        get_solver(solver, **options)  # unknown options fail here, before any sampling
    torch.set_num_threads(args.threads)
    gen, _, payload = load_generator(args.model, device=args.device)
    title = f"{args.model} (step {payload.get('step')}), {args.n} molecules per row"
    ref_solver, ref_nfe = args.reference.rsplit(":", 1)
    reference = run(gen, ref_solver, int(ref_nfe), args.reference_n or args.n, args.seed, args.batch_size, args.device)
    print(f"reference {ref_solver} NFE {reference['nfe']:g}: mol stab {100 * reference['mol_stability']:.1f}%  "
          f"valid {100 * reference['validity']:.1f}%", flush=True)  # fmt: skip
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
                                                    "reference": reference, "rows": rows}, indent=2) + "\n")  # fmt: skip
    out.with_suffix(".md").write_text(markdown(rows, reference, title))
    plot(rows, reference, out.with_suffix(".png"), title)
    print(f"wrote {out.with_suffix('.md')}, .json and .png")


if __name__ == "__main__":
    main()
