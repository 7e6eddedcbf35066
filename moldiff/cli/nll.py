"""``moldiff nll``: test-set negative log-likelihood of a trained model, in nats per molecule.

``--method elbo`` is the variational bound in EDM's conventions (``moldiff.likelihood.elbo``);
``--method ode`` the probability-flow ODE likelihood with a Hutchinson trace estimator
(``moldiff.likelihood.ode``), turned into a bound on the discrete data with the same decoder.
Both are upper bounds on −log p(x, h, N) estimated by Monte Carlo; the mean comes with its
standard error over molecules, and is reported field by field (coordinates, types; a graph model
also its formal charges and bonds, scored on the molecules' own graphs). A model with categorical
fields (``diffusion.discrete: categorical``) has the ELBO only: its classes jump, so no
probability-flow ODE carries them, and ``--method ode`` is refused.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from moldiff.cli.main import app
from moldiff.errors import MoldiffError

METHODS = ("elbo", "ode", "both")
EDM_QM9_NLL = -110.7  # EDM (Hoogeboom et al. 2022), QM9 test set, with a charge channel and T = 1000


@app.command()
def nll(
    model: Annotated[Optional[str], typer.Option(help="Built-in model name (default: qm9) or model file.")] = None,
    data: Annotated[str, typer.Option(help="qm9:test, qm9:valid, qm9:train, or a molecule set (.npz).")] = "qm9:test",
    n: Annotated[Optional[int], typer.Option("-n", "--num", help="Use the first N molecules (default: all).")] = None,
    method: Annotated[str, typer.Option(help="elbo, ode or both.")] = "elbo",
    elbo_samples: Annotated[int, typer.Option(help="Stratified log-SNR draws per molecule (ELBO).")] = 4,
    ode_steps: Annotated[int, typer.Option(help="Dormand–Prince steps in log-SNR (ODE; 6 NFE each).")] = 10,
    probes: Annotated[int, typer.Option(help="Hutchinson probes per molecule (ODE).")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the Monte Carlo noise.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Molecules evaluated together.")] = 100,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout (progress stays on stderr).")] = False,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Also write the JSON result here.")] = None,
) -> None:
    """Estimate the test-set NLL (nats per molecule) with the ELBO and/or the PF-ODE likelihood."""
    if method not in METHODS:
        raise MoldiffError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if n is not None and n < 1:
        raise MoldiffError(f"-n must be at least 1, got {n}")
    if min(elbo_samples, ode_steps, probes, batch_size) < 1:
        raise MoldiffError("--elbo-samples, --ode-steps, --probes and --batch-size must be at least 1")

    import json
    import time

    import numpy as np
    import torch

    from moldiff.cli.display import progress_bar
    from moldiff.data.batch import collate
    from moldiff.likelihood import field_totals, ode_bound, variational_bound
    from moldiff.models import load_generator, resolve_model
    from moldiff.paths import atomic_write_text
    from moldiff.train.loop import pick_device

    dev = pick_device(device)
    model_path = resolve_model(model)
    generator, config, payload = load_generator(str(model_path), device=str(dev))
    classes = [f.name for f in generator.fields if f.kind == "categorical"]
    if classes and method != "elbo":  # classes jump: there is no probability flow to integrate
        raise MoldiffError(f"--method {method} needs a model without categorical fields ({', '.join(classes)} are "
                           "categorical: no probability-flow ODE moves classes); use --method elbo")  # fmt: skip
    molecules = _load(data, config)
    if n is not None:
        molecules = molecules.subset(slice(0, min(n, len(molecules))))
    hist = generator.atom_count_hist
    total = sum(hist.values())
    known = np.array([int(k) in hist for k in molecules.n_atoms])
    skipped = int((~known).sum())
    molecules = molecules.subset(np.flatnonzero(known))
    if len(molecules) == 0:
        raise MoldiffError("no molecule of the data has an atom count the model was trained on")

    methods = ("elbo", "ode") if method == "both" else (method,)
    rows: dict[str, list[dict]] = {m: [] for m in methods}
    rng = torch.Generator().manual_seed(seed)
    generator.denoiser.nfe = 0
    start = time.time()
    with progress_bar(len(molecules), "likelihood") as advance:
        for lo in range(0, len(molecules), batch_size):
            index = np.arange(lo, min(lo + batch_size, len(molecules)))
            batch = collate(molecules, index, generator.vocab, tuple(config.data.properties)).to(dev)
            z0, graph = generator.encode(batch)
            if "property_stats" in payload:  # a conditional model: −log p(x | its own properties)
                from dataclasses import replace

                from moldiff.guidance.condition import PropertyNorm

                graph = replace(graph, cond=PropertyNorm.from_dict(payload["property_stats"]).encode(graph.cond))
            log_p_n = torch.tensor([np.log(hist[int(k)] / total) for k in graph.num_atoms.tolist()], device=dev)
            common = dict(type_scale=generator.type_scale, log_p_n=log_p_n, generator=rng)
            if "elbo" in methods:
                terms = variational_bound(generator.denoiser, z0, graph, samples=elbo_samples, **common)
                rows["elbo"].append({k: v.cpu() for k, v in terms.items()})
            if "ode" in methods:
                terms = ode_bound(generator.denoiser, z0, graph, steps=ode_steps, probes=probes, **common)
                rows["ode"].append({k: v.detach().cpu() for k, v in terms.items()})
            advance(len(index))
    seconds = time.time() - start

    result = {"model": str(model_path), "model_step": payload.get("step"), "data": data, "n": len(molecules),
              "skipped_unseen_atom_count": skipped, "seed": seed, "seconds": seconds,
              "nfe_total_batched": generator.denoiser.nfe,
              "edm_reference_nll": EDM_QM9_NLL if _edm_comparable(data, config) else None}  # fmt: skip
    for m in methods:
        terms = {k: torch.cat([r[k] for r in rows[m]]) for k in rows[m][0]}
        nll_values = terms["nll"]
        result[m] = {"nll": float(nll_values.mean()),
                     "stderr": float(nll_values.std()) / len(nll_values) ** 0.5 if len(nll_values) > 1 else None,
                     "terms": {k: float(v.mean()) for k, v in terms.items() if k != "nll" and "/" not in k},
                     "fields": _fields(terms, field_totals(terms))}  # fmt: skip
    result["settings"] = {"elbo_samples": elbo_samples, "ode_steps": ode_steps, "ode_method": "dopri5",
                          "probes": probes, "trace": "hutchinson"}  # fmt: skip
    text = json.dumps(result, indent=2)
    if output is not None:
        atomic_write_text(output, text + "\n")
    if json_out:
        print(text)
        return
    print(f"{len(molecules)} molecules of {data} ({skipped} skipped: atom count unseen in training), "
          f"{seconds:.1f} s", file=sys.stderr)  # fmt: skip
    for m in methods:
        r = result[m]
        se = "" if r["stderr"] is None else f" ± {r['stderr']:.2f}"
        parts = ", ".join(f"{k} {v:.2f}" for k, v in r["terms"].items())
        print(f"{m:5s} NLL {r['nll']:.2f}{se} nats per molecule  ({parts})")
        by_field = ", ".join(f"{name} {part['total']:.2f}" for name, part in r["fields"].items())
        print(f"      by field: {by_field}, −log p(N) {-r['terms']['log_p_n']:.2f}")
    if result["edm_reference_nll"] is not None:
        print(f"EDM reports {EDM_QM9_NLL} nats on QM9 (with a charge channel; see moldiff.likelihood.elbo)")


def _fields(terms, totals) -> dict[str, dict[str, float]]:
    """{field: {part: mean, ..., "total": mean}} from a bound's ``<field>/<part>`` terms."""
    out: dict[str, dict[str, float]] = {name: {} for name in totals}
    for key, value in terms.items():
        if "/" in key:
            name, part = key.split("/", 1)
            out[name][part] = float(value.mean())
    for name, total in totals.items():
        out[name]["total"] = float(total.mean())
    return out


