"""EDM's conditional-generation protocol on QM9 (Hoogeboom et al. 2022, §5.3; ANCHORS.md):
MAE between the target property and the property of the generated molecule, as judged by an
independent EGNN predictor.

    python bench/bench_conditional.py --n 1000                         # the built-in models, 1,000 per property
    python bench/bench_conditional.py --work-dir runs/cond --properties gap --gen-minutes 600 --n 2000
    python bench/bench_conditional.py --tiny                           # a smoke run of every stage (~2 min)

By default the protocol measures the built-in models: the judge ``qm9-judge``, the joint conditional
model ``qm9-cond`` and, for the energy-guided rows, the guide given by --guide-predictor (the
built-in ``qm9-predictor``). --work-dir DIR trains them instead (checkpoints go to DIR and are
reused with --reuse), with --judge-minutes, --gen-minutes and --predictor-minutes.

Stages:
1. QM9's training split is halved (``data.half``): A = first 50,000, B = the other 50,000.
2. The judge: a clean property predictor (``noisy: false``) trained on A, never used for guidance.
3. Reference rows, the judge on B's real molecules: the QM9 lower bound (their own labels), the
   naive upper bound (labels shuffled), and #atoms (labels shuffled among molecules with the same
   atom count: a "generator" that knows only the size).
4. Per property, a conditional model trained on B (classifier-free, ``train.cond_drop_prob``),
   sampled with (target, atom count) pairs drawn from B at guidance scale w; MAE of the judge on
   every generated molecule (EDM does not filter by validity). With --joint, one model conditioned
   on all the properties at once, each dropped on its own (``train.cond_property_drop_prob``), is
   sampled with one target at a time (the others absent): one training instead of six.
   --model NAME skips the training and samples that model instead (conditional or not; a flow
   map with --solver flow-map): the unguided and energy-guided rows then measure what guidance adds.
5. With --guide-predictor (or --predictor-minutes > 0: one trained on B) also EEGSDE: a noisy
   predictor of half B steers the conditional model toward the target (energy λ (ĝ − c)², one row
   per λ of --eegsde-scale, and one row with a λ per property from --eegsde-tuned).
   --steer-particles P adds a row that also steers with particles: P energy-guided particles per
   molecule, keeping the one that is valid by the EDM rule and closest to its target by the same
   predictor at t = 0 (P times the sampling cost). --steer-predictors NAME... has more noisy
   half-B predictors read the particles too (e.g. ``qm9-predictor-long``): the one kept is
   closest by their mean energy.

Writes OUT.json and OUT.md (default bench/results/conditional) after every property, OUT.md with
the published rows and each measured row's distance from EDM and EEGSDE in standard errors; --resume
keeps the properties a cut-off run finished and measures the rest.

The 10,000 molecules per property the protocol asks for take days on a CPU, so they can be made in
pieces: --records DIR keeps each molecule's verdicts (one gzipped CSV per property and row, saved
after every batch, with the settings that made them), and a later run with the same settings, on
this machine or another, goes on from the last batch. --round R measures every property's first R
molecules before any property's next R, so a run stopped at any time leaves a balanced table;
--rows picks the rows to spend the time on; several processes on disjoint --properties can share
one DIR, and --report-only then writes the table from what DIR holds (the models that made the
records must be the same files: their settings name them by digest):

    python bench/bench_conditional.py --properties alpha gap homo --eegsde-scale \
        --eegsde-tuned alpha=16 gap=4 homo=8 --steer-particles 4 --guide-predictor qm9-predictor \
        --rows steered --precision bf16 --threads 1 \
        --records bench/results/conditional_10k --round 100 --out bench/results/conditional_10k_a
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from conditional_records import Records

from moldiff import defaults
from moldiff.nets.precision import denoiser_networks, resolve_precision, set_precision

PROPERTIES = ["alpha", "gap", "homo", "lumo", "mu", "Cv"]
PUBLISHED = {  # ANCHORS.md, EDM protocol
    "Naive upper bound (published)": [9.01, 1470, 645, 1457, 1.616, 6.857],
    "#Atoms (published)": [3.86, 866, 426, 813, 1.053, 1.971],
    "EDM (published)": [2.76, 655, 356, 584, 1.111, 1.101],
    "EEGSDE (published)": [2.50, 487, 302, 447, 0.777, 0.941],
    "QM9 lower bound (published)": [0.10, 64, 39, 36, 0.043, 0.040],
}
PUBLISHED_ROWS = {name: dict(zip(PROPERTIES, maes)) for name, maes in PUBLISHED.items()}  # name -> property -> MAE
ROWS = ("cfg", "eegsde", "tuned", "steered")
BUILTIN_JUDGE, BUILTIN_CONDITIONAL = "qm9-judge", "qm9-cond"  # measured unless --work-dir trains others
TINY = dict(max_train=64, gen_minutes=0.05, judge_minutes=0.05, predictor_minutes=0.05, n=8, steps=5, n_reference=200,
            gen_hidden=16, gen_layers=2, judge_hidden=16, judge_layers=2, properties=["gap", "mu"])


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--properties", nargs="+", default=PROPERTIES, choices=PROPERTIES)
    p.add_argument("--n", type=int, default=10_000, help="generated molecules per property")
    p.add_argument("--steps", type=int, default=defaults.STEPS, help="NFE budget per molecule")
    p.add_argument("--solver", default=defaults.SOLVER)
    p.add_argument("--guidance-scale", type=float, default=1.0, help="classifier-free w (1: plain conditional)")
    p.add_argument("--eegsde-scale", type=float, nargs="*", default=[1.0],
                   help="energy guidance strength λ (several: one row each; none: no fixed-λ row)")
    p.add_argument("--eegsde-tuned", nargs="+", default=[], metavar="PROP=λ",
                   help="one more row with a λ of its own per property (chosen on another --seed, as EEGSDE "
                        "tuned its scales), e.g. alpha=16 gap=8")
    p.add_argument("--steer-particles", type=int, default=0, metavar="P",
                   help="> 1: add a row steered with P particles per molecule on top of energy guidance "
                        "(λ per property from --eegsde-tuned, else the first --eegsde-scale)")
    p.add_argument("--steer-predictors", nargs="+", default=[], metavar="NAME",
                   help="more noisy half-B predictors (built-in names or files) that also read the steered "
                        "particles: the reward is the "
                        "mean of every predictor's energy (the guide's and these), so the particle kept is the "
                        "one they agree is closest, not one that only fools the guide")
    p.add_argument("--judge-minutes", type=float, default=120.0, help="--work-dir: training time of the judge")
    p.add_argument("--gen-minutes", type=float, default=600.0, help="training time of each conditional model")
    p.add_argument("--init", default=None,
                   help="start each conditional model from this model (e.g. qm9-edm, the built-in unconditional "
                        "model) with its architecture and schedule; the condition inputs start at zero")
    p.add_argument("--joint", action="store_true",
                   help="one conditional model for all --properties (each dropped on its own in training) "
                        "instead of one per property; --gen-minutes is then its whole training time")
    p.add_argument("--property-drop-prob", type=float, default=0.5,
                   help="--joint: of a kept condition, the chance that each property is dropped")
    p.add_argument("--model", default=None,
                   help="guide this model (built-in name or file; conditional or not, a flow map with --solver "
                        "flow-map) instead of training conditional models")
    p.add_argument("--predictor-minutes", type=float, default=0.0,
                   help="--work-dir: > 0 trains a noisy predictor there and adds the EEGSDE rows")
    p.add_argument("--guide-predictor", default=None, metavar="NAME",
                   help="guide with this noisy predictor trained on half B only (a built-in name such as "
                        "qm9-predictor, or a file): adds the EEGSDE rows")
    p.add_argument("--max-train", type=int, default=None, help="use only the first N molecules of each half")
    p.add_argument("--gen-hidden", type=int, default=128)
    p.add_argument("--gen-layers", type=int, default=6)
    p.add_argument("--judge-hidden", type=int, default=128)
    p.add_argument("--judge-layers", type=int, default=7)
    p.add_argument("--n-reference", type=int, default=10_000, help="real molecules of B for the reference rows")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "auto"),
                   help="arithmetic of the generator and the guiding predictors (never the judge's): "
                        "bf16 matrix products are ~2x faster where native (moldiff.nets.precision)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", type=Path, default=None,
                   help="train the judge, the conditional models and the guide in DIR instead of measuring the "
                        "built-in qm9-judge and qm9-cond")
    p.add_argument("--reuse", action="store_true", help="reuse checkpoints already in --work-dir")
    p.add_argument("--references-only", action="store_true", help="only the judge and the reference rows")
    p.add_argument("--tiny", action="store_true", help="smoke run: tiny data, networks, times and samples")
    p.add_argument("--out", type=Path, default=Path("bench/results/conditional"))
    p.add_argument("--resume", action="store_true",
                   help="keep the properties OUT.json already holds (same settings) and measure only the rest")
    p.add_argument("--records", type=Path, default=None, metavar="DIR",
                   help="keep every molecule's verdicts in DIR, one file per property and row, saved after each "
                        "batch; a later run with the same settings goes on from there (and --n may grow)")
    p.add_argument("--rows", nargs="+", default=None, choices=ROWS,
                   help="which moldiff rows to measure (default: all that the other options ask for; eegsde: one "
                        "per --eegsde-scale; tuned: --eegsde-tuned; steered: --steer-particles)")
    p.add_argument("--round", type=int, default=None, metavar="R",
                   help="with --records: measure every property's first R molecules, then the next R, ..., so a "
                        "run stopped early leaves every property with about as many (R a multiple of the batch "
                        "keeps every batch full)")
    p.add_argument("--report-only", action="store_true",
                   help="sample nothing: the table from the molecules --records already holds (up to --n)")
    args = p.parse_args()
    args.eegsde_tuned = parse_tuned(p, args.eegsde_tuned)
    if args.report_only and args.records is None:
        p.error("--report-only reads --records DIR")
    if args.round is not None and (args.round < 1 or args.records is None):
        p.error("--round wants a positive number of molecules and --records DIR to keep them between rounds")
    args.reuse = args.reuse or args.report_only  # a report trains nothing
    if args.tiny:
        for key, value in TINY.items():
            setattr(args, key, value)
        args.out = args.out.with_name(args.out.name + "_tiny")
        args.work_dir = args.work_dir or Path("runs/bench_conditional_tiny")
        if args.records is not None:
            args.records = args.records.with_name(args.records.name + "_tiny")
    check_builtin(p, args)
    check_rows(p, args)  # after --tiny, which sets a guide of its own
    if args.report_only and not args.records.is_dir():
        p.error(f"--report-only: {args.records} is not a directory of records")
    return args


def check_builtin(parser: argparse.ArgumentParser, args) -> None:
    """Without --work-dir the built-in models are measured: nothing is trained, and the conditional
    model is the joint one."""
    if args.work_dir is not None:
        return
    if args.predictor_minutes > 0:
        parser.error("--predictor-minutes trains a predictor in --work-dir; without one, guide with "
                     "--guide-predictor qm9-predictor")
    if args.init:
        parser.error("--init starts the conditional models trained in --work-dir; give --work-dir")
    if args.model is None:
        args.joint = True  # qm9-cond is conditioned on all six properties


def check_rows(parser: argparse.ArgumentParser, args) -> None:
    """--rows defaults to every row; a row asked for by name must have the options it needs."""
    if args.rows is None:
        args.rows = list(ROWS)
        return
    guided = args.predictor_minutes > 0 or args.guide_predictor is not None
    needs = {"eegsde": guided and bool(args.eegsde_scale), "tuned": guided and bool(args.eegsde_tuned),
             "steered": guided and args.steer_particles > 1}  # fmt: skip
    option = {"eegsde": "--eegsde-scale", "tuned": "--eegsde-tuned", "steered": "--steer-particles P > 1"}
    for row in args.rows:
        if not needs.get(row, True):
            parser.error(f"--rows {row} needs a guide (--predictor-minutes or --guide-predictor) and {option[row]}")
    rowless = [prop for prop in args.properties if not property_rows(args, prop)]
    if rowless and not args.references_only:
        parser.error(f"--rows {' '.join(args.rows)} gives {', '.join(rowless)} no row (a tuned row needs a λ "
                     "in --eegsde-tuned)")


def parse_tuned(parser: argparse.ArgumentParser, items: list[str]) -> dict[str, float]:
    """``["alpha=16", "gap=8"]`` -> ``{"alpha": 16.0, "gap": 8.0}``; a bad entry is a usage error."""
    tuned = {}
    for item in items:
        prop, _, scale = item.partition("=")
        try:
            tuned[prop] = float(scale)
        except ValueError:
            parser.error(f"--eegsde-tuned wants PROP=λ, got {item!r}")
        if prop not in PROPERTIES:
            parser.error(f"--eegsde-tuned: unknown property {prop!r} (choose from {', '.join(PROPERTIES)})")
    return tuned


def common(args) -> list[str]:
    out = [f"train.threads={args.threads}", f"train.device={args.device}"]
    return out + ([f"data.max_train={args.max_train}"] if args.max_train else [])


def judge_file(args) -> Path:
    """The judge: the built-in ``qm9-judge``, or with --work-dir one trained (or reused) there."""
    if args.work_dir is None:
        from moldiff.models import resolve_predictor

        return resolve_predictor(BUILTIN_JUDGE)
    return train_predictor(args, "judge", "first", False, args.judge_minutes, args.judge_hidden, args.judge_layers)


def train_predictor(args, name: str, half: str, noisy: bool, minutes: float, hidden: int, layers: int) -> Path:
    from moldiff.config import PredictorConfig, load_config
    from moldiff.train.predictor import train_predictor as run

    out = args.work_dir / name
    if args.reuse and (out / "predictor.pt").exists():
        return out / "predictor.pt"
    if args.report_only:
        raise SystemExit(f"--report-only trains nothing, and {out / 'predictor.pt'} does not exist")
    cfg = load_config(None, common(args) + [
        f"out_dir={out}", f"data.half={half}", f"targets=[{', '.join(args.properties)}]", f"noisy={noisy}",
        f"model.hidden={hidden}", f"model.layers={layers}", f"train.max_minutes={minutes}",
        "train.log_every=200", "train.eval_every=100000000", "train.checkpoint_every=2000",
    ], PredictorConfig)  # fmt: skip
    print(f"[{name}] training for {minutes} min on half {half}", flush=True)
    run(cfg, log=lambda m: print(f"[{name}] {m}", flush=True))
    return out / "predictor.pt"


def train_generator(args, props: list[str], name: str) -> Path | None:
    """The conditional model of ``props`` in --work-dir, trained first unless --reuse finds it;
    None under --report-only when it was never trained (so nothing was sampled from it)."""
    from moldiff.config import apply_overrides, load_config, validate_config
    from moldiff.models import resolve_model
    from moldiff.train.checkpoint import load_checkpoint
    from moldiff.train.loop import train

    out = args.work_dir / name
    if args.reuse and (out / "model.pt").exists():
        return out / "model.pt"
    if args.report_only:
        return None
    overrides = common(args) + [
        "tracking.enabled=false", f"out_dir={out}", "data.half=second", f"data.properties=[{', '.join(props)}]",
        f"train.cond_property_drop_prob={args.property_drop_prob if len(props) > 1 else 0.0}",
        f"train.max_minutes={args.gen_minutes}", "train.eval_every=100000000", "train.log_every=500",
        "train.checkpoint_every=2000",
    ]  # fmt: skip
    init = str(resolve_model(args.init)) if args.init else None
    if init:  # the init model's own data, network and schedule; a fine-tuning learning rate
        source = load_checkpoint(init)["config"]
        source = {k: source[k] for k in ("data", "model", "diffusion") if k in source}
        cfg = validate_config(apply_overrides(source, overrides + ["train.lr=2.0e-4", "train.warmup_steps=200"]))
    else:
        cfg = load_config(None, overrides + [f"model.hidden={args.gen_hidden}", f"model.layers={args.gen_layers}"])
    print(f"[{name}] training the conditional model for {args.gen_minutes} min on half B"
          + (f", from {init}" if init else ""), flush=True)  # fmt: skip
    train(cfg, init=init, log=lambda m: print(f"[{name}] {m}", flush=True))
    return out / "model.pt"


def reference_rows(judge, half_b, args) -> dict[str, dict[str, float]]:
    """MAE of the judge on B's real molecules against their labels, shuffled labels, and labels
    shuffled within each atom count (a generator that ignores the target but matches the size);
    and EDM's #Atoms row, the MAE of the best guess from the atom count alone (the mean label of
    B's molecules of that size) against the true labels, which is about 1/√2 of the shuffle."""
    rng = np.random.default_rng(args.seed)
    index = rng.permutation(len(half_b))[: args.n_reference]
    mols = half_b.subset(index)
    pred = judge.predict(mols)
    counts = mols.n_atoms
    rows = {"QM9 lower bound": {}, "Naive upper bound": {}, "#Atoms": {}, "#Atoms (shuffled within size)": {}}
    for prop in args.properties:
        y, everyone = mols.properties[prop], half_b.properties[prop]
        within, guess = y.copy(), y.copy()
        for size in np.unique(counts):
            at = np.flatnonzero(counts == size)
            within[at] = y[rng.permutation(at)]
            guess[at] = everyone[half_b.n_atoms == size].mean()
        rows["#Atoms"][prop] = float(np.mean(np.abs(guess - y)))
        rows["#Atoms (shuffled within size)"][prop] = float(np.mean(np.abs(pred[prop] - within)))
        rows["QM9 lower bound"][prop] = float(np.mean(np.abs(pred[prop] - y)))
        rows["Naive upper bound"][prop] = float(np.mean(np.abs(pred[prop] - rng.permutation(y))))
    return rows


