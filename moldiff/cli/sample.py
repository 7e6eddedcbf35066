"""``moldiff sample``: generate molecules with a trained (by default the built-in) model.

The run is a :class:`~moldiff.config.SampleConfig`, read from ``--config`` (a file or a shipped
config's name) and ``--set``; each option given explicitly sets one of its keys. The resolved
config is what the run record (``.run.json``) and MLflow keep."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from moldiff import defaults
from moldiff.cli.main import app


@app.command()
def sample(
    config: str = typer.Option(None, "--config", "-c", help="YAML sample config, or the name of a shipped one "
                               "(moldiff config list); the options below override its keys."),
    overrides: list[str] = typer.Option([], "--set", help="Override a config key: --set steer.particles=8"),
    n: int = typer.Option(None, "-n", "--num", help="Number of molecules (default: 100)."),
    output: Path = typer.Option(None, "-o", "--output", help="SDF to write (a CSV goes beside it) (default: samples.sdf)."),
    model: str = typer.Option(None, "--model", help="Built-in model name or model file (default: qm9)."),
    seed: int = typer.Option(None, "--seed", help="Run seed; molecule i gets a seed derived from (seed, i) (default: 0)."),
    steps: int = typer.Option(None, "--steps", help="Network evaluations (NFE) per molecule; sets the solver's grid "
                              f"(default: {defaults.STEPS}; {defaults.FLOWMAP_STEPS} for a flow map)."),
    solver: str = typer.Option(None, "--solver", help="ddpm, ddim, euler-maruyama, pc, euler, heun, dpmpp-2m, "
                               f"dpmpp-2m-sde, adaptive or flow-map (default: {defaults.SOLVER}; flow-map for a "
                               "flow map)."),
    solver_opt: list[str] = typer.Option(None, "--solver-opt", help="Solver option KEY=VALUE (ddim: eta=0.5)."),
    grid: str = typer.Option(None, "--grid", help="Time grid: uniform, log_snr, log_snr_late or edm "
                             "(default: the solver's own)."),
    types: str = typer.Option(None, "--types", help="Element of each atom: argmax of its type features, or "
                              "closed-shell (the most likely assignment with an even electron count) (default: argmax)."),
    bonds: str = typer.Option(None, "--bonds", help="Graph models: bond of each atom pair: argmax of its bond "
                              "features, or valence (strongest first, within each atom's allowed valence) (default: valence)."),
    n_atoms: int = typer.Option(None, "--n-atoms", help="Atoms per molecule (default: drawn from training sizes)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Molecules denoised together (steered: particles) (default: 100)."),
    device: str = typer.Option(None, "--device", help="cpu, cuda or auto (default: auto)."),
    precision: str = typer.Option(None, "--precision", help="Network arithmetic: fp32, bf16 (matrix products in "
                                  "bfloat16: about 2x faster where native) or auto (bf16 where native) (default: fp32)."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
    track_run: bool = typer.Option(None, "--track/--no-track", help="Log the run to MLflow (default: no)."),
    json_out: bool = typer.Option(False, "--json", help="Print the evaluator summary as one JSON object (progress stays on stderr)."),
    novelty: bool = typer.Option(None, "--novelty/--no-novelty", help="Novelty against the model's training set (default: yes)."),
    target: list[str] = typer.Option(None, "--target",
                                     help="Condition of a conditional model, PROPERTY=VALUE[UNIT] (gap=4.5eV)."),
    guidance_scale: float = typer.Option(None, "--guidance-scale",
                                         help="Classifier-free guidance w: 1 conditional, 0 unconditional, >1 sharper (default: 1)."),
    guide: list[str] = typer.Option(None, "--guide",
                                    help="Regressor guidance PROPERTY=VALUE[UNIT]|max|min[:WEIGHT] (qed=max)."),
    predictor: str = typer.Option(None, "--predictor", help="Property predictor for --guide, or for --steer of a "
                                  "property RDKit cannot score: a built-in name (qm9-predictor) or a file."),
    guide_scale: float = typer.Option(None, "--guide-scale", help="Overall strength of regressor guidance (default: 1)."),
    scaffold: Path = typer.Option(None, "--scaffold", help="SDF fragment whose atoms are kept (generate around it)."),
    scaffold_smiles: str = typer.Option(None, "--scaffold-smiles", help="SMILES scaffold, embedded in 3D and kept; * marks attachment points (other H kept)."),
    scaffold_h: bool = typer.Option(None, "--scaffold-h/--no-scaffold-h", help="Keep the scaffold's hydrogens too (default: no)."),
    jump: int = typer.Option(None, "--jump", help="Scaffold: solver intervals between RePaint replacements (default: 1)."),
    resample: int = typer.Option(None, "--resample", help="Scaffold: RePaint resamplings of each segment (default: 1)."),
    reconstruction: float = typer.Option(None, "--reconstruction", help="Scaffold: reconstruction-guidance weight "
                                         f"(0: off) (default: {defaults.RECONSTRUCTION:g})."),
    valence_guard: bool = typer.Option(None, "--valence-guard/--no-valence-guard",
                                       help="Scaffold: new atoms bond only to scaffold atoms with an open valence (default: no)."),
    steer: list[str] = typer.Option(None, "--steer",
                                    help="Reward steering with particles: SCORE=max|min|VALUE[:WEIGHT] of RDKit scores (qed, logp, sa, mw), or 'valid'."),
    particles: int = typer.Option(None, "--particles", help="Steering: particles per molecule (cost: that many "
                                  f"times the NFE) (default: {defaults.STEER_PARTICLES})."),
    steer_strength: float = typer.Option(None, "--steer-strength", help="Steering: λ of the reward tilt exp(λ r) "
                                         f"(default: {defaults.STEER_STRENGTH:g})."),
    resamplings: int = typer.Option(None, "--resamplings", help="Steering: resampling times before the end "
                                    f"(0: best-of-N) (default: {defaults.STEER_RESAMPLINGS})."),
    steer_window: float = typer.Option(None, "--steer-window", help="Steering: last fraction of the steps over "
                                       "which to resample (default: 1)."),
    steer_select: str = typer.Option(None, "--steer-select", help="Steering: keep the 'best' final particle or "
                                     f"'sample' one (default: {defaults.STEER_SELECT})."),
    steer_reader: str = typer.Option(None, "--steer-reader", help="Steering: a molecule counts if valid by the "
                                     "'edm' bond rule, 'xyz2mol' (neutral, one piece), or a graph model's own bonds, "
                                     "'model' (default: model for a graph model, else edm)."),
) -> None:
    """Sample molecules, write SDF + CSV with per-molecule scores, print the evaluator's summary.

    The options set keys of a sample config (--config, --set). --target, --guide, --scaffold and
    --steer steer the generation; --n-atoms then counts the scaffold's atoms too."""
    options = {  # config key: (the option that sets it, its value when given)
        "n": ("-n", n), "output": ("--output", output), "model": ("--model", model), "seed": ("--seed", seed),
        "novelty": ("--novelty", novelty), "tracking.enabled": ("--track", track_run),
        "sampling.steps": ("--steps", steps), "sampling.solver": ("--solver", solver),
        "sampling.options": ("--solver-opt", parse_options(solver_opt) if solver_opt else None),
        "sampling.grid": ("--grid", grid), "sampling.types": ("--types", types), "sampling.bonds": ("--bonds", bonds), "sampling.n_atoms": ("--n-atoms", n_atoms),
        "sampling.batch_size": ("--batch-size", batch_size), "sampling.device": ("--device", device),
        "sampling.precision": ("--precision", precision),
        "guidance.targets": ("--target", _assignments("--target", target)),
        "guidance.guidance_scale": ("--guidance-scale", guidance_scale),
        "guidance.guide": ("--guide", _assignments("--guide", guide)), "guidance.guide_scale": ("--guide-scale", guide_scale),
        "scaffold.sdf": ("--scaffold", scaffold), "scaffold.smiles": ("--scaffold-smiles", scaffold_smiles),
        "scaffold.hydrogens": ("--scaffold-h", scaffold_h), "scaffold.jump": ("--jump", jump),
        "scaffold.resample": ("--resample", resample), "scaffold.reconstruction": ("--reconstruction", reconstruction),
        "scaffold.valence_guard": ("--valence-guard", valence_guard),
        "steer.rewards": ("--steer", _rewards(steer)), "steer.particles": ("--particles", particles),
        "steer.strength": ("--steer-strength", steer_strength), "steer.resamplings": ("--resamplings", resamplings),
        "steer.window": ("--steer-window", steer_window), "steer.select": ("--steer-select", steer_select),
        "steer.reader": ("--steer-reader", steer_reader),
    }  # fmt: skip
    given = {key: (option, str(value) if isinstance(value, Path) else value)
             for key, (option, value) in options.items() if value is not None}  # fmt: skip
    cfg = _sample_config(config, overrides, given, predictor)
    _sample(cfg, tracking_uri, json_out)


