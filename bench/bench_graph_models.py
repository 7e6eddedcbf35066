"""Graph models beside coordinate models on the same seeds: quality at 10, 20, 50 and 100 NFE.

    python bench/bench_graph_models.py --graph qm9                                     # qm9-edm vs the graph qm9
    python bench/bench_graph_models.py --drugs --graph runs/drugs_graph/model.pt       # the drug-like set
    python bench/bench_graph_models.py --drugs                                         # the drugs baseline alone
    python bench/bench_graph_models.py --models qm9-edm M1.pt M2.pt --nfe 20 -n 100    # any models, any budgets

Every model samples with the default sampler of ``moldiff sample`` (its solver, grid and type
decoding) at each NFE budget, from the same run seed: molecule i gets the same per-molecule seed in
every model, and the same atom count in every model that shares the first model's vocabulary
(elements and explicit hydrogens); a model with another vocabulary (heavy atoms only) draws its
counts from its own training sizes with the same generator. Each (model, NFE) row has:

- the graph evaluator (:mod:`moldiff.chem.graph_eval`) on the molecules as written: valid and in
  one piece, stable by the charge-aware valence table, the written bonds consistent with the
  coordinates, all three together; PoseBusters ``mol`` on the first ``--posebusters`` molecules and
  the GFN2-xTB relaxation energy (median, mean ΔE_relax, kcal/mol) of the first ``--xtb`` valid
  molecules. A coordinate-only model is judged with the bonds ``moldiff sample`` writes for it (the
  EDM distance table, neutral atoms), as ``bench/bench_graph_eval.py`` does;
- the EDM protocol on the coordinates alone (atom and molecule stability, validity, uniqueness);
- the wall time of sampling per molecule.

Fractions come with binomial standard errors (table ``standard_errors``); table ``other_measures``
has the evaluator's other numbers (validity and connectivity apart, neutral molecules, atom
stability by the charge-aware table, uniqueness of the written SMILES), the NFE spent and the
seconds of evaluation; table ``xtb`` the relaxations. Writes
bench/results/graph_models.json (``--drugs``: graph_models_drugs.json; ``--out`` changes it),
after every row, so an interrupted run keeps what it measured; ``--reuse`` takes the rows of that
file measured with the same model file, seed, molecules and batch size instead of measuring them again
(add a model to a finished comparison without sampling the others again).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results"
NFE = (10, 20, 50, 100)
# the graph evaluator's numbers in the main table (fractions; each also has <name>_se)
GRAPH_KEYS = ("valid_connected", "mol_stability", "geometry_consistency", "valid_connected_consistent")
EDM_KEYS = ("atom_stability", "mol_stability", "validity", "uniqueness")


# ------------------------------------------------------------------------------ models and seeds
def load(model: str, device: str = "cpu"):
    """(generator with the default type and bond decodings, record of what the model is) of a
    built-in name or a model file; ``LABEL=FILE`` names a file (the label is the table's), and a
    graph model's ``FILE@argmax`` or ``FILE@valence`` picks its bond decoding."""
    from moldiff.config.sample import Sampling
    from moldiff.models import BUILTIN, load_generator, resolve_model

    model = model.partition("=")[2] or model
    model, _, bonds = model.partition("@")
    generator, config, payload = load_generator(model, device=device)
    if hasattr(generator.denoiser, "jump"):
        from moldiff.errors import MoldiffError

        raise MoldiffError(f"{model} is a flow map: this benchmark compares diffusion models at NFE budgets")
    generator.type_decoding, generator.bond_decoding = Sampling().types, bonds or Sampling().bonds
    cpu = payload.get("cpu_seconds")
    info = {"file": model if model in BUILTIN else str(resolve_model(model)), "step": payload.get("step"),
            "cpu_hours": None if cpu is None else round(float(cpu) / 3600, 3),
            "graph": generator.graph_model, "hydrogens": config.data.hydrogens, "elements": list(config.data.elements),
            "bonds": f"the model's own ({generator.bond_decoding} decoding)" if generator.graph_model
            else "EDM distance table, as moldiff sample writes"}  # fmt: skip
    return generator, info


def vocabulary(info: dict) -> tuple:
    """What must agree for two models to draw the same atom counts."""
    return tuple(info["elements"]), bool(info["hydrogens"])


def run_inputs(generators: dict, infos: dict, n: int, seed: int) -> dict[str, tuple[list[int], list[int], str]]:
    """Per model: (per-molecule seeds, atom counts, what it shares with the first model).

    Seeds are :func:`moldiff.generate.molecule_seeds` of the run seed for every model; the atom
    counts are the first model's (drawn from its training sizes) for every model of its vocabulary.
    """
    from moldiff.generate import atom_counts, molecule_seeds

    seeds = molecule_seeds(seed, n)
    names = list(generators)
    first = names[0]
    sizes = atom_counts(generators[first], seed, n)
    out = {}
    for name in names:
        if vocabulary(infos[name]) == vocabulary(infos[first]):
            shared = "seeds and atom counts" if name != first else "the reference of seeds and atom counts"
            out[name] = (seeds, sizes, shared)
        else:
            out[name] = (seeds, atom_counts(generators[name], seed, n),
                         "seeds; atom counts drawn from its own training sizes (another vocabulary)")  # fmt: skip
    return out


# ------------------------------------------------------------------------------ one row
def sample(generator, seeds: list[int], sizes: list[int], nfe: int, *, batch_size: int = 100, device: str = "cpu"):
    """Molecules of ``moldiff sample``'s default solver at an NFE budget: (MolSet, NFE spent per
    molecule, seconds of sampling)."""
    from moldiff import defaults
    from moldiff.generate import generate
    from moldiff.solvers import get_solver, solver_times

    times = solver_times(defaults.SOLVER, nfe, generator.denoiser.schedule)
    generator.denoiser.nfe = 0
    start = time.perf_counter()
    mols = generate(generator, seeds, sizes, solver=get_solver(defaults.SOLVER), times=times,
                    batch_size=batch_size, device=device)  # fmt: skip
    seconds = time.perf_counter() - start
    batches = -(-len(seeds) // batch_size)
    return mols, generator.denoiser.nfe / max(batches, 1), seconds


def written(mols):
    """The molecules as ``moldiff sample`` writes them: a graph model's own bonds and charges, a
    coordinate-only model's bonds by the EDM distance table (neutral atoms); and that source."""
    from moldiff.chem.io import bonds_to_write

    bonds, bond_ptr, source = bonds_to_write(mols)
    return (mols if mols.has_bonds else replace(mols, bonds=bonds, bond_ptr=bond_ptr)), source


def score(mols, *, posebusters: int = 0, xtb: int = 0, workers: int = 1) -> dict:
    """The graph evaluator and the EDM protocol of one set, as flat numbers.

    Args:
        mols: a generated MolSet (with or without its own bonds).
        posebusters: PoseBusters ``mol`` on the first this many molecules (0: not run).
        xtb: GFN2-xTB ΔE_relax of the first this many valid molecules (0: not run).
        workers: processes for the per-molecule work (the numbers do not depend on it).

    Returns:
        {bonds, the :data:`GRAPH_KEYS` fractions, atom_stability_graph, uniqueness, posebusters_pass,
        posebusters_n, xtb (median/mean ΔE_relax and counts), edm_<key> for :data:`EDM_KEYS`, and
        ``<key>_se`` of every fraction}.
    """
    from moldiff.chem.graph_eval import evaluate_graphs

    judged, source = written(mols)
    summary, _ = evaluate_graphs(judged, posebusters=False, xtb_sample=xtb, workers=workers)
    out: dict = {"bonds": source}
    for key in (*GRAPH_KEYS, "validity", "connectivity", "neutral_valid_connected", "uniqueness"):
        out[key], out[f"{key}_se"] = summary[key], summary[f"{key}_se"]
    out["atom_stability_graph"], out["atom_stability_graph_se"] = summary["atom_stability"], summary["atom_stability_se"]
    if posebusters:
        first = judged.subset(np.arange(min(posebusters, len(judged))))
        pb, _ = evaluate_graphs(first, posebusters=True, edm=False, workers=workers)
        out.update(posebusters_pass=pb["posebusters_pass"], posebusters_pass_se=pb["posebusters_pass_se"],
                   posebusters_n=len(first))  # fmt: skip
    if xtb:
        out["xtb"] = summary.get("xtb")
    edm, n = summary["edm"], summary["n"]
    # the denominators: atom stability counts atoms, uniqueness the valid molecules, the rest molecules
    of = {"atom_stability": int(judged.n_atoms.sum()), "uniqueness": round(edm["validity"] * n)}
    for key in EDM_KEYS:
        p, m = edm[key], of.get(key, n)
        out[f"edm_{key}"] = p
        out[f"edm_{key}_se"] = None if p is None or not m else float(np.sqrt(p * (1 - p) / m))
    return out


def measure(generator, seeds: list[int], sizes: list[int], nfe: int, *, batch_size: int = 100,
            posebusters: int = 0, xtb: int = 0, workers: int = 1) -> dict:  # fmt: skip
    """One (model, NFE) row: sample, then :func:`score`; with the NFE spent and the seconds."""
    mols, spent, seconds = sample(generator, seeds, sizes, nfe, batch_size=batch_size)
    t0 = time.perf_counter()
    row = {"nfe": nfe, "nfe_spent": spent, "n": len(seeds), **score(mols, posebusters=posebusters, xtb=xtb,
                                                                       workers=workers)}  # fmt: skip
    row.update(seconds_per_molecule=seconds / max(len(seeds), 1), evaluation_seconds=time.perf_counter() - t0)
    return row


# ------------------------------------------------------------------------------ the benchmark
def benchmark(models: list[str], nfes: list[int], *, n: int, seed: int = 0, batch_size: int = 100,
              posebusters: int = 0, xtb: int = 0, workers: int = 1, out: Path | None = None,
              head: dict | None = None, log=print, earlier: dict | None = None) -> dict:  # fmt: skip
    """Every model at every NFE budget on the same seeds; the result record (see the module), after
    ``head``; written to ``out`` after every row when given. Rows of an ``earlier`` record with the
    same model file, NFE, seed, molecules, batch size and checks are taken from it."""
    generators, infos = {}, {}
    for model in models:
        label = model.partition("=")[0] if "=" in model else model
        if label in generators:
            raise ValueError(f"two models are called {label}")
        generators[label], infos[label] = load(model)
    models = list(generators)
    inputs = run_inputs(generators, infos, n, seed)
    for model in models:
        infos[model]["shares"] = inputs[model][2]
    record: dict = {**(head or {}), "solver": _default_solver(), "types": generators[models[0]].type_decoding, "n": n, "seed": seed,
                    "batch_size": batch_size, "posebusters_first": posebusters, "xtb_first_valid": xtb,
                    "models": infos, "rows": [], "standard_errors": [], "other_measures": [], "xtb": []}  # fmt: skip
    for model in models:
        seeds, sizes, _ = inputs[model]
        for nfe in nfes:
            if _copy_row(earlier, record, model, nfe):
                log(f"{model} @ {nfe} NFE: taken from the earlier record")
                if out is not None:
                    _dump(out, record)
                continue
            row = measure(generators[model], seeds, sizes, nfe, batch_size=batch_size, posebusters=posebusters,
                          xtb=xtb, workers=workers)  # fmt: skip
            _add(record, model, row)
            log(f"{model} @ {nfe} NFE: " + json.dumps({k: _round(v) for k, v in record["rows"][-1].items()}))
            if out is not None:
                _dump(out, record)
    return record


SAME_RUN = ("n", "seed", "batch_size", "posebusters_first", "xtb_first_valid", "solver", "types")
TABLES = ("rows", "standard_errors", "other_measures", "xtb")


def _copy_row(earlier: dict | None, record: dict, model: str, nfe: int) -> bool:
    """Copy (model, nfe)'s entries of every table from ``earlier`` into ``record`` if it measured
    the same model file on the same run; whether it did."""
    if not earlier or any(earlier.get(k) != record.get(k) for k in SAME_RUN):
        return False
    before, now = earlier.get("models", {}).get(model, {}), record["models"][model]
    if before.get("file") != now.get("file") or before.get("step") != now.get("step"):
        return False
    found = False
    for table in TABLES:
        for entry in earlier.get(table, []):
            if entry.get("model") == model and entry.get("nfe") == nfe:
                record[table].append(entry)
                found |= table == "rows"
    return found


def _add(record: dict, model: str, row: dict) -> None:
    """The row in the record's tables: the main numbers, their standard errors, the evaluator's
    other numbers and xTB's."""
    main_keys = (*GRAPH_KEYS, "posebusters_pass", *(f"edm_{k}" for k in EDM_KEYS))
    xtb = row.get("xtb") or {}
    which = {"model": model, "nfe": row["nfe"]}
    record["rows"].append({**which, "bonds": row["bonds"], **{k: row.get(k) for k in main_keys},
                           "median_delta_e": xtb.get("median_delta_e"), "mean_delta_e": xtb.get("mean_delta_e"),
                           "seconds_per_molecule": row["seconds_per_molecule"]})  # fmt: skip
    record["standard_errors"].append({**which, "n": row["n"], **{f"{k}_se": row.get(f"{k}_se") for k in main_keys},
                                      "posebusters_n": row.get("posebusters_n")})  # fmt: skip
    other = ("validity", "connectivity", "neutral_valid_connected", "atom_stability_graph", "uniqueness", "nfe_spent",
             "evaluation_seconds")  # fmt: skip
    record["other_measures"].append({**which, **{k: row[k] for k in other}})
    if xtb:
        record["xtb"].append({**which, **xtb})


def _default_solver() -> str:
    from moldiff import defaults

    return defaults.SOLVER


def _round(value):
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v) for v in value]
    return value


