"""What the sampling benchmarks share: sample a model with one solver and score the molecules with
the EDM protocol, timing the sampling alone. Run the benchmarks as ``python bench/NAME.py`` (this
folder is then on the import path)."""

from __future__ import annotations

import time

from moldiff.chem.evaluate import evaluate
from moldiff.sampling import generate
from moldiff.solvers import get_solver, solver_times

METRICS = ("atom_stability", "mol_stability", "validity", "valid_x_unique", "valid_connected")


def parse_label(label: str) -> tuple[str, str | None, dict]:
    """``NAME[@GRID][,KEY=VALUE...]`` -> (solver, grid or None, options): ``dpmpp-2m@edm,eta=1``."""
    head, *pairs = label.split(",")
    solver, _, grid = head.partition("@")
    options = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        options[key] = float(value) if "." in value or "e" in value.lower() else int(value)
    return solver, grid or None, options


def sample_and_score(gen, solver: str, nfe: int, *, n: int, seed: int, batch_size: int, device: str,
                     options: dict | None = None, grid: str | None = None) -> dict:  # fmt: skip
    """One benchmark row: ``n`` molecules from ``gen`` with ``solver`` at an NFE budget of ``nfe``
    (on its default time grid unless ``grid``): the EDM metrics, the NFE really spent per molecule,
    and seconds per molecule and per valid molecule."""
    options = options or {}
    times = solver_times(solver, nfe, gen.denoiser.schedule, grid=grid, **options)
    gen.denoiser.nfe = 0
    start = time.perf_counter()
    mols, _ = generate(gen, n, seed=seed, solver=get_solver(solver, **options), times=times,
                       batch_size=batch_size, device=device)  # fmt: skip
    seconds = time.perf_counter() - start
    summary, _ = evaluate(mols, reference_smiles=None)
    valid = summary["validity"] * n
    return {"solver": solver, "options": options, "nfe": gen.denoiser.nfe / -(-n // batch_size), "n": n,
            **{k: float(summary[k]) for k in METRICS}, "seconds_per_molecule": seconds / n,
            "seconds_per_valid": seconds / valid if valid else None}  # fmt: skip