def _assignments(option: str, items: list[str] | None) -> dict | None:
    """``NAME=VALUE`` options as {name: value}; the config reads the values."""
    from moldiff.errors import MoldiffError

    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise MoldiffError(f"{option} {item!r} must look like NAME=VALUE (e.g. gap=4.5eV)")
        out[name.strip()] = value.strip()
    return out or None


def _rewards(items: list[str] | None):
    """``--steer`` options as steer.rewards: {name: value}, or ``valid`` alone."""
    from moldiff.errors import MoldiffError

    if [item.strip().lower() for item in items or []] == ["valid"]:
        return "valid"
    if any(item.strip().lower() == "valid" for item in items or []):
        raise MoldiffError("--steer valid stands alone (every reward already requires a valid molecule)")
    return _assignments("--steer", items)


def _sample_config(config, overrides: list[str], given: dict, predictor: str | None):
    """The run's :class:`~moldiff.config.SampleConfig`: the file, then --set, then the options ``given``."""
    from moldiff.config import SampleConfig, apply_overrides, find_config, read_config, validate_config
    from moldiff.errors import MoldiffError

    raw = apply_overrides(read_config(find_config(config)) if config is not None else {}, overrides)
    steered = raw.get("steer") is not None
    raw = apply_overrides(raw, [(key, value) for key, (_, value) in given.items()])
    settings = [option for key, (option, _) in given.items() if key.startswith("steer.") and key != "steer.rewards"]
    if settings and not steered and "steer.rewards" not in given:
        raise MoldiffError(f"{settings[0]} is a setting of reward steering: give --steer too")
    origins = {key: option for key, (option, _) in given.items()}
    if predictor is not None:  # the predictor of guide terms, and of rewards RDKit cannot score
        sections = [key for key in ("guidance", "steer") if _reads_predictor(raw.get(key))]
        if not sections:
            raise MoldiffError("--predictor is used only with --guide, or with --steer of a property it predicts")
        for key in sections:
            raw[key]["predictor"] = predictor
            origins[f"{key}.predictor"] = "--predictor"
    keys = [o.partition("=")[0].strip() for o in overrides]
    return validate_config(raw, SampleConfig, config, {**{k: f"--set {k}" for k in keys}, **origins})


