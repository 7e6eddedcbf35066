"""Quality against CPU hours of training: every saved model of one or more trainings, sampled on
the same seeds.

    python bench/bench_learning_curve.py train_state/qm9_graph train_state/qm9_graph_heavy --name qm9_graph
    python bench/bench_learning_curve.py explicit_h=train_state/qm9_graph heavy=train_state/qm9_graph_heavy -n 100

Each run is a training's out_dir (``LABEL=DIR`` names it): its ``model.pt`` and every
``snapshots/*.pt`` beside it, each a model file that records the training step and the CPU
seconds spent to reach it (summed over resumed runs). Every file samples ``-n`` molecules with the
default solver of ``moldiff sample`` at ``--nfe`` (default 100) from the same run seed (the same
per-molecule seeds; atom counts from each run's training sizes, so the same within a run) and is
scored on: valid and in one piece, stable by the charge-aware valence table, the written bonds
consistent with the coordinates (:mod:`moldiff.chem.graph_eval`; a coordinate-only model with the
bonds ``moldiff sample`` writes), and EDM molecule stability on the coordinates.

Table ``at_equal_cpu_hours`` reads every run at the CPU hours all runs reached (the shortest run's
last file), interpolating linearly between a run's files, so trainings of different cost compare
at equal budget. Writes bench/results/learning_curve_<name>.json and a plot beside it; files
already scored in an earlier ``--out`` with the same settings are not sampled again, so the
command can be rerun as the trainings go on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench_graph_models import RESULTS, _dump, _round, load, measure

# what each file is scored on (fractions of the -n molecules; each also has <name>_se)
KEYS = ("valid_connected", "mol_stability", "geometry_consistency", "valid_connected_consistent", "edm_mol_stability")


def model_files(out_dir: Path) -> list[tuple[Path, int, float]]:
    """(file, step, CPU hours) of a training's model files, by step; a snapshot of the same step as
    another file is kept once."""
    from moldiff.errors import MoldiffError
    from moldiff.train.checkpoint import load_checkpoint

    candidates = sorted((out_dir / "snapshots").glob("*.pt")) + [out_dir / "model.pt"]
    files: dict[int, tuple[Path, int, float]] = {}
    for path in candidates:
        if not path.is_file():
            continue
        payload = load_checkpoint(path)
        if "cpu_seconds" not in payload:
            raise MoldiffError(f"{path} does not record the CPU time of its training (cpu_seconds)")
        step = int(payload["step"])
        files.setdefault(step, (path, step, float(payload["cpu_seconds"]) / 3600))
    if not files:
        raise MoldiffError(f"{out_dir} holds no model.pt and no snapshots/*.pt")
    return [files[s] for s in sorted(files)]


def curve(runs: dict[str, Path], *, n: int, nfe: int, seed: int = 0, batch_size: int = 100, workers: int = 1,
          previous: dict | None = None, out: Path | None = None, head: dict | None = None, log=print) -> dict:  # fmt: skip
    """Score every model file of every run (see the module); ``previous`` rows of the same settings
    and file (path, step) are kept instead of sampled again."""
    from moldiff.generate import atom_counts, molecule_seeds

    settings = {"n": n, "nfe": nfe, "seed": seed, "batch_size": batch_size}
    reuse = {}
    if previous and all(previous.get(k) == v for k, v in settings.items()):
        reuse = {(r["run"], r["file"], r["step"]): r for r in previous.get("rows", [])}
    record: dict = {**(head or {}), **settings, "runs": {}, "rows": []}
    seeds = molecule_seeds(seed, n)
    for label, out_dir in runs.items():
        files = model_files(out_dir)
        known = (previous or {}).get("runs", {}).get(label, {}) if reuse else {}
        record["runs"][label] = {**known, "out_dir": str(out_dir), "files": len(files)}
        for path, step, hours in files:
            key = (label, str(path), step)
            if key in reuse:
                record["rows"].append(reuse[key])
                continue
            generator, info = load(f"{path}@argmax")  # the network's own bonds: how training alone improves
            record["runs"][label].update(graph=info["graph"], hydrogens=info["hydrogens"], bonds=info["bonds"])
            row = measure(generator, seeds, atom_counts(generator, seed, n), nfe, batch_size=batch_size,
                          workers=workers)  # fmt: skip
            record["rows"].append({"run": label, "file": str(path), "step": step, "cpu_hours": hours,
                                   **{k: row[k] for k in KEYS}, **{f"{k}_se": row[f"{k}_se"] for k in KEYS},
                                   "seconds_per_molecule": row["seconds_per_molecule"]})  # fmt: skip
            log(f"{label} step {step} ({hours:.2f} CPU h): " + json.dumps({k: _round(row[k]) for k in KEYS}))
            if out is not None:
                _dump(out, record)
    record["at_equal_cpu_hours"] = at_equal_cpu_hours(record["rows"])
    return record


def at_equal_cpu_hours(rows: list[dict]) -> list[dict]:
    """Each run's :data:`KEYS` at the CPU hours every run reached (the least of their last files'),
    linear between a run's files; empty for one run."""
    runs: dict[str, list[dict]] = {}
    for row in rows:
        runs.setdefault(row["run"], []).append(row)
    if len(runs) < 2:
        return []
    hours = min(max(r["cpu_hours"] for r in rs) for rs in runs.values())
    out = []
    for label, rs in runs.items():
        rs = sorted(rs, key=lambda r: r["cpu_hours"])
        x = [r["cpu_hours"] for r in rs]
        # before a run's first file nothing is known of it: no value rather than an extrapolation
        values = {k: None if hours < x[0] else float(np.interp(hours, x, [r[k] for r in rs])) for k in KEYS}
        out.append({"run": label, "cpu_hours": hours, **values})
    return out


