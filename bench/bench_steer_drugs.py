"""Validity steering of the drug-like model: how many molecules come out neutral and in one piece
(read by xyz2mol, as campaigns read them) with P particles per molecule, against plain sampling of
the same sizes and seeds.

    python bench/bench_steer_drugs.py --n 100 --particles 4          # ~15 min on 2 cores

Each molecule is drawn as ``moldiff sample --model drugs --types closed-shell --steer valid
--steer-reader xyz2mol --particles P`` does (default solver); P = 1 is plain sampling. The rows give
the set metrics of ``moldiff.chem.scoring`` (validity by xyz2mol, neutral, neutral and connected)
and the seconds per molecule. Writes OUT.json and OUT.md (default bench/results/steer_drugs).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from moldiff import defaults


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="drugs")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--particles", nargs="+", type=int, default=[1, 4])
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "steer_drugs")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from moldiff.chem.scoring import score_molset, set_metrics
    from moldiff.guidance.plan import GuidanceSpec, plan_guidance
    from moldiff.models import load_generator
    from moldiff.solvers import get_solver, solver_times

    gen, config, payload = load_generator(args.model)
    gen.type_decoding = "closed-shell"
    times = solver_times(defaults.SOLVER, args.steps, gen.denoiser.schedule)
    rows = []
    for particles in args.particles:
        spec = GuidanceSpec(steer=(), particles=particles, steer_reader="xyz2mol") if particles > 1 else GuidanceSpec()
        plan = plan_guidance(gen, config, payload, spec)
        start = time.time()
        mols, _ = plan.generate(args.n, seed=args.seed, solver=get_solver(defaults.SOLVER), times=times, batch_size=50)
        seconds = time.time() - start
        metrics = set_metrics(score_molset(mols))
        rows.append({"particles": particles, "seconds_per_molecule": seconds / args.n,
                     **{k: metrics.get(k) for k in ("validity", "neutral", "neutral_connected", "connected", "uniqueness")}})
        print(json.dumps(rows[-1]), flush=True)
    lines = [f"### {args.model} (step {payload.get('step')}), closed-shell types, {defaults.SOLVER} {args.steps} NFE per particle, "
             f"{args.n} molecules per row", "",
             "| particles | validity (xyz2mol) % | neutral % | neutral & one piece % | one piece % | unique % | s / molecule |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        pct = " | ".join("–" if r[k] is None else f"{100 * r[k]:.1f}"
                         for k in ("validity", "neutral", "neutral_connected", "connected", "uniqueness"))
        lines.append(f"| {r['particles']} | {pct} | {r['seconds_per_molecule']:.2f} |")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2))
    print(text)


if __name__ == "__main__":
    main()