def _reads_predictor(section) -> bool:
    """Whether a guidance or steer section has terms a property predictor reads."""
    from moldiff.chem.labels import SCORES
    from moldiff.errors import MoldiffError
    from moldiff.guidance.units import property_name

    if not isinstance(section, dict):
        return False
    if section.get("guide"):
        return True
    rewards = section.get("rewards")
    try:
        return isinstance(rewards, dict) and any(property_name(str(name)) not in SCORES for name in rewards)
    except MoldiffError:
        return False  # an unknown property: validation names it


def _sample(cfg, tracking_uri: str | None, json_out: bool) -> None:
    """Generate, score and write the run ``cfg`` describes."""
    import time

    from moldiff import track
    from moldiff.chem.evaluate import evaluate
    from moldiff.chem.graph_eval import evaluate_graphs
    from moldiff.chem.io import EDM_BOND_SOURCE, write_sdf
    from moldiff.cli.display import print_graph_summary, print_summary, progress_bar
    from moldiff.guidance.plan import plan_guidance
    from moldiff.models import load_generator, resolve_model
    from moldiff.nets.precision import resolve_precision
    from moldiff.paths import atomic_write_text
    from moldiff.provenance import run_record, write_run_record
    from moldiff.solvers import SOLVERS, get_solver, solver_times
    from moldiff.train.loop import pick_device

    s, n, output = cfg.sampling, cfg.n, Path(cfg.output)
    spec = cfg.guidance_spec()
    if s.solver is not None:
        get_solver(s.solver, **s.options)  # an unknown solver or option fails before the model loads
    dev = pick_device(s.device)
    precision = resolve_precision(s.precision, dev)
    model_path = resolve_model(cfg.model)
    tracker = None
    if cfg.tracking.enabled:
        uri = track.resolve_uri(tracking_uri, cfg.tracking.uri)
        tracker = track.start(uri, cfg.tracking.experiment, f"sample-{output.stem}")
    generator, config, payload = load_generator(str(model_path), device=str(dev))
    generator.type_decoding, generator.bond_decoding = s.types, s.bonds
    s = s.resolved(flow_map=hasattr(generator.denoiser, "jump")).model_copy(update={"precision": precision})
    cfg = cfg.model_copy(update={"sampling": s})  # what runs: the run record and MLflow keep it
    solver_fn = get_solver(s.solver, **s.options)
    plan = plan_guidance(generator, config, payload, spec, device=str(dev))
    plan.set_precision(precision)
    times = solver_times(s.solver, s.steps, generator.denoiser.schedule, grid=s.grid, **s.options)
    generator.denoiser.nfe = 0
    start = time.time()
    # steering denoises P particles per molecule: --batch-size bounds the graphs per call, as larger
    # batches cost more per graph (2x per molecule at 400 guided graphs against 100 on this CPU)
    particles = 1 if plan.steering is None else plan.steering["particles"]
    per_batch = max(1, s.batch_size // particles)
    with progress_bar(n, "sampling") as advance:
        mols, seeds = plan.generate(n, seed=cfg.seed, solver=solver_fn, times=times, n_atoms=s.n_atoms,
                                    batch_size=per_batch, device=str(dev), progress=advance)  # fmt: skip
    seconds = time.time() - start
    # per molecule: every batch runs the whole solver, on each of a molecule's particles
    nfe = generator.denoiser.nfe / -(-n // per_batch) * particles
    reference = _training_reference(config, graph=generator.graph_model) if cfg.novelty else None
    if generator.graph_model:  # judged by the bonds and charges the model wrote
        summary, frame = evaluate_graphs(mols, reference, posebusters=False)
        frame = frame.rename(columns={"stable": "mol_stable"})
    else:
        summary, frame = evaluate(mols, reference_smiles=reference)
    frame["bond_source"] = "model" if mols.has_bonds else EDM_BOND_SOURCE
    frame["seed"] = seeds
    frame["run_seed"] = cfg.seed
    props = {col: frame[col].tolist() for col in ("smiles", "failure", "mol_stable", "valid", "n_stable_atoms", "seed")}
    props["smiles"] = ["" if smiles is None else smiles for smiles in props["smiles"]]
    props["failure"] = ["" if failure is None else failure for failure in props["failure"]]
    if plan.active:  # targets, guided properties, scaffold matches
        extra = plan.columns(mols, [None if smiles == "" else smiles for smiles in props["smiles"]])
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
    record = run_record(config.model_dump(), cfg.seed, sample=cfg.model_dump(mode="json"), model=str(model_path),
                        model_step=payload.get("step"), solver=s.solver, solver_options=s.options,
                        grid=s.grid or SOLVERS[s.solver].grid, steps=s.steps, nfe=nfe, n=n, n_atoms=s.n_atoms,
                        types=s.types, precision=precision, summary=summary,
                        **({"guidance": plan.record} if plan.active else {}))  # fmt: skip
    write_run_record(output.with_suffix(".run.json"), record)
    if tracker is not None:
        tracker.log_params(cfg.model_dump(mode="json"))
        tracker.log_metrics({k: v for k, v in summary.items() if isinstance(v, (int, float))}, 0)
        for p in (output, csv_path, output.with_suffix(".run.json")):
            tracker.log_artifact(p)
        tracker.end()
    if json_out:
        import json

        print(json.dumps(summary))
    else:
        print(f"wrote {output} and {csv_path} ({seconds:.1f} s, {seconds / n:.2f} s per molecule, "
              f"{s.solver}: {nfe:g} NFE per molecule)", file=sys.stderr)  # fmt: skip
        if generator.graph_model:
            print_graph_summary(summary, title="graph metrics (the model's bonds and charges)")
        else:
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


def _training_reference(config, graph: bool = False) -> set[str] | frozenset[str] | None:
    """SMILES of the model's training set, for novelty (QM9: the EDM-rule SMILES of its split, or
    for a graph model its SMILES as stated; otherwise the set
    :func:`moldiff.campaign.reference.reference_smiles` reads). None when that set is not on this
    machine: novelty is then left out rather than guessed."""
    from moldiff.campaign.reference import reference_smiles
    from moldiff.chem.rdmol import canonicalize_smiles
    from moldiff.chem.reference import qm9_train_graph_smiles, qm9_train_reference_smiles
    from moldiff.errors import MoldiffError

    if config.data.dataset == "qm9" and graph:
        return qm9_train_graph_smiles()
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