def plot(record: dict, path: Path) -> None:
    """Each key against CPU hours, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(KEYS), figsize=(3.2 * len(KEYS), 3), sharey=True)
    for ax, key in zip(axes, KEYS):
        for label in record["runs"]:
            rs = sorted((r for r in record["rows"] if r["run"] == label), key=lambda r: r["cpu_hours"])
            x = [r["cpu_hours"] for r in rs]
            y = np.array([r[key] for r in rs], dtype=float)
            se = np.array([r[f"{key}_se"] or 0 for r in rs], dtype=float)
            ax.errorbar(x, 100 * y, yerr=100 * se, marker="o", ms=3, capsize=2, label=label)
        ax.set_ylim(-2, 102)
        ax.set_title(key.replace("_", " "), fontsize=9)
        ax.set_xlabel("CPU hours of training")
    axes[0].set_ylabel("% of molecules")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _runs(items: list[str]) -> dict[str, Path]:
    runs: dict[str, Path] = {}
    for item in items:
        label, sep, folder = item.partition("=")
        path = Path(folder if sep else item)
        label = label if sep else path.name
        if label in runs:
            raise SystemExit(f"error: two runs are called {label} (name them LABEL=DIR)")
        runs[label] = path
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="training out_dirs (or LABEL=DIR)")
    parser.add_argument("--name", default=None, help="results name (default: the first run's)")
    parser.add_argument("-n", type=int, default=100, help="molecules per model file")
    parser.add_argument("--nfe", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--threads", "-j", type=int, default=2, help="torch threads and evaluation processes")
    parser.add_argument("--out", type=Path, default=None, help="default: bench/results/learning_curve_<name>.json")
    args = parser.parse_args(argv)
    runs = _runs(args.runs)
    out = args.out or RESULTS / f"learning_curve_{args.name or next(iter(runs))}.json"
    previous = json.loads(out.read_text()) if out.exists() else None
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    head = {"command": "python bench/bench_learning_curve.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "threads": args.threads, "solver": _solver()}  # fmt: skip
    record = curve(runs, n=args.n, nfe=args.nfe, seed=args.seed, batch_size=args.batch_size, workers=args.threads,
                   previous=previous, out=out, head=head, log=lambda m: print(m, file=sys.stderr))  # fmt: skip
    record["seconds"] = time.perf_counter() - start
    _dump(out, record)
    plot(record, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png').name} ({record['seconds']:.0f} s)")


def _solver() -> str:
    from moldiff import defaults

    return defaults.SOLVER


if __name__ == "__main__":
    from moldiff.errors import MoldiffError

    try:
        main()
    except MoldiffError as exc:
        sys.exit(f"error: {exc}")
