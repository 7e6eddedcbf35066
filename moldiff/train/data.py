"""Training data: the configured dataset split into train/valid, and reproducible batch order."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from moldiff.config import DataConfig
from moldiff.data.elements import AtomVocabulary
from moldiff.data.molset import MolSet
from moldiff.errors import MoldiffError


def load_training_data(cfg: DataConfig) -> tuple[MolSet, MolSet]:
    """(train, valid) MolSets for a data config; checks every element is in the vocabulary. With
    ``graph`` the molecules carry their bonds and formal charges."""
    if cfg.subset is not None and cfg.dataset != "moses":
        raise MoldiffError("data.subset applies to the moses dataset only; use data.max_train for other sets")
    graph = getattr(cfg, "graph", False)
    if graph and cfg.dataset == "qm9":
        from moldiff.chem.graphs import load_qm9_graphs

        # QM9 whose SMILES graph could be placed on its coordinates (all but two molecules)
        train, valid = load_qm9_graphs("train")[0], load_qm9_graphs("valid")[0]
        if not cfg.hydrogens:
            train, valid = train.without_hydrogens(), valid.without_hydrogens()
    elif cfg.dataset == "qm9":
        from moldiff.data.qm9 import load_qm9

        train = load_qm9("train", hydrogens=cfg.hydrogens)
        valid = load_qm9("valid", hydrogens=cfg.hydrogens)
    else:
        data = _user_or_moses_set(cfg)
        if graph:
            data = _with_bonds(data, cfg.dataset)
        if not cfg.hydrogens:
            data = data.without_hydrogens()
        # a fixed 90/10 split of the user's set
        perm = np.random.default_rng(0).permutation(len(data))
        n_valid = max(1, len(data) // 10) if len(data) > 1 else 0
        train, valid = data.subset(perm[n_valid:]), data.subset(perm[:n_valid] if n_valid else perm)
    if getattr(cfg, "half", None) is not None:
        train = training_half(train, cfg.half)
    if cfg.max_train is not None:
        train = train.subset(slice(0, cfg.max_train))
    vocab = AtomVocabulary(tuple(cfg.elements))
    vocab.encode(train.atomic_numbers)  # raises with the offending elements
    for name in cfg.properties:
        if name not in train.properties:
            raise MoldiffError(f"property {name!r} is not in the dataset (has {sorted(train.properties)})")
    if len(train) == 0:
        raise MoldiffError("the training set is empty")
    return train, valid


def _user_or_moses_set(cfg: DataConfig) -> MolSet:
    """The whole set (before the train/valid split) of a dataset that is not QM9."""
    if cfg.dataset == "moses":
        from moldiff.data.moses import prepare_moses

        return prepare_moses(cfg.subset, on_chunk=_chunk_progress).molset
    path = Path(cfg.dataset)
    if path.suffix == ".npz":
        if not path.is_file():
            raise MoldiffError(f"data.dataset: no such file {path}")
        return MolSet.load(path)
    if path.suffix.lower() in (".sdf", ".sd", ".mol", ".csv", ".gz", ".smi", ".smiles"):
        from moldiff.data.ingest import ingest

        result = ingest(path, AtomVocabulary(tuple(cfg.elements)))
        if result.rejects:
            index, reason = result.rejects[0]
            print(f"{path}: {result.summary()}; first rejected record {index}: {reason}", flush=True)
        return result.molset
    raise MoldiffError(f"data.dataset must be 'qm9', 'moses', a .npz from `moldiff data ingest`, or an "
                       f"SDF/SMILES/CSV file; got {path}")  # fmt: skip


def _with_bonds(data: MolSet, name: str) -> MolSet:
    """A set with its bonds: as read (an SDF's bond block), or its SMILES graph placed on its
    coordinates (MOSES, SMILES files: RDKit conformers of the same molecules)."""
    if data.has_bonds:
        return data
    if data.smiles is None:
        raise MoldiffError(f"data.graph needs molecules with bonds, and {name} has neither bonds nor SMILES")
    placed, failed = _placed_graphs(data)
    if failed:
        index, reason = next(iter(failed.items()))
        print(f"{name}: bonds placed on {len(placed)} of {len(data)} molecules; first left out: {index}: {reason}",
              flush=True)  # fmt: skip
    if not len(placed):
        raise MoldiffError(f"data.graph: no molecule of {name} has a SMILES graph that fits its coordinates")
    return placed


GRAPH_CACHE_VERSION = 1


def _placed_graphs(data: MolSet) -> tuple[MolSet, dict[int, str]]:
    """:func:`moldiff.chem.graphs.with_graphs` of ``data``, cached under the moldiff home by the
    set's content (placing 20,000 MOSES graphs takes minutes; a resumed training reads them back)."""
    import hashlib
    import json

    from moldiff.chem.graphs import with_graphs
    from moldiff.paths import atomic_write_text, moldiff_home

    h = hashlib.sha256(str(GRAPH_CACHE_VERSION).encode())
    for array in (data.atomic_numbers, data.positions, data.ptr, data.charges):
        h.update(np.ascontiguousarray(array).tobytes())
    h.update("\n".join(map(str, data.smiles)).encode())
    path = moldiff_home() / "graphs" / f"{h.hexdigest()[:20]}.npz"
    reasons = path.with_suffix(".failed.json")
    if path.exists() and reasons.exists():
        return MolSet.load(path), {int(k): v for k, v in json.loads(reasons.read_text()).items()}
    placed, failed = with_graphs(data)
    atomic_write_text(reasons, json.dumps({str(k): v for k, v in failed.items()}))
    placed.save(path)
    return placed, failed


def _chunk_progress(done: int, total: int) -> None:
    if done == total or done % 10 == 0:
        print(f"MOSES conformers: chunk {done}/{total}", flush=True)


def training_half(train: MolSet, half: str) -> MolSet:
    """The first or second half of a training set (EDM's conditional protocol: the first 50,000 of
    QM9's training split train the property judge, the other 50,000 the conditional generator)."""
    cut = len(train) // 2
    if half == "first":
        return train.subset(slice(0, cut))
    if half == "second":
        return train.subset(slice(cut, len(train)))
    raise MoldiffError(f"data.half must be 'first' or 'second', got {half!r}")


class BatchOrder:
    """Epoch-wise shuffles that depend only on (seed, epoch), sharded over ranks, so a resumed or
    distributed run sees exactly the batches an uninterrupted one would."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self._cached: tuple[int, np.ndarray] | None = None

    def batches_per_epoch(self) -> int:
        per_rank = self.n // self.world
        return max(1, per_rank // self.batch_size)

    def batch(self, epoch: int, index: int) -> np.ndarray:
        if self._cached is None or self._cached[0] != epoch:
            perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            shard = perm[self.rank :: self.world][: max(1, self.n // self.world)]
            if len(shard) < self.batch_size:  # tiny sets: repeat to fill one batch
                shard = np.resize(shard, self.batch_size)
            self._cached = (epoch, shard)
        shard = self._cached[1]
        return shard[index * self.batch_size : (index + 1) * self.batch_size]
