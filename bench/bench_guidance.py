"""Drug-likeness guidance: how far regressor guidance moves QED and logP of the valid molecules,
and what it costs in validity and uniqueness, at several guidance scales against unguided sampling.

    python bench/bench_guidance.py --predictor runs/predictor_druglike/predictor.pt     # built-in model
    python bench/bench_guidance.py --predictor-minutes 120 --scales 1 2 4 --n 1000     # trains the predictor first
    python bench/bench_guidance.py --tiny                                              # smoke run (~1 min)
    python bench/bench_guidance.py --guides qed=max --scales --steer-particles 4 8     # particle steering only

Besides regressor guidance (a gradient of the noisy predictor at every step), each guide is also
run as Feynman–Kac reward steering (``moldiff.guidance.steering``) with each of --steer-particles
particles: RDKit's own score of the predicted molecule is the reward, no predictor needed; the
cost column says how many times the unguided run's time each row took.

Every run samples the same molecules (the same run seed gives the same atom counts and starting
noise), so the rows differ by the guidance alone. QED and logP are computed with RDKit on the valid
molecules (EDM bond rule) and averaged; "shift" is the guided mean minus the unguided one. Without
--predictor a noisy predictor of qed/logp/sa/mw is trained on QM9's training split for
--predictor-minutes (moldiff/configs/predictor_druglike.yaml). Writes OUT.json and OUT.md (default
bench/results/guidance).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from moldiff import defaults

TINY = dict(n=8, steps=10, scales=[1.0, 4.0], steer_particles=[2], predictor_minutes=0.1, max_train=200, predictor_hidden=32,
            predictor_layers=2)  # fmt: skip


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="qm9-edm", help="built-in name or model file")
    p.add_argument("--predictor", type=Path, default=None, help="a noisy predictor with qed and logp outputs")
    p.add_argument("--predictor-minutes", type=float, default=60.0, help="training time when --predictor is absent")
    p.add_argument("--predictor-hidden", type=int, default=128)
    p.add_argument("--predictor-layers", type=int, default=6)
    p.add_argument("--max-train", type=int, default=None, help="predictor: first N training molecules only")
    p.add_argument("--guides", nargs="+", default=["qed=max", "logp=max"], help="one guidance per entry")
    p.add_argument("--scales", nargs="*", type=float, default=[0.5, 1.0, 2.0, 4.0], help="regressor guidance scales")
    p.add_argument("--steer-particles", nargs="*", type=int, default=[4, 8], help="particles of each steering row")
    p.add_argument("--steer-strength", type=float, default=100.0)
    p.add_argument("--resamplings", type=int, default=0)
    p.add_argument("--steer-window", type=float, default=1.0)
    p.add_argument("--steer-select", default="best")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--steps", type=int, default=defaults.STEPS)
    p.add_argument("--solver", default=defaults.SOLVER)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--work-dir", type=Path, default=Path("runs/bench_guidance"))
    p.add_argument("--tiny", action="store_true", help="smoke run: tiny predictor, few molecules and steps")
    p.add_argument("--out", type=Path, default=Path("bench/results/guidance"))
    args = p.parse_args()
    if args.tiny:
        for key, value in TINY.items():
            setattr(args, key, value)
        args.out = args.out.with_name(args.out.name + "_tiny")
        args.work_dir = args.work_dir.with_name(args.work_dir.name + "_tiny")
    return args


def predictor_path(args) -> Path:
    if args.predictor is not None:
        return args.predictor
    from moldiff.config import PredictorConfig, load_config
    from moldiff.train.predictor import train_predictor

    overrides = [f"out_dir={args.work_dir / 'predictor'}", f"train.max_minutes={args.predictor_minutes}",
                 f"model.hidden={args.predictor_hidden}", f"model.layers={args.predictor_layers}",
                 f"train.threads={args.threads}", f"train.device={args.device}", "train.log_every=200",
                 "train.eval_every=100000000"] + ([f"data.max_train={args.max_train}"] if args.max_train else [])  # fmt: skip
    cfg = load_config("moldiff/configs/predictor_druglike.yaml", overrides, PredictorConfig)
    print(f"training a drug-likeness predictor for {args.predictor_minutes} min", flush=True)
    train_predictor(cfg, log=lambda m: None)
    return Path(cfg.out_dir) / "predictor.pt"


def run(gen, args, guide: str | None, scale: float, predictor, particles: int = 0) -> dict:
    """One row: unguided (``guide`` None), regressor guidance at ``scale``, or with ``particles``
    > 0 particle steering towards ``guide``."""
    from moldiff.chem.evaluate import evaluate
    from moldiff.chem.labels import druglike_scores
    from moldiff.guidance.regressor import RegressorGuidedDenoiser, parse_guide
    from moldiff.guidance.steering import score_reward, steering_solver
    from moldiff.sampling import generate
    from moldiff.solvers import get_solver, solver_times

    denoiser, solver = gen.denoiser, get_solver(args.solver)
    if guide is not None and particles:
        reward = score_reward(lambda z, graph: gen.decode(z, graph), [parse_guide(guide)])
        solver = steering_solver(solver, reward, particles=particles, strength=args.steer_strength,
                                 resamplings=args.resamplings, window=args.steer_window, select=args.steer_select)  # fmt: skip
    elif guide is not None:
        denoiser = RegressorGuidedDenoiser(denoiser, predictor, [parse_guide(guide)], scale)
    start = time.time()
    mols, _ = generate(replace(gen, denoiser=denoiser), args.n, seed=args.seed, solver=solver,
                       times=solver_times(args.solver, args.steps, gen.denoiser.schedule),
                       batch_size=args.batch_size, device=args.device_resolved)  # fmt: skip
    seconds = time.time() - start
    summary, frame = evaluate(mols)
    scores = druglike_scores(list(frame["smiles"]), ["qed", "logp"])

    def mean(values):
        return float(np.nanmean(values)) if np.isfinite(values).any() else None

    method = "none" if guide is None else f"steer P={particles}" if particles else "regressor"
    return {"guide": guide or "none", "method": method, "scale": scale if guide and not particles else 0.0,
            "particles": particles, "validity": summary["validity"], "valid_connected": summary["valid_connected"],
            "uniqueness": summary["uniqueness"], "valid_x_unique": summary["valid_x_unique"],
            "mol_stability": summary["mol_stability"], "qed": mean(scores["qed"]), "logp": mean(scores["logp"]),
            "n_valid": summary["n_valid"], "seconds_per_molecule": seconds / args.n}  # fmt: skip


def markdown(rows: list[dict], note: str) -> str:
    base = rows[0]

    def fmt(v, digits=3):
        return "–" if v is None else f"{v:.{digits}f}"

    def shift(r, key):
        return "–" if r[key] is None or base[key] is None else f"{r[key] - base[key]:+.3f}"

    lines = ["| guidance | method | scale | valid % | valid & one piece % | unique % | valid×unique % | mean QED | ΔQED "
             "| mean logP | ΔlogP | time × unguided |", "|" + "---|" * 12]  # fmt: skip
    for r in rows:
        keys = ("validity", "valid_connected", "uniqueness", "valid_x_unique")
        pct = " | ".join("–" if r.get(k) is None else f"{100 * r[k]:.1f}" for k in keys)
        cost = r["seconds_per_molecule"] / base["seconds_per_molecule"]
        scale = f"{r['scale']:g}" if r.get("method") == "regressor" else "–"
        lines.append(f"| {r['guide']} | {r.get('method', 'regressor')} | {scale} | {pct} | {fmt(r['qed'])} | "
                     f"{shift(r, 'qed')} | {fmt(r['logp'], 2)} | {shift(r, 'logp')} | {cost:.1f} |")  # fmt: skip
    return "\n".join(lines) + "\n\n" + "\n".join(target_lines(rows)) + f"\n\n{note}\n"


def target_lines(rows: list[dict]) -> list[str]:
    """The issue's target for QED guidance: mean QED of the valid molecules up by >= 0.05 with
    validity down by <= 5 points; the verdict for the scale with the largest QED gain that keeps it."""
    base = rows[0]
    qed_rows = [r for r in rows[1:] if r["guide"].startswith("qed") and r["qed"] is not None and base["qed"] is not None]
    if not qed_rows:
        return []
    ok = [r for r in qed_rows if r["qed"] - base["qed"] >= 0.05 and base["validity"] - r["validity"] <= 0.05]
    lines = []
    for method in sorted({r.get("method", "regressor") for r in qed_rows}):
        mine = [r for r in qed_rows if r.get("method", "regressor") == method]
        good = [r for r in ok if r in mine]
        best = max(good or mine, key=lambda r: r["qed"])
        how = f"scale {best['scale']:g}" if method == "regressor" else method
        lines.append(f"- QED guidance target (ΔQED ≥ +0.05, validity down ≤ 5 points), {method}: "
                     f"{'met' if good else 'NOT met'}; best {best['guide']} at {how}: ΔQED "
                     f"{best['qed'] - base['qed']:+.3f}, validity {100 * (best['validity'] - base['validity']):+.1f} points")  # fmt: skip
    return lines


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    args.device_resolved = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    from moldiff.models import load_generator
    from moldiff.property_model import load_property_model

    started = time.time()
    gen, _, payload = load_generator(args.model, device=args.device_resolved)
    predictor = load_property_model(predictor_path(args), args.device_resolved) if args.scales else None
    rows = [run(gen, args, None, 0.0, predictor)]
    print(json.dumps(rows[-1]), flush=True)
    for guide in args.guides:
        for scale in args.scales:
            rows.append(run(gen, args, guide, scale, predictor))
            print(json.dumps(rows[-1]), flush=True)
        for particles in args.steer_particles:
            rows.append(run(gen, args, guide, 0.0, None, particles))
            print(json.dumps(rows[-1]), flush=True)
    note = (f"{args.n} molecules per row from {args.model} (step {payload.get('step')}), "
            f"{args.solver} with {args.steps} NFE; {(time.time() - started) / 60:.1f} min in all.")  # fmt: skip
    text = markdown(rows, note)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps({"rows": rows, "args": {k: str(v) for k, v in vars(args).items()}},
                                                        indent=2))  # fmt: skip
    print(text)


if __name__ == "__main__":
    main()
