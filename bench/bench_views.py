"""Which view trains the best molecule model per CPU hour? Train the built-in recipe once per view
(variational ε / L_simple, score matching, flow matching) for the same number of optimiser steps,
then sample each with the same solvers and NFE and score with the EDM protocol.

    python bench/bench_views.py                                  # 3,000 steps per view, 200 molecules
    python bench/bench_views.py --steps 300 --n 50 --rows ddpm:100  # a quick look

Every view runs the same network on the same batches, so a step costs the same CPU in each; the
CPU seconds each training really used are measured (the trainer's process time, kept across
resumes) and reported.
Trainings live in ``runs/views/<view>`` and resume if interrupted (run the command again).
Writes bench/results/views.{md,json} (``--out`` changes the stem).

| view          | schedule   | network predicts | loss                                   |
|---------------|------------|------------------|----------------------------------------|
| variational   | polynomial | ε                | L_simple                               |
| score         | polynomial | score            | σ²-weighted denoising score matching    |
| flow          | linear     | velocity         | conditional flow matching (linear path) |
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch
from common import METRICS, parse_label, sample_and_score

from moldiff.models import load_generator
from moldiff.train.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
VIEWS = {
    "variational": {"schedule": "polynomial", "prediction": "eps"},
    "score": {"schedule": "polynomial", "prediction": "score"},
    "flow": {"schedule": "linear", "prediction": "velocity"},
}


def train_view(view: str, args) -> Path:
    """Train (or resume) one view to ``args.steps`` steps; returns its output folder."""
    out_dir = Path(args.runs) / view
    sets = {"name": f"views_{view}", "out_dir": str(out_dir), "diffusion.view": view,
            **{f"diffusion.{k}": v for k, v in VIEWS[view].items()}, "train.max_steps": args.steps,
            "train.eval_every": 10**9, "train.threads": args.threads, "tracking.enabled": "false"}  # fmt: skip
    cmd = [sys.executable, "-m", "moldiff", "train", "--config", args.config, "--resume"]
    for key, value in sets.items():
        cmd += ["--set", f"{key}={value}"]
    print(f"[{view}] training to step {args.steps} in {out_dir}", flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)
    return ROOT / out_dir


def markdown(rows: list[dict], title: str) -> str:
    head = ("| view | solver | NFE | n | atom stab. % | mol stab. % | valid % | valid×unique % | valid & one piece % "
            "| training CPU h |")  # fmt: skip
    lines = [f"### {title}", "", head, "|" + "---|" * 10]
    for r in rows:
        pct = " | ".join(f"{100 * r[k]:.1f}" for k in METRICS)
        cpu = f"{r['train_cpu_hours']:.2f}"
        lines.append(f"| {r['view']} | {r['solver']} | {r['nfe']:g} | {r['n']} | {pct} | {cpu} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="moldiff/configs/qm9_builtin.yaml", help="the recipe every view shares")
    parser.add_argument("--views", nargs="+", default=list(VIEWS), choices=list(VIEWS))
    parser.add_argument("--steps", type=int, default=3000, help="optimiser steps per view")
    parser.add_argument("--rows", nargs="+", default=["dpmpp-2m-sde:100", "heun:100"],
                        help="SOLVER:NFE to sample with (SOLVER as in bench_solvers: NAME[@GRID][,KEY=VALUE])")
    parser.add_argument("--n", type=int, default=200, help="molecules per row")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", default="runs/views", help="where the trainings live")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "views"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for view in args.views:
        out_dir = train_view(view, args)
        gen, _, payload = load_generator(str(out_dir / "model.pt"))
        # CPU of the whole training, summed by the trainer across resumed runs
        cpu = load_checkpoint(out_dir / "last.pt").get("cpu_seconds", 0.0) / 3600
        for row in args.rows:
            label, nfe = row.rsplit(":", 1)
            solver, grid, options = parse_label(label)
            result = sample_and_score(gen, solver, int(nfe), n=args.n, seed=args.seed, batch_size=args.batch_size,
                                      device="cpu", options=options, grid=grid)  # fmt: skip
            rows.append({"view": view, "step": payload.get("step"), "train_cpu_hours": cpu, **result, "solver": label})
            print(f"[{view}] {solver} NFE {result['nfe']:g}: atom {100 * result['atom_stability']:.1f}%  "
                  f"mol {100 * result['mol_stability']:.1f}%  valid {100 * result['validity']:.1f}%", flush=True)
    title = f"Views at {args.steps} steps each ({args.config}), {args.n} molecules per row"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"steps": args.steps, "config": args.config, "rows": rows},
                                                   indent=2) + "\n")  # fmt: skip
    out.with_suffix(".md").write_text(markdown(rows, title))
    print(f"wrote {out.with_suffix('.md')} and .json")


if __name__ == "__main__":
    main()
