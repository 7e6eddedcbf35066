"""``moldiff data ingest FILE -o OUT.npz``, ``moldiff data prepare moses|FILE -o OUT.npz`` and
``moldiff data info FILE.npz|qm9``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer

from moldiff.cli.main import app
from moldiff.errors import MoldiffError

data_app = typer.Typer(help="Import your own molecules and inspect molecule sets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

QM9_SPLITS = ("train", "valid", "test")
QM9 = "H,C,N,O,F"  # the elements of the bundled QM9 models


@data_app.command("ingest")
def ingest_command(
    file: Annotated[Path, typer.Argument(help="An .sdf with 3D coordinates, or SMILES (.csv, .smi).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="The molecule set to write (.npz).")],
    max_atoms: Annotated[Optional[int], typer.Option(help="Reject larger molecules (H counted).")] = None,
    elements: Annotated[str, typer.Option(help="Elements the model knows (comma-separated) or 'any'.")] = QM9,
    workers: Annotated[Optional[int], typer.Option(help="Conformer processes.", show_default="all CPUs")] = None,
    seed: Annotated[Optional[int], typer.Option(help="ETKDG seed for SMILES input.")] = None,
) -> None:
    """Read FILE, keep what the model can represent, write OUT and OUT.rejects.csv beside it."""
    from moldiff.data.ingest import ingest, write_rejects

    if out.suffix != ".npz":
        raise MoldiffError(f"the output must be an .npz file, got {out}")
    if workers is not None and workers < 1:
        raise MoldiffError(f"--workers must be at least 1, got {workers}")
    result = ingest(file, _vocabulary(elements), max_atoms=max_atoms, workers=workers, seed=seed)
    rejects_path = out.with_suffix(".rejects.csv")
    result.molset.save(out)
    write_rejects(rejects_path, result.rejects)
    typer.echo(result.summary(rejects_path))
    fallback = Counter(f for f in result.forcefields if f != "MMFF94")
    if fallback:
        done = ", ".join(f"{n} with {f}" if f != "none" else f"{n} not at all" for f, n in fallback.items())
        typer.echo(f"note: MMFF94 had no parameters for some molecules; relaxed {done}")


@data_app.command("prepare")
def prepare_command(
    source: Annotated[str, typer.Argument(help="'moses', or your own .sdf / .csv / .smi file.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="The molecule set to write (.npz).")],
    subset: Annotated[Optional[int], typer.Option(help="MOSES: how many molecules (a seeded random subset).")] = None,
    split: Annotated[str, typer.Option(help="MOSES split: train or test.")] = "train",
    seed: Annotated[int, typer.Option(help="MOSES: the subset's shuffle seed.")] = 0,
    max_atoms: Annotated[Optional[int], typer.Option(help="Reject larger molecules (H counted).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Conformer processes.", show_default="all CPUs")] = None,
) -> None:
    """Build a 3D training set: MOSES drug-like SMILES (cached, resumable) or your own file.

    Writes OUT (.npz), OUT.json (source, subset, split, element vocabulary, sizes) and
    OUT.rejects.csv.
    """
    if out.suffix != ".npz":
        raise MoldiffError(f"the output must be an .npz file, got {out}")
    if workers is not None and workers < 1:
        raise MoldiffError(f"--workers must be at least 1, got {workers}")
    if source.lower() != "moses":
        if not Path(source).exists():
            raise MoldiffError(f"unknown source {source!r}: give 'moses' or an existing .sdf/.csv/.smi file")
        ingest_command(Path(source), out, max_atoms=max_atoms, elements="any", workers=workers, seed=None)
        return
    import json
    import sys

    from moldiff.data.moses import prepare_moses, write_prepared

    def chunk_done(done: int, total: int) -> None:
        print(f"conformer chunks: {done}/{total}", file=sys.stderr, flush=True)

    prepared = prepare_moses(subset, split=split, seed=seed, workers=workers, max_atoms=max_atoms,
                             on_chunk=chunk_done)  # fmt: skip
    write_prepared(prepared, out)
    info = prepared.info
    typer.echo(f"{info['source']}: {info['subset']} of {info['split_size']} molecules, embedded {info['embedded']}, "
               f"rejected {info['rejected']} (see {out.with_suffix('.rejects.csv')})")  # fmt: skip
    typer.echo(f"elements: {', '.join(info['elements'])}; atoms per molecule {json.dumps(info['atoms_per_molecule'])}")


@data_app.command("info")
def info_command(
    source: Annotated[str, typer.Argument(help="A molecule set (.npz), or qm9 / qm9:train|valid|test.")],
) -> None:
    """Print counts, the atom-count histogram and element frequencies of a molecule set."""
    from moldiff.data.molset import MolSet

    if source.lower().split(":")[0] == "qm9":
        from moldiff.data.qm9 import load_qm9

        split = source.split(":", 1)[1] if ":" in source else None
        if split is not None and split not in QM9_SPLITS:
            raise MoldiffError(f"unknown QM9 split {split!r} (expected one of {', '.join(QM9_SPLITS)})")
        data = load_qm9(split)
    else:
        if not Path(source).is_file():
            raise MoldiffError(f"no such file: {source}")
        data = MolSet.load(source)
    typer.echo(describe(data, source))


def describe(data, name: str) -> str:
    """A plain-text report of a MolSet: counts, atom-count histogram, element frequencies."""
    n = data.n_atoms
    lines = [f"{name}: {len(data)} molecules, {int(n.sum())} atoms"]
    if len(data):
        lines.append(f"atoms per molecule: min {n.min()}, mean {n.mean():.1f}, max {n.max()}")
    hist = data.atom_count_histogram()
    if hist:
        lines.append("atom-count histogram:")
        top = max(hist.values())
        lines += [f"  {k:4d} {v:8d} {'#' * max(1, round(40 * v / top))}" for k, v in hist.items()]
    lines.append("element frequencies:")
    freqs = sorted(data.element_frequencies().items(), key=lambda kv: -kv[1])
    lines += [f"  {_element_name(z):>3s} {f * 100:6.2f} %" for z, f in freqs]
    if data.properties:
        lines.append(f"properties: {', '.join(sorted(data.properties))}")
    return "\n".join(lines)


def _element_name(z: int) -> str:
    from moldiff.data.elements import symbol

    try:
        return symbol(z)
    except MoldiffError:
        return f"Z{z}"


def _vocabulary(elements: str):
    from moldiff.data.elements import AtomVocabulary, atomic_number, symbol

    if elements.strip().lower() == "any":
        return None
    try:
        symbols = tuple(symbol(atomic_number(s)) for s in elements.split(",") if s.strip())
    except MoldiffError as exc:
        raise MoldiffError(f"--elements: {exc}") from None
    if not symbols:
        raise MoldiffError("--elements is empty (give e.g. H,C,N,O,F or 'any')")
    return AtomVocabulary(symbols)
