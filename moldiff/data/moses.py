"""MOSES drug-like molecules (Polykovskiy et al. 2020) in 3D: SMILES from the ``molsets`` wheel,
conformers by RDKit (ETKDG v3 + MMFF94), prepared in resumable, cached chunks.

The MOSES SMILES live inside the ``molsets`` wheel (``moses/dataset/data/{train,test}.csv.gz``), but
``pip install molsets`` fails on an old pinned dependency, so the wheel is fetched with
``pip download --no-deps`` into ``$MOLDIFF_HOME/moses/`` and read as a zip file. Point
``$MOLDIFF_MOSES_WHEEL`` at a wheel you already have to skip the download.

The set: MOSES train (1,584,663 molecules; test 176,074) is shuffled with ``seed`` and the first
``subset`` molecules are embedded. MOSES molecules contain only C, N, O, F, S, Cl, Br and H
(:data:`MOSES_ELEMENTS`), with 8–27 heavy atoms; with hydrogens up to about 70 atoms. Conformers
are made in chunks of ``chunk_size`` SMILES, each written to
``$MOLDIFF_HOME/moses/conformers/<key>/`` as soon as it is done, so an interrupted preparation
resumes at the first missing chunk.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from moldiff.data.elements import AtomVocabulary, symbol
from moldiff.data.molset import MolSet
from moldiff.errors import MoldiffError
from moldiff.paths import atomic_write_text, moldiff_home

WHEEL = "molsets==0.3.1"
WHEEL_ENV = "MOLDIFF_MOSES_WHEEL"
SPLITS = {"train": "moses/dataset/data/train.csv.gz", "test": "moses/dataset/data/test.csv.gz"}
MOSES_ELEMENTS = AtomVocabulary(("H", "C", "N", "O", "F", "S", "Cl", "Br"))
CHUNK_SIZE = 500


def moses_wheel() -> Path:
    """The molsets wheel: ``$MOLDIFF_MOSES_WHEEL``, the cached copy, or downloaded with pip."""
    if os.environ.get(WHEEL_ENV):
        path = Path(os.environ[WHEEL_ENV])
        if not path.is_file():
            raise MoldiffError(f"${WHEEL_ENV} points at {path}, which is not a file")
        return path
    folder = moldiff_home() / "moses"
    found = sorted(folder.glob("molsets-*.whl"))
    if found:
        return found[-1]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", tmp, WHEEL]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob("molsets-*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise MoldiffError(f"cannot download the MOSES data ({WHEEL}) with pip: {last[:160]}; "
                               f"download it with `pip download --no-deps {WHEEL}` and set ${WHEEL_ENV}")  # fmt: skip
        os.replace(wheels[0], folder / wheels[0].name)
        return folder / wheels[0].name


def moses_smiles(split: str = "train", wheel: Path | None = None) -> list[str]:
    """The SMILES of a MOSES split (``train`` or ``test``), in the file's order."""
    if split not in SPLITS:
        raise MoldiffError(f"unknown MOSES split {split!r}; choose from {', '.join(SPLITS)}")
    wheel = wheel or moses_wheel()
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(SPLITS[split]) as raw:
            lines = gzip.decompress(raw.read()).decode().splitlines()
    except (zipfile.BadZipFile, KeyError, OSError, EOFError) as exc:
        raise MoldiffError(f"cannot read MOSES {split} from {wheel}: {exc}") from None
    if not lines or lines[0].split(",")[0].strip().upper() != "SMILES":
        raise MoldiffError(f"{wheel}: {SPLITS[split]} does not start with a SMILES header")
    return [line.split(",")[0].strip() for line in lines[1:] if line.strip()]


def subset_order(n: int, subset: int | None, seed: int = 0) -> np.ndarray:
    """Positions in a split of ``n`` molecules of the subset ``prepare_moses`` embeds."""
    return np.random.default_rng(seed).permutation(n)[: subset or n]


def subset_smiles(subset: int | None, split: str = "train", seed: int = 0) -> list[str]:
    """The SMILES of the subset ``prepare_moses(subset, split=split, seed=seed)`` embeds (before
    conformer failures), without embedding anything: a model's training reference."""
    smiles = moses_smiles(split)
    return [smiles[i] for i in subset_order(len(smiles), subset, seed)]


@dataclass
class PreparedSet:
    """The embedded molecules (``molset.ids``: position in the MOSES split, ``smiles`` canonical),
    the ``(position, reason)`` of molecules that failed, and a description for the sidecar file."""

    molset: MolSet
    rejects: list[tuple[int, str]]
    info: dict