def _edm_comparable(data: str, config) -> bool:
    """EDM's QM9 likelihood is of all atoms with hydrogens and no bonds: a reference only for a
    coordinate-only model with explicit hydrogens scored on QM9."""
    return data.lower().split(":")[0] == "qm9" and config.data.hydrogens and not config.data.graph


def _load(source: str, config):
    """A MolSet from ``qm9:SPLIT`` (with the model's hydrogen setting; a graph model's with QM9's bonds
    and charges) or an .npz molecule set (with bonds, for a graph model)."""
    from moldiff.data.molset import MolSet

    graph = config.data.graph
    if source.lower().split(":")[0] == "qm9":
        split = source.split(":", 1)[1] if ":" in source else "test"
        if split not in ("train", "valid", "test"):
            raise MoldiffError(f"unknown QM9 split {split!r} (expected train, valid or test)")
        if not graph:
            from moldiff.data.qm9 import load_qm9

            return load_qm9(split, hydrogens=config.data.hydrogens)
        from moldiff.chem.graphs import load_qm9_graphs

        data = load_qm9_graphs(split)[0]  # the molecules whose SMILES graph is placed on their coordinates
    else:
        path = Path(source)
        if path.suffix != ".npz" or not path.is_file():
            raise MoldiffError(f"--data must be qm9:SPLIT or an existing .npz molecule set, got {source}")
        data = MolSet.load(path)
        if graph and not data.has_bonds:
            raise MoldiffError(f"{source} has no bonds: a graph model scores molecules with their bonds and charges")
    return data if config.data.hydrogens else data.without_hydrogens()
