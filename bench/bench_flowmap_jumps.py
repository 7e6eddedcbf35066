"""Where a flow map's error is: each jump of the uniform K-jump grids, measured on noised
validation molecules against the teacher's PF-ODE, beside the teacher's own one- and two-call
DPM-Solver++ jumps (one call is a DDIM step) and the 8-substep targets distillation trains on.

    python bench/bench_flowmap_jumps.py --flowmap qm9-fast --teacher qm9-edm
    python bench/bench_flowmap_jumps.py --flowmap A.pt B.pt --teacher T.pt --k 8 --n 32   # quicker

Every column is the RMS displacement per atom (Å) between a jump's landing point and the
reference: the teacher's ODE solved by ``--reference-substeps`` DPM-Solver++(2M) steps from the
same z_s (s = j/K, t = (j − 1)/K). A flow map that is worse than one teacher call at some jump
has not learnt what its warm start already knew there. Writes bench/results/flowmap_jumps.{md,json}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from moldiff.data.batch import collate
from moldiff.flowmap.losses import noised, teacher_dpm_solve
from moldiff.models import load_generator
from moldiff.train.data import load_training_data

TEACHER_COLUMNS = {"teacher, 1 call (DDIM)": 1, "teacher, 2 calls": 2, "teacher, 8 calls (the target)": 8}


def rms(a, b) -> float:
    """RMS over atoms of the coordinate displacement (Å) between two states."""
    return float(((a["coords"] - b["coords"]) ** 2).sum(1).mean().sqrt())


@torch.no_grad()
def jump_errors(flowmaps: dict, teacher, z0, graph, ks: list[int], reference_substeps: int,
                seed: int) -> list[dict]:  # fmt: skip
    """One row per jump (K, j): the landing errors of each flow map and teacher column."""
    rows, generator, b = [], torch.Generator().manual_seed(seed), graph.num_graphs
    for k in ks:
        for j in range(k, 0, -1):
            s, t = torch.full((b,), j / k, dtype=z0.dtype), torch.full((b,), (j - 1) / k, dtype=z0.dtype)
            z_s, _ = noised(z0, s, graph, teacher.schedule, generator)
            reference = teacher_dpm_solve(teacher, z_s, s, t, graph, reference_substeps)
            row = {"K": k, "j": j, "s": j / k, "t": (j - 1) / k, "distance": rms(z_s, reference)}
            for name, model in flowmaps.items():
                row[name] = rms(model(z_s, s, t, graph), reference)
            for name, calls in TEACHER_COLUMNS.items():
                row[name] = rms(teacher_dpm_solve(teacher, z_s, s, t, graph, calls), reference)
            rows.append(row)
            print(" ".join(f"{key} {value:.3f}" if isinstance(value, float) else f"{key} {value}"
                           for key, value in row.items()), flush=True)  # fmt: skip
    return rows


def markdown(rows: list[dict], columns: list[str], title: str) -> str:
    lines = [f"### {title}", "", "| K | jump s → t | ‖z_t − z_s‖ | " + " | ".join(columns) + " |",
             "|---|---|---|" + "---|" * len(columns)]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['K']} | {r['s']:.3f} → {r['t']:.3f} | {r['distance']:.3f} | "
                     + " | ".join(f"{r[c]:.3f}" for c in columns) + " |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flowmap", nargs="+", required=True, help="flow-map models: built-in names or files")
    parser.add_argument("--teacher", default="qm9-edm", help="the teacher: a built-in name or a model file")
    parser.add_argument("--k", type=int, nargs="+", default=[1, 2, 4, 8], help="uniform grids whose jumps to measure")
    parser.add_argument("--n", type=int, default=64, help="validation molecules")
    parser.add_argument("--reference-substeps", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "flowmap_jumps"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    teacher_gen, config, _ = load_generator(args.teacher)
    flowmaps = {}
    for name in args.flowmap:
        gen, _, payload = load_generator(name)
        if not hasattr(gen.denoiser, "jump"):
            parser.error(f"{name} is not a flow map")
        flowmaps[f"{name} (step {payload.get('step')})"] = gen.denoiser.model
    _, valid = load_training_data(config.data)
    batch = collate(valid, np.arange(min(args.n, len(valid))), teacher_gen.vocab, ())
    z0, graph = teacher_gen.encode(batch)
    rows = jump_errors(flowmaps, teacher_gen.denoiser, z0, graph, args.k, args.reference_substeps, args.seed)
    columns = [*flowmaps, *TEACHER_COLUMNS]
    title = (f"Landing error of each jump, RMS Å per atom, against the teacher {args.teacher}'s ODE "
             f"({args.reference_substeps} DPM-Solver++(2M) steps); {graph.num_graphs} noised validation molecules")  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"flowmaps": list(flowmaps), "teacher": args.teacher, "n": args.n,
                                                    "reference_substeps": args.reference_substeps, "seed": args.seed,
                                                    "rows": rows}, indent=2) + "\n")  # fmt: skip
    out.with_suffix(".md").write_text(markdown(rows, columns, title))
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
