"""Few-step generation: quality against network calls for a flow map (K ∈ {1, 2, 4, 8} jumps, with
and without γ re-noising) beside its teacher's solvers at the same calls, at 50 calls and at 1,000
ancestral steps, all on the same molecules (seeds and sizes), with wall time per valid molecule
and the speed-up against the teacher's best 50-call solver and its 1,000-step sampler, measured in
one run on one machine.

    python bench/bench_flowmap.py --flowmap qm9-fast                          # teacher: built-in qm9-edm
    python bench/bench_flowmap.py --flowmap FM.pt --n 20 --k 1 4 --teacher-rows dpmpp-2m:4   # a quick look

Teacher rows are SOLVER:NFE (default: ddpm, dpmpp-2m and dpmpp-2m-sde at each K and dpmpp-2m,
dpmpp-2m-sde at 50), plus ddpm at 1,000 on ``--reference-n`` molecules (its quality is the
solver benchmark's; here it is the clock). Prints the issue's targets: at 4 calls molecule
stability and validity within 5 points of the teacher's best 50-call solver; at 1 call, better
than the teacher's best 4-call solver. Writes bench/results/flowmap.{md,json} (``--out``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from common import METRICS, sample_and_score

from moldiff.models import load_generator


def run(gen, label: str, solver: str, nfe: int, options: dict, n: int, args) -> dict:
    row = sample_and_score(gen, solver, nfe, n=n, seed=args.seed, batch_size=args.batch_size,
                           device=args.device, options=options)  # fmt: skip
    print(f"{label:9s} {solver:14s} {options or ''} NFE {row['nfe']:5.0f}  mol stab {100 * row['mol_stability']:5.1f}%"
          f"  valid {100 * row['validity']:5.1f}%  {row['seconds_per_molecule']:.3f} s/mol", flush=True)  # fmt: skip
    return {"model": label, **row}


def speedup(reference: dict | None, row: dict) -> str:
    if not reference or not reference["seconds_per_valid"] or not row["seconds_per_valid"]:
        return "—"
    return f"{reference['seconds_per_valid'] / row['seconds_per_valid']:.1f}×"


def best(rows: list[dict], model: str, nfe: float) -> dict | None:
    """The row of ``model`` at ``nfe`` calls with the highest molecule stability (then validity)."""
    found = [r for r in rows if r["model"] == model and round(r["nfe"]) == nfe]
    return max(found, key=lambda r: (r["mol_stability"], r["validity"], r["atom_stability"]), default=None)


def verdicts(rows: list[dict]) -> list[str]:
    def describe(r):
        opts = "".join(f" {k}={v}" for k, v in r["options"].items())
        return (f"{r['solver']}{opts} at {r['nfe']:g} calls: mol. stab. {100 * r['mol_stability']:.1f} %, "
                f"valid {100 * r['validity']:.1f} %, atom stab. {100 * r['atom_stability']:.1f} %")  # fmt: skip

    out = []
    fm4, t50 = best(rows, "flow map", 4), best(rows, "teacher", 50)
    if fm4 and t50:
        gaps = [100 * (fm4[k] - t50[k]) for k in ("mol_stability", "validity")]
        met = all(g >= -5 for g in gaps)
        out.append(f"- 4 calls vs the teacher's best at 50: flow map {describe(fm4)}; teacher {describe(t50)}; "
                   f"gaps {gaps[0]:+.1f} / {gaps[1]:+.1f} points (target: within 5) — {'met' if met else 'NOT met'}")
    fm1, t4 = best(rows, "flow map", 1), best(rows, "teacher", 4)
    if fm1 and t4:
        key = lambda r: (r["mol_stability"], r["validity"] * r["atom_stability"])  # noqa: E731
        met = key(fm1) > key(t4)
        out.append(f"- 1 call vs the teacher's best at 4: flow map {describe(fm1)}; teacher {describe(t4)} — "
                   f"{'beaten' if met else 'NOT beaten'} (molecule stability, then validity × atom stability)")
    return out


def markdown(rows: list[dict], title: str, ref50: dict | None, ref1000: dict | None) -> str:
    head = ("| model | solver | NFE | n | atom stab. % | mol stab. % | valid % | valid×unique % | valid & one piece % | s / valid mol. "
            "| speed-up vs best 50-call | speed-up vs 1000-step |")  # fmt: skip
    lines = [f"### {title}", "", head, "|" + "---|" * 12]
    for r in rows:
        pct = " | ".join(f"{100 * r[k]:.1f}" for k in METRICS)
        per_valid = f"{r['seconds_per_valid']:.3f}" if r["seconds_per_valid"] else "— (none valid)"
        opts = "".join(f" {k}={v}" for k, v in r["options"].items())
        lines.append(f"| {r['model']} | {r['solver']}{opts} | {r['nfe']:g} | {r['n']} | {pct} | {per_valid} "
                     f"| {speedup(ref50, r)} | {speedup(ref1000, r)} |")  # fmt: skip
    notes = [""]
    if ref50:
        notes.append(f"Best 50-call teacher solver: {ref50['solver']}. ")
    return "\n".join(lines + notes + verdicts(rows)) + "\n"


def teacher_rows(spec: list[str] | None, ks: list[int]) -> list[tuple[str, int]]:
    if spec is None:
        # the teacher's samplers at each K, the ODE the flow map learns (dpmpp-2m) and the teacher's
        # best sampler (dpmpp-2m-sde) at 50
        per_k = [(solver, k) for k in ks for solver in ("ddpm", "dpmpp-2m", "dpmpp-2m-sde")]
        return per_k + [("dpmpp-2m", 50), ("dpmpp-2m-sde", 50)]
    out = []
    for item in spec:
        solver, _, nfe = item.partition(":")
        out.append((solver, int(nfe)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flowmap", required=True, help="flow-map model: a built-in name (qm9-fast) or a file")
    parser.add_argument("--teacher", default="qm9-edm", help="built-in model name or model file ('' for none)")
    parser.add_argument("--k", type=int, nargs="+", default=[1, 2, 4, 8], help="flow-map jumps")
    parser.add_argument("--gamma", type=float, nargs="+", default=[0.0, 0.5], help="re-noising strengths")
    parser.add_argument("--teacher-rows", nargs="+", default=None, help="SOLVER:NFE rows of the teacher")
    parser.add_argument("--n", type=int, default=1000, help="molecules per row")
    parser.add_argument("--reference-n", type=int, default=50, help="molecules of the 1000-step row (0: skip it)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "flowmap"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    fm, _, fm_payload = load_generator(args.flowmap, device=args.device)
    for gamma in args.gamma:
        for k in args.k:
            if gamma and k == 1:  # one jump lands on t = 0: nothing to re-noise
                continue
            rows.append(run(fm, "flow map", "flow-map", k, {"gamma": gamma} if gamma else {}, args.n, args))
    ref1000 = None
    if args.teacher:
        teacher, _, _ = load_generator(args.teacher, device=args.device)
        for solver, nfe in teacher_rows(args.teacher_rows, args.k):
            rows.append(run(teacher, "teacher", solver, nfe, {}, args.n, args))
        if args.reference_n:
            ref1000 = run(teacher, "teacher", "ddpm", 1000, {}, args.reference_n, args)
            rows.append(ref1000)
    ref50 = best(rows, "teacher", 50)
    title = (f"flow map {args.flowmap} (step {fm_payload.get('step')}) vs teacher {args.teacher or '—'}, "
             f"{args.n} molecules per row, {args.threads} threads")  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"flowmap": args.flowmap, "teacher": args.teacher, "n": args.n,
                                                    "seed": args.seed, "threads": args.threads, "rows": rows,
                                                    "verdicts": verdicts(rows)}, indent=2) + "\n")  # fmt: skip
    out.with_suffix(".md").write_text(markdown(rows, title, ref50, ref1000))
    print("\n".join(verdicts(rows)))
    print(f"wrote {out.with_suffix('.md')} and .json")


if __name__ == "__main__":
    main()
