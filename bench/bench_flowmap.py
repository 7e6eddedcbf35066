"""Few-step generation: quality against network calls for a flow map (K ∈ {1, 2, 4, 8} jumps, with
and without γ re-noising) beside its teacher's solvers at the same and at 50 calls and 1,000
ancestral steps, all on the same molecules, with wall time per valid molecule and its speed-up.

    python bench/bench_flowmap.py --flowmap train_state/flowmap_qm9/model.pt      # teacher: built-in qm9
    python bench/bench_flowmap.py --flowmap FM.pt --n 20 --k 1 4 --teacher-rows dpmpp-2m:4   # a quick look

Teacher rows are SOLVER:NFE (default dpmpp-2m and dpmpp-2m-sde at each K and at 50, ddpm at 1000). Writes
bench/results/flowmap.{md,json} (``--out`` changes the stem).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from common import METRICS, sample_and_score

from moldiff.models import load_generator


def run(gen, label: str, solver: str, nfe: int, options: dict, args) -> dict:
    row = sample_and_score(gen, solver, nfe, n=args.n, seed=args.seed, batch_size=args.batch_size,
                           device=args.device, options=options)  # fmt: skip
    return {"model": label, **row}


def markdown(rows: list[dict], title: str, reference: dict | None) -> str:
    head = "| model | solver | NFE | atom stab. % | mol stab. % | valid % | valid×unique % | s / valid mol. | speed-up |"
    lines = [f"### {title}", "", head, "|" + "---|" * 9]
    for r in rows:
        pct = " | ".join(f"{100 * r[k]:.1f}" for k in METRICS)
        known = reference and reference["seconds_per_valid"] and r["seconds_per_valid"]
        ratio = f"{reference['seconds_per_valid'] / r['seconds_per_valid']:.1f}×" if known else "—"
        per_valid = f"{r['seconds_per_valid']:.3f}" if r["seconds_per_valid"] else "— (none valid)"
        opts = "".join(f" {k}={v}" for k, v in r["options"].items())
        lines.append(f"| {r['model']} | {r['solver']}{opts} | {r['nfe']:g} | {pct} | {per_valid} | {ratio} |")
    ref = f"speed-up: against {reference['solver']} at {reference['nfe']:g} NFE" if reference else ""
    return "\n".join(lines) + f"\n\n{ref}\n"


def teacher_rows(spec: list[str] | None, ks: list[int]) -> list[tuple[str, int]]:
    if spec is None:
        # the ODE the flow map learns (dpmpp-2m) and the teacher's best sampler (the default, SDE)
        per_k = [(solver, k) for k in ks for solver in ("dpmpp-2m", "dpmpp-2m-sde")]
        return per_k + [("dpmpp-2m", 50), ("dpmpp-2m-sde", 50), ("ddpm", 1000)]
    out = []
    for item in spec:
        solver, _, nfe = item.partition(":")
        out.append((solver, int(nfe)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flowmap", required=True, help="flow-map model file (moldiff train-flowmap)")
    parser.add_argument("--teacher", default="qm9", help="built-in model name or model file ('' for none)")
    parser.add_argument("--k", type=int, nargs="+", default=[1, 2, 4, 8], help="flow-map jumps")
    parser.add_argument("--gamma", type=float, nargs="+", default=[0.0, 0.5], help="re-noising strengths")
    parser.add_argument("--teacher-rows", nargs="+", default=None, help="SOLVER:NFE rows of the teacher")
    parser.add_argument("--n", type=int, default=1000, help="molecules per row")
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
            rows.append(run(fm, "flow map", "flow-map", k, {"gamma": gamma} if gamma else {}, args))
            print(rows[-1], flush=True)
    teacher_rows_done = []
    if args.teacher:
        teacher, _, _ = load_generator(args.teacher, device=args.device)
        for solver, nfe in teacher_rows(args.teacher_rows, args.k):
            teacher_rows_done.append(run(teacher, "teacher", solver, nfe, {}, args))
            print(teacher_rows_done[-1], flush=True)
    rows += teacher_rows_done
    # the reference of the speed-up column: the teacher's most expensive row (default: ddpm at 1,000)
    reference = max(teacher_rows_done, key=lambda r: r["nfe"]) if teacher_rows_done else None
    title = f"flow map {args.flowmap} (step {fm_payload.get('step')}) vs teacher {args.teacher or '—'}, {args.n} molecules per row"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"flowmap": args.flowmap, "teacher": args.teacher, "n": args.n,
                                                    "seed": args.seed, "threads": args.threads, "rows": rows},
                                                   indent=2) + "\n")  # fmt: skip
    out.with_suffix(".md").write_text(markdown(rows, title, reference))
    print(f"wrote {out.with_suffix('.md')} and .json")


if __name__ == "__main__":
    main()