def _dump(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_round(record), indent=2) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=None,
                        help="built-in names, model files or LABEL=FILE (default: qm9-edm; with --drugs: drugs)")
    parser.add_argument("--graph", nargs="*", default=[], help="graph model files (or LABEL=FILE), after --models")
    parser.add_argument("--drugs", action="store_true",
                        help="the drug-like set: default model drugs, PoseBusters on every molecule, 16 xTB relaxations")
    parser.add_argument("--nfe", type=int, nargs="+", default=list(NFE))
    parser.add_argument("-n", type=int, default=300, help="molecules per (model, NFE)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--posebusters", type=int, default=None,
                        help="PoseBusters mol on the first this many molecules (default: 100; --drugs: all)")
    parser.add_argument("--xtb", type=int, default=None,
                        help="GFN2-xTB ΔE_relax of the first this many valid molecules (default: 30; --drugs: 16)")
    parser.add_argument("--threads", "-j", type=int, default=2, help="torch threads and evaluation processes")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--reuse", action="store_true",
                        help="take the rows the output file already has for the same model file and run")
    args = parser.parse_args(argv)
    models = (args.models if args.models is not None else ["drugs" if args.drugs else "qm9-edm"]) + args.graph
    if not models:
        parser.error("no models to compare")
    if len({m.partition("=")[0] if "=" in m else m for m in models}) != len(models):
        parser.error("a model is named twice")
    posebusters = args.posebusters if args.posebusters is not None else (args.n if args.drugs else 100)
    xtb = args.xtb if args.xtb is not None else (16 if args.drugs else 30)
    out = args.out or RESULTS / ("graph_models_drugs.json" if args.drugs else "graph_models.json")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    record = {"command": "python bench/bench_graph_models.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "threads": args.threads}  # fmt: skip
    earlier = json.loads(out.read_text()) if args.reuse and out.exists() else None
    record = benchmark(models, args.nfe, n=args.n, seed=args.seed, batch_size=args.batch_size,
                       posebusters=posebusters, xtb=xtb, workers=args.threads, out=out, head=record,
                       log=lambda m: print(m, file=sys.stderr), earlier=earlier)  # fmt: skip
    record["seconds"] = time.perf_counter() - start
    _dump(out, record)
    print(f"wrote {out} ({record['seconds']:.0f} s)")


if __name__ == "__main__":
    from moldiff.errors import MoldiffError

    try:
        main()
    except MoldiffError as exc:
        sys.exit(f"error: {exc}")