def conditional_mae(args, prop: str, n: int, model_path: Path, judge, half_b, predictor=None,
                    eegsde_scale: float = 0.0, particles: int = 1, readers: tuple = ()) -> dict | None:  # fmt: skip
    """Sample n molecules with (target, size) pairs from B; the judge's MAE and the EDM metrics of
    the samples (None when --report-only finds none).
    ``particles`` > 1 also steers (``moldiff.guidance.steering``): P energy-guided particles per
    molecule, and the one kept is valid by the EDM rule and closest to its target by the guide at
    t = 0 (never the judge); ``readers`` are more predictors whose energies are averaged with the
    guide's in that choice. With --records, molecules already measured by an earlier run with the
    same settings are read back instead of sampled again."""
    from dataclasses import replace

    from moldiff.guidance.cfg import ClassifierFreeDenoiser
    from moldiff.guidance.condition import PropertyNorm
    from moldiff.guidance.regressor import GuideTerm, PropertyEnergy, RegressorGuidedDenoiser
    from moldiff.guidance.steering import predictor_energy, score_reward, steering_solver
    from moldiff.models import load_generator
    from moldiff.generate import generate, molecule_seeds
    from moldiff.solvers import get_solver, solver_times

    gen, _, payload = load_generator(str(model_path), device=args.device_resolved)
    batch = max(1, args.batch_size // particles)  # a batch of P·B graphs slows each one down
    guide_path = args.predictor_path if predictor is not None else None
    name, settings = record_settings(args, prop, model_path, guide_path, eegsde_scale, particles)
    records = Records(args.records, name, settings)
    pick = np.random.default_rng([args.seed, 1]).integers(0, len(half_b), n)  # molecule i's never depends on n
    targets, counts = half_b.properties[prop][pick], half_b.n_atoms[pick].tolist()
    records.check_targets(targets)
    starts = range(len(records), len(records) if args.report_only else n, batch)
    if len(starts):
        for net in denoiser_networks(gen.denoiser):  # a diffusion model's network or a flow map's
            set_precision(net, args.precision_resolved)
        conditional = "property_stats" in payload  # an unconditional model (--model) gets only the size
        if conditional:
            norm = PropertyNorm.from_dict(payload["property_stats"])
            values = torch.full((n, len(norm.names)), float("nan"))  # a joint model: only ``prop`` is given
            values[:, norm.index(prop)] = torch.as_tensor(targets, dtype=torch.float32)
            cond = norm.encode(values, torch.isfinite(values)).to(args.device_resolved)
        seeds = molecule_seeds(args.seed, n)
        solver, times = get_solver(args.solver), solver_times(args.solver, args.steps, gen.denoiser.schedule)
    start, stage = time.time(), row_stage(predictor, eegsde_scale, particles)
    for a in starts:
        b, began = min(a + batch, n), time.time()
        denoiser = ClassifierFreeDenoiser(gen.denoiser, args.guidance_scale) if conditional else gen.denoiser
        steered = solver
        if predictor is not None:  # EEGSDE: energy (ĝ − c)² with each molecule's own target c
            own, to_own_target = PerMoleculeTarget(predictor, prop, targets[a:b]), [GuideTerm(prop, target=0.0)]
            denoiser = RegressorGuidedDenoiser(denoiser, own, to_own_target, eegsde_scale)
            if particles > 1:  # an invalid particle loses to any valid one within 2 std of its target
                choosers = [own, *(PerMoleculeTarget(m, prop, targets[a:b]) for m in readers)]
                energy = mean_energy([predictor_energy(PropertyEnergy(j, to_own_target), gen.denoiser.schedule)
                                      for j in choosers])  # fmt: skip
                reward = score_reward(gen.decode, [], invalid=-4.0, energy=energy)
                steered = steering_solver(solver, reward, particles=particles, resamplings=0, select="best")
        mols = generate(replace(gen, denoiser=denoiser), seeds[a:b], counts[a:b], solver=steered, times=times,
                        conditions=cond[a:b] if conditional else None, batch_size=b - a,
                        device=args.device_resolved)  # fmt: skip
        records.add(measure_batch(args, prop, mols, targets[a:b], a, judge, predictor, time.time() - began))
        print(f"[{prop}] {stage}: {b}/{n} molecules, {time.time() - start:.0f} s", flush=True)
    summary = summarise(records.first(n), predictor is not None)
    if summary is None:  # --report-only and no molecule yet
        return None
    return {**summary, "model_step": payload.get("step")}


def row_stage(predictor, eegsde_scale: float, particles: int) -> str:
    stage = f"energy guidance λ = {eegsde_scale:g}" if predictor is not None else "no energy guidance"
    return stage + (f", {particles} particles" if particles > 1 else "")


def measure_batch(args, prop: str, mols, targets: np.ndarray, first: int, judge, predictor, seconds: float):
    """One row per molecule: its target, the judge's verdict (and the guide's), its EDM metrics."""
    import pandas as pd

    from moldiff.chem.evaluate import evaluate

    _, frame = evaluate(mols)
    rows = {"index": np.arange(first, first + len(mols)), "target": targets,
            "judged": judge.predict(mols, device=args.device_resolved)[prop],
            "guide": (predictor.predict(mols, device=args.device_resolved)[prop] if predictor is not None
                      else np.full(len(mols), np.nan)),
            "n_atoms": frame["n_atoms"].to_numpy(), "n_stable_atoms": frame["n_stable_atoms"].to_numpy(),
            "mol_stable": frame["mol_stable"].to_numpy(), "valid": frame["valid"].to_numpy(),
            "seconds": np.full(len(mols), seconds / len(mols)), "device": args.device_resolved}  # fmt: skip
    return pd.DataFrame(rows)


def summarise(frame, guided: bool) -> dict | None:
    """The judge's MAE (± its standard error) over every generated molecule (EDM does not filter by
    validity) and the molecules' EDM metrics; ``guide_mae`` is the guide's own verdict at t = 0, far
    below the judge's when guidance fools its predictor."""
    if not len(frame):
        return None
    judged, targets = frame["judged"].to_numpy(float), frame["target"].to_numpy(float)
    ok = np.isfinite(judged)
    errors = np.abs(judged - targets)[ok]
    n = len(frame)
    # corr: does the condition move the property at all? (0 for an unconditional model)
    corr = float(np.corrcoef(judged[ok], targets[ok])[0, 1]) if ok.sum() > 2 else float("nan")
    se = float(errors.std(ddof=1) / np.sqrt(len(errors))) if len(errors) > 1 else float("nan")
    extra = {"guide_mae": float(np.nanmean(np.abs(frame["guide"].to_numpy(float) - targets)))} if guided else {}
    atoms = int(frame["n_atoms"].sum())
    return {"mae": float(errors.mean()) if len(errors) else float("nan"), "mae_se": se, "n": n,
            "n_judged": int(ok.sum()), "corr": corr, **extra,
            "validity": float(frame["valid"].mean()), "mol_stability": float(frame["mol_stable"].mean()),
            "atom_stability": float(frame["n_stable_atoms"].sum() / atoms) if atoms else float("nan"),
            "seconds_per_molecule": float(frame["seconds"].mean()),
            "devices": sorted(set(frame["device"].astype(str)))}  # fmt: skip


def record_settings(args, prop: str, model_path: Path, guide_path: Path | None, eegsde_scale: float,
                    particles: int) -> tuple[str, dict]:  # fmt: skip
    """The file name of one row's records and everything that decides its molecules and verdicts.
    Not the device or the batch size: they change only the rounding, so a row may be continued on
    another machine with batches its size suits (each molecule says where it was made)."""
    from moldiff.models import resolve_predictor
    from moldiff.paths import file_digest

    name = prop + ("_cfg" if guide_path is None else f"_eegsde{eegsde_scale:g}")
    name += f"_steer{particles}" if particles > 1 else ""
    settings = {"property": prop, "model": file_digest(model_path), "judge": file_digest(args.judge_path),
                "predictor": file_digest(guide_path) if guide_path is not None else None,
                "readers": [file_digest(resolve_predictor(p)) for p in args.steer_predictors] if particles > 1 else [],
                "eegsde_scale": eegsde_scale if guide_path is not None else None, "particles": particles,
                "solver": args.solver, "steps": args.steps, "guidance_scale": args.guidance_scale,
                "seed": args.seed, "precision": args.precision_resolved}  # fmt: skip
    return name, settings


def mean_energy(energies: list):
    """The mean of several clean-molecule energies (``predictor_energy`` functions)."""
    return lambda z, graph: sum(e(z, graph) for e in energies) / len(energies)


class PerMoleculeTarget:
    """The predictor's ``prop`` minus each molecule's own normalised target (B,), as a one-output
    model: the guide term "target 0" then pulls every molecule of the batch toward its own value."""

    def __init__(self, predictor, prop: str, targets: np.ndarray) -> None:
        from moldiff.guidance.condition import PropertyNorm

        self.predictor, self.k = predictor, predictor.norm.index(prop)
        mean, std = predictor.norm.mean[self.k], predictor.norm.std[self.k]
        self.targets = (torch.as_tensor(targets, dtype=torch.float64) - mean) / std
        self.norm = PropertyNorm((prop,), (0.0,), (1.0,))

    def __call__(self, z, t, graph, schedule=None):
        pred = self.predictor(z, t, graph, schedule)[:, self.k]
        # steering's particles: each molecule's P copies in a row (MolGraph.repeat)
        targets = self.targets.to(pred).repeat_interleave(graph.num_graphs // len(self.targets))
        return (pred - targets)[:, None]


def load_noisy_half_b(path: Path, option: str, device):
    """A property model that may read noisy molecules of half B: a noisy predictor trained on half B."""
    from moldiff.property_model import PREDICTOR, load_property_model
    from moldiff.train.checkpoint import load_checkpoint

    config = load_checkpoint(path, (PREDICTOR,))["config"]
    if not config.get("noisy") or config.get("data", {}).get("half") != "second":
        raise SystemExit(f"{option}: {path} must be a noisy predictor trained on half B "
                         "(noisy: true, data.half: second)")
    return load_property_model(path, device)


def number(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 10 else f"{v:.0f}"


def table_head(props: list[str]) -> list[str]:
    from moldiff.guidance.units import PROPERTIES as INFO

    return ["| method | " + " | ".join(f"{p} ({INFO[p].unit})" for p in props) + " |", "|" + "---|" * (len(props) + 1)]


def markdown(rows: dict[str, dict[str, float]], props: list[str], note: str, errors: dict | None = None) -> str:
    """A table of rows × properties; ``errors`` (row -> property -> standard error) adds "± se"."""
    lines = table_head(props)
    for name, values in rows.items():
        cells = []
        for p in props:
            v, se = values.get(p), (errors or {}).get(name, {}).get(p)
            spread = f" ± {number(se)}" if se is not None and np.isfinite(se) else ""
            cells.append("–" if v is None else number(v) + spread)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\n{note}\n"


def standing(measured: dict[str, dict[str, float]], errors: dict, props: list[str], published: dict) -> str:
    """Each measured row minus each ``published`` row (name -> property -> MAE), per property, and that
    difference in the row's standard errors: how far below (−) or above (+) a published MAE it is."""

    def signed(v: float, text: str) -> str:
        return ("−" if v < 0 else "+") + text.lstrip("-")

    lines = table_head(props)
    for label, values in measured.items():
        for name, reference in published.items():
            cells = []
            for p in props:
                v, se = values.get(p), errors.get(label, {}).get(p)
                if v is None:
                    cells.append("–")
                    continue
                d = v - reference[p]
                spread = f" ({signed(d, f'{d / se:.1f}')} SE)" if se is not None and np.isfinite(se) and se > 0 else ""
                cells.append(signed(d, number(d)) + spread)
            lines.append(f"| {label} − {name.removesuffix(' (published)')} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def method_labels(args) -> dict[str, str]:
    """The key of each moldiff row in a property's details -> its label in the table."""
    if args.references_only or not args.properties:
        return {}
    labels = {"cfg": f"moldiff {args.model}, no energy guidance" if args.model
              else f"moldiff conditional (w = {args.guidance_scale:g})"} if "cfg" in args.rows else {}  # fmt: skip
    if args.predictor_minutes > 0 or args.guide_predictor:  # EEGSDE rows
        if "eegsde" in args.rows:
            labels.update({f"eegsde_{s:g}": f"moldiff + energy guidance (λ = {s:g})" for s in args.eegsde_scale})
        if args.eegsde_tuned and "tuned" in args.rows:
            labels["eegsde_tuned"] = "moldiff + energy guidance (λ tuned per property)"
        if args.steer_particles > 1 and "steered" in args.rows:
            by = f", best by {1 + len(args.steer_predictors)} predictors" if args.steer_predictors else ", best"
            labels["steered"] = f"moldiff + energy guidance + steering ({args.steer_particles} particles{by})"
    return labels


def property_rows(args, prop: str) -> list[str]:
    """The keys of ``method_labels`` that ``measure_property`` fills for ``prop``: the tuned row
    only for a property that --eegsde-tuned gives a λ."""
    return [key for key in method_labels(args) if key != "eegsde_tuned" or prop in args.eegsde_tuned]


def measure_property(args, prop: str, n: int, model: Path, judge, half_b, predictor,
                     readers: tuple = ()) -> dict[str, dict]:  # fmt: skip
    """Every moldiff row of one property (of --rows) on its first n molecules, keyed as in
    ``method_labels``; a row without any molecule yet (--report-only) is left out."""

    def row(predictor=None, scale: float = 0.0, particles: int = 1, label: dict | None = None) -> dict | None:
        measured = conditional_mae(args, prop, n, model, judge, half_b, predictor, scale, particles, readers)
        return None if measured is None else {**(label or {}), **measured}

    details = {"cfg": row()} if "cfg" in args.rows else {}
    if predictor is not None:
        for scale in args.eegsde_scale if "eegsde" in args.rows else ():
            details[f"eegsde_{scale:g}"] = row(predictor, scale)
        if prop in args.eegsde_tuned and "tuned" in args.rows:
            scale = args.eegsde_tuned[prop]  # the same seeds: a λ already sampled gives the same molecules
            same = details.get(f"eegsde_{scale:g}")
            label = {"scale": scale}
            details["eegsde_tuned"] = {**label, **same} if same else row(predictor, scale, label=label)
        if args.steer_particles > 1 and "steered" in args.rows:
            scale = args.eegsde_tuned.get(prop, args.eegsde_scale[0] if args.eegsde_scale else 1.0)
            details["steered"] = row(predictor, scale, args.steer_particles,
                                     label={"scale": scale, "particles": args.steer_particles})
    return {key: value for key, value in details.items() if value is not None}


# Arguments that change neither the molecules nor the measurements: --resume ignores them.
NOT_SETTINGS = {"properties", "threads", "device", "device_resolved", "out", "reuse", "resume", "records", "rows",
                "round", "report_only", "judge_path", "predictor_path", "batch_size"}


def saved_args(args) -> dict[str, str]:
    return {k: str(v) for k, v in vars(args).items()}


def resumed_details(args) -> dict[str, dict]:
    """--resume: the properties of --properties that OUT.json already holds in full (every row, all
    --n molecules), measured with the same settings (a run cut off keeps every property it finished)."""
    path = args.out.with_suffix(".json")
    if not args.resume or not path.exists():
        return {}
    saved = json.loads(path.read_text())
    now = saved_args(args)
    before = {"precision": "fp32", "precision_resolved": "fp32", **saved["args"]}  # older runs: all fp32
    differ = sorted(k for k in (set(now) | set(before)) - NOT_SETTINGS if now.get(k) != before.get(k))
    if differ:
        raise SystemExit(f"--resume: {path} was measured with other settings ({', '.join(differ)}); "
                         "choose another --out")  # fmt: skip

    def finished(prop: str) -> bool:
        rows = saved["details"].get(prop, {})
        return all(key in rows and rows[key].get("n", args.n) == args.n for key in property_rows(args, prop))

    return {p: saved["details"][p] for p in args.properties if finished(p)}


def row_count(n: int, measured: list[dict]) -> str:
    """" (n = 2,300)" after a row's label while it holds fewer than --n molecules per property."""
    counts = sorted({x.get("n", n) for x in measured})
    if not counts or counts == [n]:
        return ""
    return f" (n = {counts[0]:,})" if len(counts) == 1 else f" (n = {counts[0]:,}–{counts[-1]:,})"


def write_results(args, reference: dict, details: dict, labels: dict[str, str], judge_step, started: float) -> str:
    """OUT.md and OUT.json, rewritten atomically after every property."""
    from moldiff.paths import atomic_write_text

    labels = {key: label + row_count(args.n, [d[key] for d in details.values() if key in d])
              for key, label in labels.items()}  # fmt: skip
    rows = {**{k: reference[k] for k in ("Naive upper bound", "#Atoms (shuffled within size)", "#Atoms")},
            **{label: {p: d[key]["mae"] for p, d in details.items() if key in d} for key, label in labels.items()},
            "QM9 lower bound": reference["QM9 lower bound"]}  # fmt: skip
    errors = {label: {p: d[key].get("mae_se") for p, d in details.items() if key in d}
              for key, label in labels.items()}  # fmt: skip
    steps = sorted({x["model_step"] for d in details.values() for x in d.values()}) or ["no"]
    missing = [p for p in args.properties if p not in details] if labels else []
    short = any(x.get("n", args.n) < args.n for d in details.values() for x in d.values())
    count = ("no molecules yet" if not details else
             f"{args.n:,} molecules per property asked (fewer so far where a row's label gives its n)" if short else
             f"{args.n:,} molecules per property")  # fmt: skip
    note = (f"{count} (MAE ± its standard error), {args.solver} with {args.steps} NFE, w = {args.guidance_scale:g}; "
            f"judge {'' if args.work_dir else BUILTIN_JUDGE + ', '}trained {judge_step} steps on half A; "
            + (f"the model {args.model} (step {'/'.join(map(str, steps))}; its training data may include half A)"
               if args.model else
               (f"the joint conditional model {BUILTIN_CONDITIONAL}" if args.work_dir is None else
                "one joint conditional model" if args.joint else "one conditional model per property")
               + f" trained {'/'.join(map(str, steps))} steps on half B" + (f" from {args.init}" if args.init else ""))
            + (f", max_train {args.max_train}" if args.max_train else "")
            + (f"; tuned λ: {', '.join(f'{k} {v:g}' for k, v in args.eegsde_tuned.items())}"
               if "eegsde_tuned" in labels else "")
            + (f"; guided by {args.guide_predictor}" if args.guide_predictor and len(labels) > 1 else "")
            + (f"; steered particles also read by {', '.join(map(str, args.steer_predictors))}"
               if args.steer_predictors and "steered" in labels else "")
            + (f"; {args.precision_resolved} matrix products" if args.precision_resolved != "fp32" else "")
            + f"; {(time.time() - started) / 60:.1f} min in this run"
            + (f"; still to measure: {', '.join(missing)}." if missing else "."))  # fmt: skip
    if args.references_only:
        note = f"The judge ({judge_step} steps on half A) on {args.n_reference} real molecules of half B."
    text = "### Measured\n\n" + markdown(rows, args.properties, note, errors)
    text += "\n### Published (EDM protocol)\n\n" + markdown(PUBLISHED_ROWS, args.properties, "ANCHORS.md")
    measured = {label: rows[label] for label in labels.values() if rows[label]}
    rivals = {k: PUBLISHED_ROWS[k] for k in ("EDM (published)", "EEGSDE (published)")}
    if measured:
        text += ("\n### Against published\n\nMeasured MAE minus published MAE (and that difference in "
                 "standard errors of the measurement; negative is better).\n\n"
                 + standing(measured, errors, args.properties, rivals))
    atomic_write_text(args.out.with_suffix(".md"), text)
    atomic_write_text(args.out.with_suffix(".json"),
                      json.dumps({"rows": rows, "details": details, "args": saved_args(args)}, indent=2))
    return text


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    args.device_resolved = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    args.precision_resolved = resolve_precision(args.precision, args.device_resolved)
    from moldiff.data.qm9 import load_qm9
    from moldiff.models import resolve_model, resolve_predictor
    from moldiff.property_model import PREDICTOR, load_property_model
    from moldiff.train.checkpoint import load_checkpoint
    from moldiff.train.data import training_half

    started = time.time()
    details = resumed_details(args)
    half_b = training_half(load_qm9("train"), "second")
    args.judge_path = judge_file(args)
    judge = load_property_model(args.judge_path, args.device_resolved)
    judge_step = load_checkpoint(args.judge_path, (PREDICTOR,)).get("step")
    reference = reference_rows(judge, half_b, args)
    print(f"reference rows done ({args.n_reference} real molecules of half B)", flush=True)
    todo = [] if args.references_only else [p for p in args.properties if p not in details]
    if details:
        print(f"resumed: {', '.join(details)} already measured in {args.out.with_suffix('.json')}", flush=True)
    predictor = args.predictor_path = None
    if args.guide_predictor and todo:
        args.predictor_path = resolve_predictor(args.guide_predictor)
        predictor = load_noisy_half_b(args.predictor_path, "--guide-predictor", args.device_resolved)
    elif args.predictor_minutes > 0 and todo:
        args.predictor_path = train_predictor(args, "predictor_b", "second", True, args.predictor_minutes,
                                              args.gen_hidden, args.gen_layers)  # fmt: skip
        predictor = load_property_model(args.predictor_path, args.device_resolved)
    readers = tuple(load_noisy_half_b(resolve_predictor(name), "--steer-predictors", args.device_resolved)
                    for name in (args.steer_predictors if todo else []))  # fmt: skip
    for guide in (predictor, *readers):
        if guide is not None:
            set_precision(guide.net, args.precision_resolved)
    labels = method_labels(args)
    shared = None
    if args.model:
        shared = resolve_model(args.model)
    elif args.work_dir is None and todo:
        shared = resolve_model(BUILTIN_CONDITIONAL)
    elif args.joint and todo:
        shared = train_generator(args, args.properties, "gen_joint")
    text = write_results(args, reference, details, labels, judge_step, started)
    models = {}
    for upto in rounds(args):
        for prop in todo:
            if prop not in models:  # trained once, sampled every round
                models[prop] = shared or train_generator(args, [prop], f"gen_{prop}")
            if models[prop] is None:  # --report-only: never trained, so nothing to report
                continue
            measured = measure_property(args, prop, upto, models[prop], judge, half_b, predictor, readers)
            if measured:  # --report-only: nothing for a property without records
                details[prop] = measured
                print(f"[{prop}] " + json.dumps(measured), flush=True)
            text = write_results(args, reference, details, labels, judge_step, started)
    print(text)


def rounds(args) -> list[int]:
    """How many molecules each property has after each round: --n at once, or R, 2R, ..., --n."""
    if args.round is None or args.report_only:
        return [args.n]
    return [*range(args.round, args.n, args.round), args.n]


if __name__ == "__main__":
    main()
