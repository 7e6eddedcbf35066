"""``moldiff sample``: generate molecules with a trained (by default the built-in) model."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from moldiff import defaults
from moldiff.cli.main import app


@app.command()
def sample(
    n: int = typer.Option(100, "-n", "--num", help="Number of molecules."),
    output: Path = typer.Option(Path("samples.sdf"), "-o", "--output", help="SDF to write (a CSV goes beside it)."),
    model: str = typer.Option(None, "--model", help="Built-in model name (default: qm9) or model file."),
    seed: int = typer.Option(0, "--seed", help="Run seed; molecule i gets a seed derived from (seed, i)."),
    steps: int = typer.Option(None, "--steps", help="Network evaluations (NFE) per molecule; sets the solver's grid "
                              f"(default: {defaults.STEPS}; {defaults.FLOWMAP_STEPS} for a flow map)."),
    solver: str = typer.Option(None, "--solver", help="ddpm, ddim, euler-maruyama, pc, euler, heun, dpmpp-2m, "
                               f"dpmpp-2m-sde, adaptive or flow-map (default: {defaults.SOLVER}; flow-map for a "
                               "flow map)."),
    solver_opt: list[str] = typer.Option(None, "--solver-opt", help="Solver option KEY=VALUE (ddim: eta=0.5)."),
    grid: str = typer.Option(None, "--grid", help="Time grid: uniform, log_snr, log_snr_late or edm "
                             "(default: the solver's own)."),
    types: str = typer.Option("argmax", "--types", help="Element of each atom: argmax of its type features, or "
                              "closed-shell (the most likely assignment with an even electron count)."),
    n_atoms: int = typer.Option(None, "--n-atoms", help="Atoms per molecule (default: drawn from training sizes)."),
    batch_size: int = typer.Option(100, "--batch-size", help="Molecules denoised together (steered: particles)."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda or auto."),
    precision: str = typer.Option("fp32", "--precision", help="Network arithmetic: fp32, bf16 (matrix products in "
                                  "bfloat16: about 2x faster where native) or auto (bf16 where native)."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
    track_run: bool = typer.Option(False, "--track/--no-track", help="Log the run to MLflow."),
    json_out: bool = typer.Option(False, "--json", help="Print the evaluator summary as one JSON object (progress stays on stderr)."),
    novelty: bool = typer.Option(True, "--novelty/--no-novelty", help="Novelty against the model's training set."),
    target: list[str] = typer.Option(None, "--target",
                                     help="Condition of a conditional model, PROPERTY=VALUE[UNIT] (gap=4.5eV)."),
    guidance_scale: float = typer.Option(1.0, "--guidance-scale",
                                         help="Classifier-free guidance w: 1 conditional, 0 unconditional, >1 sharper."),
    guide: list[str] = typer.Option(None, "--guide",
                                    help="Regressor guidance PROPERTY=VALUE[UNIT]|max|min[:WEIGHT] (qed=max)."),
    predictor: str = typer.Option(None, "--predictor", help="Property predictor file for --guide."),
    guide_scale: float = typer.Option(1.0, "--guide-scale", help="Overall strength of regressor guidance."),
    scaffold: Path = typer.Option(None, "--scaffold", help="SDF fragment whose atoms are kept (generate around it)."),
    scaffold_smiles: str = typer.Option(None, "--scaffold-smiles", help="SMILES scaffold, embedded in 3D and kept; * marks attachment points (other H kept)."),
    scaffold_h: bool = typer.Option(False, "--scaffold-h/--no-scaffold-h", help="Keep the scaffold's hydrogens too."),
    jump: int = typer.Option(1, "--jump", help="Scaffold: solver intervals between RePaint replacements."),
    resample: int = typer.Option(1, "--resample", help="Scaffold: RePaint resamplings of each segment."),
    reconstruction: float = typer.Option(None, "--reconstruction",
                                         help="Scaffold: reconstruction-guidance weight (0: off; default: built in)."),
    valence_guard: bool = typer.Option(None, "--valence-guard/--no-valence-guard",
                                       help="Scaffold: new atoms bond only to scaffold atoms with an open valence (default: off)."),
    steer: list[str] = typer.Option(None, "--steer",
                                    help="Reward steering with particles: SCORE=max|min|VALUE[:WEIGHT] of RDKit scores (qed, logp, sa, mw), or 'valid'."),
    particles: int = typer.Option(defaults.STEER_PARTICLES, "--particles", help="Steering: particles per molecule (cost: that many times the NFE)."),
    steer_strength: float = typer.Option(defaults.STEER_STRENGTH, "--steer-strength", help="Steering: λ of the reward tilt exp(λ r)."),
    resamplings: int = typer.Option(defaults.STEER_RESAMPLINGS, "--resamplings", help="Steering: resampling times before the end (0: best-of-N)."),
    steer_window: float = typer.Option(1.0, "--steer-window", help="Steering: last fraction of the steps over which to resample."),
    steer_select: str = typer.Option(defaults.STEER_SELECT, "--steer-select", help="Steering: keep the 'best' final particle or 'sample' one."),
    steer_reader: str = typer.Option("edm", "--steer-reader", help="Steering: a molecule counts if valid by the 'edm' bond rule, or 'xyz2mol' (neutral, one piece)."),
) -> None:
    """Sample molecules, write SDF + CSV with per-molecule scores, print the evaluator's summary.

    With --target (conditional models), --guide (a property predictor) or --scaffold the
    generation is steered; --n-atoms then counts the scaffold's atoms too."""
    from moldiff.errors import MoldiffError

    if n < 1:
        raise MoldiffError(f"-n must be at least 1, got {n}")
    if steps is not None and steps < 1:
        raise MoldiffError(f"--steps must be at least 1, got {steps}")
    if n_atoms is not None and not 1 <= n_atoms <= 200:
        raise MoldiffError(f"--n-atoms must be between 1 and 200, got {n_atoms}")
    if output.suffix.lower() != ".sdf":
        raise MoldiffError(f"--output must end in .sdf, got {output}")

    import time


    from moldiff import track
    from moldiff.chem.evaluate import evaluate
    from moldiff.chem.io import write_sdf
    from moldiff.cli.display import print_summary, progress_bar
    from moldiff.cli.guide import guidance_spec
    from moldiff.guidance.plan import plan_guidance
    from moldiff.models import load_generator, resolve_model
    from moldiff.nets.precision import resolve_precision
    from moldiff.paths import atomic_write_text
    from moldiff.provenance import run_record, write_run_record
    from moldiff.solvers import SOLVERS, get_solver, solver_times
    from moldiff.train.loop import pick_device

    options = parse_options(solver_opt or [])
    from moldiff.solvers.grids import GRIDS

    from moldiff.decoding import DECODINGS

    if types not in DECODINGS:
        raise MoldiffError(f"unknown --types {types!r}; choose from {', '.join(DECODINGS)}")
    if grid is not None and grid not in GRIDS:
        raise MoldiffError(f"unknown --grid {grid!r}; choose from {', '.join(GRIDS)}")
    spec = guidance_spec(targets=target or [], guidance_scale=guidance_scale, guides=guide or [], predictor=predictor,
                         guide_scale=guide_scale, scaffold=scaffold, scaffold_smiles=scaffold_smiles,
                         scaffold_h=scaffold_h, jump=jump, resamples=resample, reconstruction=reconstruction,
                         valence_guard=valence_guard, steer=steer, particles=particles, steer_strength=steer_strength,
                         resamplings=resamplings, steer_window=steer_window, steer_select=steer_select,
                         steer_reader=steer_reader)  # fmt: skip
    if solver is not None:
        get_solver(solver, **options)  # an unknown solver or option fails before the model loads
    dev = pick_device(device)
    precision = resolve_precision(precision, dev)
    model_path = resolve_model(model)
    tracker = None
    if track_run:
        uri = track.resolve_uri(tracking_uri)
        tracker = track.start(uri, "moldiff", f"sample-{output.stem}")
    generator, config, payload = load_generator(str(model_path), device=str(dev))
    generator.type_decoding = types
    is_flow_map = hasattr(generator.denoiser, "jump")
    solver = solver or ("flow-map" if is_flow_map else defaults.SOLVER)
    steps = steps or (defaults.FLOWMAP_STEPS if is_flow_map else defaults.STEPS)
    if is_flow_map and solver != "flow-map":  # a flow map only jumps
        raise MoldiffError(f"{model_path} is a flow map: sample it with --solver flow-map, not {solver!r}")
    solver_fn = get_solver(solver, **options)
    plan = plan_guidance(generator, config, payload, spec, device=str(dev))
    plan.set_precision(precision)
    times = solver_times(solver, steps, generator.denoiser.schedule, grid=grid, **options)
    generator.denoiser.nfe = 0
    start = time.time()
    # steering denoises P particles per molecule: --batch-size bounds the graphs per call, as larger
    # batches cost more per graph (2x per molecule at 400 guided graphs against 100 on this CPU)
    particles = 1 if plan.steering is None else plan.steering["particles"]
    per_batch = max(1, batch_size // particles)
    with progress_bar(n, "sampling") as advance:
        mols, seeds = plan.generate(n, seed=seed, solver=solver_fn, times=times, n_atoms=n_atoms,
                                    batch_size=per_batch, device=str(dev), progress=advance)  # fmt: skip
    seconds = time.time() - start
    # per molecule: every batch runs the whole solver, on each of a molecule's particles
    nfe = generator.denoiser.nfe / -(-n // per_batch) * particles
    summary, frame = evaluate(mols, reference_smiles=_training_reference(config) if novelty else None)
    frame["seed"] = seeds
    frame["run_seed"] = seed
    props = {col: frame[col].tolist() for col in ("smiles", "failure", "mol_stable", "valid", "n_stable_atoms", "seed")}
    props["smiles"] = ["" if s is None else s for s in props["smiles"]]
    props["failure"] = ["" if s is None else s for s in props["failure"]]
    if plan.active:  # targets, guided properties, scaffold matches
        extra = plan.columns(mols, [None if s == "" else s for s in props["smiles"]])
        for key, values in extra.items():
            frame[key] = values
            props[key] = values
        summary.update(plan.summary(extra))
    write_sdf(output, mols, props, names=[f"moldiff_{i}" for i in range(n)])
    csv_path = output.with_suffix(".csv")
    atomic_write_text(csv_path, frame.to_csv(index=False))
    summary["seconds"] = seconds
    summary["seconds_per_molecule"] = seconds / n
    summary["nfe"] = nfe
    record = run_record(config.model_dump(), seed, model=str(model_path), model_step=payload.get("step"),
                        solver=solver, solver_options=options, grid=grid or SOLVERS[solver].grid, steps=steps, nfe=nfe, n=n, n_atoms=n_atoms, types=types,
                        precision=precision,
                        summary=summary, **({"guidance": plan.record} if plan.active else {}))  # fmt: skip
    write_run_record(output.with_suffix(".run.json"), record)
    if tracker is not None:
        tracker.log_params({"n": n, "seed": seed, "steps": steps, "solver": solver, "model": str(model_path), "types": types,
                            "precision": precision,
                            **{f"solver.{k}": v for k, v in options.items()}})  # fmt: skip
        tracker.log_metrics({k: v for k, v in summary.items() if isinstance(v, (int, float))}, 0)
        for p in (output, csv_path, output.with_suffix(".run.json")):
            tracker.log_artifact(p)
        tracker.end()
    if json_out:
        import json

        print(json.dumps(summary))
    else:
        print(f"wrote {output} and {csv_path} ({seconds:.1f} s, {seconds / n:.2f} s per molecule, "
              f"{solver}: {nfe:g} NFE per molecule)", file=sys.stderr)  # fmt: skip
        print_summary(summary)
        if "has_scaffold" in summary:
            print(f"scaffold found in {100 * summary['has_scaffold']:.1f}% of molecules "
                  f"({100 * summary['scaffold_exact']:.1f}% with its bond orders)")  # fmt: skip
        for name in plan.predicted:
            if summary.get(f"mean_predicted_{name}") is not None:
                print(f"mean {name} (the predictor's): {summary[f'mean_predicted_{name}']:.4g}")
        for term in plan.terms:
            if summary.get(f"mean_{term.name}_valid") is not None:
                print(f"mean {term.name} of valid molecules (RDKit): {summary[f'mean_{term.name}_valid']:.3f}")


def _training_reference(config) -> set[str] | None:
    """SMILES of the model's training set, for novelty (QM9: the EDM-rule SMILES of its split;
    otherwise the set :func:`moldiff.campaign.reference.reference_smiles` reads). None when that
    set is not on this machine: novelty is then left out rather than guessed."""
    from moldiff.campaign.reference import reference_smiles
    from moldiff.chem.rdmol import canonicalize_smiles
    from moldiff.chem.reference import qm9_train_reference_smiles
    from moldiff.errors import MoldiffError

    if config.data.dataset == "qm9":
        return qm9_train_reference_smiles() if config.data.hydrogens else None
    try:
        _, smiles = reference_smiles("training", config)
    except MoldiffError:
        return None
    return {c for c in (canonicalize_smiles(s) for s in smiles) if c is not None}


def parse_options(items: list[str]) -> dict:
    """``KEY=VALUE`` strings (values read as in ``--set``: numbers, words) -> a dict."""
    from moldiff.config import parse_value
    from moldiff.errors import MoldiffError

    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise MoldiffError(f"--solver-opt {item!r} must look like KEY=VALUE")
        options[key.strip()] = parse_value(value)
    return options