def prepare_moses(subset: int | None = None, *, split: str = "train", seed: int = 0, workers: int | None = None,
                  max_atoms: int | None = None, chunk_size: int = CHUNK_SIZE,
                  on_chunk: Callable[[int, int], None] | None = None, progress: bool | None = None) -> PreparedSet:  # fmt: skip
    """Embed ``subset`` MOSES molecules (all when None) in 3D, resuming from cached chunks.

    Args:
        subset: how many molecules: the first ``subset`` of the split shuffled with ``seed``.
        split: ``train`` or ``test``.
        seed: shuffle seed (the ETKDG seed is moldiff's fixed conformer seed).
        workers: conformer processes (default ``os.cpu_count()``).
        max_atoms: reject molecules with more atoms than this (hydrogens included).
        chunk_size: SMILES per cached chunk (the unit of resuming).
        on_chunk: called with (chunks done, chunks in all) after each chunk.
        progress: conformer progress bar within a chunk (None: on a terminal only).
    """
    from moldiff.chem.conformers import DEFAULT_SEED, embed_many
    from moldiff.data.ingest import screen_atoms

    if subset is not None and subset < 1:
        raise MoldiffError(f"--subset must be at least 1, got {subset}")
    smiles = moses_smiles(split)
    order = subset_order(len(smiles), subset, seed)
    key = hashlib.sha256(json.dumps([split, seed, len(smiles), max_atoms, DEFAULT_SEED]).encode()).hexdigest()[:12]
    folder = moldiff_home() / "moses" / "conformers" / f"{split}-{key}-c{chunk_size}"
    n_chunks = -(-len(order) // chunk_size)
    screen = partial(screen_atoms, vocab=MOSES_ELEMENTS, max_atoms=max_atoms)
    parts, rejects = [], []
    for c in range(n_chunks):
        index = order[c * chunk_size : (c + 1) * chunk_size]
        path = folder / f"chunk_{c:05d}.npz"
        # a chunk cached by a smaller subset is too short: embed it again; one cached by a larger
        # subset (every subset is a prefix of the same shuffled order) holds more: keep ours only
        wanted = set(index.tolist())
        part, bad = _load_chunk(path) if path.exists() else (None, [])
        if part is None or not wanted <= set(part.ids.tolist()) | {i for i, _ in bad}:
            results = embed_many([smiles[i] for i in index], workers=workers, screen=screen, progress=progress)
            _save_chunk(path, index, results)
            part, bad = _load_chunk(path)
        part = part.subset([k for k, i in enumerate(part.ids.tolist()) if i in wanted])
        bad = [(i, reason) for i, reason in bad if i in wanted]
        parts.append(part)
        rejects += bad
        if on_chunk is not None:
            on_chunk(c + 1, n_chunks)
    molset = MolSet.concat(parts) if parts else MolSet(np.zeros(0), np.zeros((0, 3)), np.zeros(1))
    elements = sorted({int(z) for z in np.unique(molset.atomic_numbers)})
    info = {
        "source": f"MOSES {split} ({WHEEL} wheel)", "split_size": len(smiles), "subset": len(order), "seed": seed,
        "embedded": len(molset), "rejected": len(rejects), "conformers": "RDKit ETKDG v3 + MMFF94 (UFF fallback)",
        "elements": [symbol(z) for z in elements], "vocabulary": list(MOSES_ELEMENTS.symbols),
        "atoms_per_molecule": _stats(molset.n_atoms), "heavy_atoms_per_molecule": _stats(_heavy(molset)),
        "training_split": "moldiff train uses a fixed 90/10 train/validation split of this set (seed 0)",
    }  # fmt: skip
    return PreparedSet(molset, rejects, info)


def write_prepared(prepared: PreparedSet, out: Path) -> None:
    """Write OUT.npz, OUT.json (the description) and OUT.rejects.csv beside it."""
    from moldiff.data.ingest import write_rejects

    prepared.molset.save(out)
    atomic_write_text(out.with_suffix(".json"), json.dumps(prepared.info, indent=2) + "\n")
    write_rejects(out.with_suffix(".rejects.csv"), prepared.rejects)


def _save_chunk(path: Path, index: np.ndarray, results: list) -> None:
    from moldiff.chem.conformers import Conformer
    from moldiff.paths import atomic_write_bytes

    ok = [(int(i), r) for i, r in zip(index, results) if isinstance(r, Conformer)]
    bad = [(int(i), r) for i, r in zip(index, results) if not isinstance(r, Conformer)]
    arrays = {
        "ids": np.array([i for i, _ in ok], dtype=np.int64),
        "atomic_numbers": np.concatenate([c.atomic_numbers for _, c in ok]) if ok else np.zeros(0, np.int64),
        "positions": np.concatenate([c.positions for _, c in ok]) if ok else np.zeros((0, 3)),
        "charges": np.concatenate([c.charges for _, c in ok]) if ok else np.zeros(0, np.int64),
        "counts": np.array([len(c.atomic_numbers) for _, c in ok], dtype=np.int64),
        "smiles": np.array([c.smiles for _, c in ok], dtype=str),
        "reject_ids": np.array([i for i, _ in bad], dtype=np.int64),
        "reject_reasons": np.array([r for _, r in bad], dtype=str),
    }
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _load_chunk(path: Path) -> tuple[MolSet, list[tuple[int, str]]]:
    with np.load(path, allow_pickle=False) as z:
        molset = MolSet(atomic_numbers=z["atomic_numbers"], positions=z["positions"], charges=z["charges"],
                        ptr=np.concatenate([[0], np.cumsum(z["counts"])]), ids=z["ids"],
                        smiles=z["smiles"] if len(z["ids"]) else np.zeros(0, dtype=str))  # fmt: skip
        rejects = [(int(i), str(r)) for i, r in zip(z["reject_ids"], z["reject_reasons"])]
    return molset, rejects


def _heavy(molset: MolSet) -> np.ndarray:
    heavy = (molset.atomic_numbers != 1).astype(np.int64)
    return np.add.reduceat(heavy, molset.ptr[:-1]) if len(molset) else np.zeros(0, np.int64)


def _stats(values: np.ndarray) -> dict:
    if not len(values):
        return {}
    return {"min": int(values.min()), "mean": round(float(values.mean()), 2), "max": int(values.max())}
