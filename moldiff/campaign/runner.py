"""Running a campaign: generation and per-molecule scoring in batches, resuming, sharding, merging,
and the finishing step that selects, writes the outputs and logs one MLflow run.

Molecule ``i`` of a campaign has the seed ``molecule_seeds(seed, n)[i]`` and the atom count
``atom_counts(generator, seed, n)[i]``. Batches are fixed slices of the molecule indices
(``[b·B, (b+1)·B)`` for ``sampling.batch_size`` B), and a shard ``K/N`` (0 ≤ K < N) takes the
batches b ≡ K (mod N). Each molecule is therefore generated with the same noise *and the same
batch-mates* whether the campaign runs whole or in shards, so merged shards reproduce the unsplit
run exactly (not just up to floating-point summation order).

A campaign directory::

    campaign.yaml          the resolved config (every default filled in)
    batches/batch_00007.npz, .scores.jsonl, .json   molecules, their scores, the completion marker
    molecules.sdf, molecules.csv, metrics.json, reference_scores.csv, run.json, report.html

A batch counts as finished when its marker (written last, atomically) exists, so an interrupted
campaign resumes at the first unfinished batch.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moldiff.campaign.config import CampaignConfig, dump_yaml, load_campaign, validate_campaign
from moldiff.data.molset import MolSet
from moldiff.errors import MoldiffError
from moldiff.paths import atomic_write_bytes, atomic_write_text, file_digest

CONFIG_NAME = "campaign.yaml"
BATCHES = "batches"
OUTPUTS = ("molecules.sdf", "molecules.csv", "metrics.json", "reference_scores.csv", "run.json", "report.html")
REFERENCE_SAMPLE = 2000  # reference molecules whose descriptors the report plots


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``: the batches b with b mod count == index."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"K/N"`` with 0 ≤ K < N."""
        try:
            k, n = (int(p) for p in text.split("/"))
        except ValueError:
            raise MoldiffError(f"--shard must look like K/N (e.g. 0/4), got {text!r}") from None
        if n < 1 or not 0 <= k < n:
            raise MoldiffError(f"--shard K/N needs 0 <= K < N (shards are numbered from 0), got {text!r}")
        return cls(k, n)

    def batches(self, n_batches: int) -> list[int]:
        return list(range(self.index, n_batches, self.count))


@dataclass
class CampaignResult:
    out_dir: Path
    metrics: dict
    frame: object  # the final DataFrame, one row per generated molecule
    run_id: str | None


# ------------------------------------------------------------------------------- batches
def batch_range(config: CampaignConfig, b: int) -> tuple[int, int]:
    size = config.sampling.batch_size
    return b * size, min((b + 1) * size, config.n_molecules)


def _batch_path(folder: Path, b: int, suffix: str) -> Path:
    return folder / BATCHES / f"batch_{b:05d}{suffix}"


def batch_done(folder: Path, b: int) -> bool:
    return _batch_path(folder, b, ".json").exists()


def _write_batch(folder: Path, b: int, molset: MolSet, frame, meta: dict) -> None:
    import io

    buf = io.BytesIO()
    graph = {"bonds": molset.bonds, "bond_ptr": molset.bond_ptr} if molset.has_bonds else {}  # a graph model's own
    np.savez(buf, atomic_numbers=molset.atomic_numbers, positions=molset.positions, ptr=molset.ptr,
             charges=molset.charges, ids=molset.ids, **graph)  # fmt: skip
    atomic_write_bytes(_batch_path(folder, b, ".npz"), buf.getvalue())
    lines = [json.dumps({k: _plain(v) for k, v in row.items()}) for row in frame.to_dict("records")]
    atomic_write_text(_batch_path(folder, b, ".scores.jsonl"), "\n".join(lines) + "\n")
    atomic_write_text(_batch_path(folder, b, ".json"), json.dumps(meta, indent=1) + "\n")  # the marker: last


def _read_batch(folder: Path, b: int):
    import pandas as pd

    from moldiff.chem.scoring import typed

    with np.load(_batch_path(folder, b, ".npz"), allow_pickle=False) as z:
        graph = {"bonds": z["bonds"], "bond_ptr": z["bond_ptr"]} if "bonds" in z else {}
        molset = MolSet(atomic_numbers=z["atomic_numbers"], positions=z["positions"], ptr=z["ptr"],
                        charges=z["charges"], ids=z["ids"], **graph)  # fmt: skip
    rows = [json.loads(line) for line in _batch_path(folder, b, ".scores.jsonl").read_text().splitlines() if line]
    meta = json.loads(_batch_path(folder, b, ".json").read_text())
    return molset, typed(pd.DataFrame.from_records(rows)), meta


def _plain(value):
    """A JSON-safe scalar: numpy/pandas scalars to Python, missing values to None."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    return value


# ------------------------------------------------------------------------------ the run
def run_campaign(config: CampaignConfig, *, shard: Shard | None = None, resume: bool = False,
                 tracking_uri: str | None = None, track: bool = True,
                 progress: Callable[[int], None] | None = None, log: Callable[[str], None] = print,
                 ) -> CampaignResult | None:  # fmt: skip
    """Generate and score the campaign's batches (those of ``shard``), then finish it.

    Args:
        config: the validated campaign.
        shard: generate only this shard's batches and stop (finish later with :func:`merge`).
        resume: continue a directory that already holds batches of this campaign.
        tracking_uri: MLflow URI (beats the config and ``$MLFLOW_TRACKING_URI``).
        track: log the finished campaign to MLflow (also needs ``tracking.enabled``).
        progress: called with the number of molecules each finished batch adds.
        log: one-line status messages.

    Returns:
        The finished campaign, or None for a shard.
    """
    out = config.out_dir()
    _claim_directory(out, config, resume=resume or shard is not None)
    uri = _tracking_uri(config, tracking_uri) if track and config.tracking.enabled and shard is None else None
    if uri is not None:
        from moldiff import track as tracking

        tracking.check_reachable(uri)  # before any work
    todo = [b for b in (shard or Shard(0, 1)).batches(config.n_batches) if not batch_done(out, b)]
    skipped = len((shard or Shard(0, 1)).batches(config.n_batches)) - len(todo)
    if skipped:
        log(f"{skipped} finished batches found in {out}; not regenerating them")
    if todo:
        _generate(config, out, todo, progress, log)
    if shard is not None:
        log(f"shard {shard.index}/{shard.count} done: {len(todo)} batches written to {out / BATCHES}")
        return None
    return finish(config, out, [out], tracking_uri=uri)


def _claim_directory(out: Path, config: CampaignConfig, *, resume: bool) -> None:
    """Refuse to mix campaigns in one directory; write the resolved config."""
    saved = out / CONFIG_NAME
    if saved.exists():
        try:
            previous = load_saved_campaign(out)
        except MoldiffError:
            raise MoldiffError(f"{out} holds a campaign file that cannot be read ({saved}); use another output_dir") from None
        markers = sorted((out / BATCHES).glob("batch_*.json"))
        started = bool(markers)
        # a start that failed before its first batch (a target the model cannot take) leaves only the file
        if previous.fingerprint() != config.fingerprint() and (started or (out / "molecules.csv").exists()):
            diff = _first_difference(previous.model_dump(), config.model_dump())
            raise MoldiffError(f"{out} holds a different campaign (its {diff} differs); use another output_dir")
        if started and (theirs := json.loads(markers[0].read_text()).get("fingerprint")) != config.fingerprint():
            raise MoldiffError(f"{out} holds batches fingerprinted {theirs}, but this campaign's fingerprint is "
                               f"{config.fingerprint()}: they were generated from other settings, or by a moldiff "
                               "version that read the campaign file differently; use another output_dir")  # fmt: skip
        if started and not resume:
            raise MoldiffError(f"{out} already holds batches of this campaign; pass --resume to continue it "
                               "(or choose another output_dir)")  # fmt: skip
    atomic_write_text(saved, dump_yaml(config))


def _first_difference(a: dict, b: dict, prefix: str = "") -> str:
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
                return _first_difference(a[key], b[key], f"{prefix}{key}.")
            return f"key {prefix}{key}"
    return "config"


def _tracking_uri(config: CampaignConfig, cli_uri: str | None) -> str:
    from moldiff import track

    return track.resolve_uri(cli_uri, config.tracking.uri)


@dataclass
class _Sampler:
    """Everything a campaign's batches are drawn with: the model, its guidance plan, the solver and
    the seed and atom count of every molecule."""

    config: CampaignConfig
    model_config: object
    payload: dict
    plan: object
    solver: Callable
    times: object
    seeds: list[int]
    counts: list[int]
    device: object
    precision: str
    model_path: Path

    def batch(self, b: int) -> MolSet:
        """Batch ``b``'s molecules: each with its own seed, among the same batch-mates as always."""
        start, end = batch_range(self.config, b)
        molset = self.plan.sample(self.seeds[start:end], self.counts[start:end], solver=self.solver, times=self.times,
                                  device=self.device)  # fmt: skip
        molset.ids = np.arange(start, end, dtype=np.int64)
        return molset


def _sampler(config: CampaignConfig) -> _Sampler:
    from moldiff.guidance.plan import plan_guidance
    from moldiff.models import load_generator, resolve_model
    from moldiff.nets.precision import resolve_precision
    from moldiff.sampling import molecule_seeds
    from moldiff.solvers import get_solver, solver_times
    from moldiff.train.loop import pick_device

    device = pick_device(config.sampling.device)
    model_path = resolve_model(config.model)
    generator, model_config, payload = load_generator(str(model_path), device=str(device))
    s = config.sampling.resolved(flow_map=hasattr(generator.denoiser, "jump"))
    generator.type_decoding, generator.bond_decoding = s.types, s.bonds
    plan = plan_guidance(generator, model_config, payload, config.guidance_spec(), device=str(device))
    precision = resolve_precision(s.precision, device)
    plan.set_precision(precision)
    times = solver_times(s.solver, s.steps, generator.denoiser.schedule, grid=s.grid, **s.options)
    return _Sampler(config, model_config, payload, plan, get_solver(s.solver, **s.options), times,
                    molecule_seeds(config.seed, config.n_molecules),
                    plan.atom_counts(config.seed, config.n_molecules, s.n_atoms), device, precision, model_path)  # fmt: skip


def _generate(config: CampaignConfig, out: Path, batches: list[int], progress, log) -> None:
    from moldiff.campaign.reference import load_reference
    from moldiff.chem.scoring import score_molset

    sampler = _sampler(config)
    plan, payload = sampler.plan, sampler.payload
    reference = load_reference(config.scoring.reference, sampler.model_config, config.scoring.max_neighbours)
    posebusters = None if config.scoring.posebusters == "off" else config.scoring.posebusters
    model_hash = file_digest(sampler.model_path)
    steering = {"guidance": plan.record, "steering_sha256": _steering_digest(plan)} if plan.active else {}
    for b in batches:
        start, end = batch_range(config, b)
        t0 = time.time()
        molset = sampler.batch(b)
        t1 = time.time()
        frame = score_molset(molset, reference, posebusters=posebusters, workers=config.scoring.workers)
        frame.insert(1, "seed", np.array(sampler.seeds[start:end], dtype=np.int64))
        frame["bond_source"] = bond_sources(molset, frame["valid"])
        for key, values in _steering_columns(plan, molset, frame["smiles"].tolist()).items():
            frame[key] = values
        meta = {"batch": b, "start": start, "end": end, "fingerprint": config.fingerprint(),
                "model": str(sampler.model_path), "model_sha256": model_hash, "model_step": payload.get("step"),
                "device": str(sampler.device), "precision": sampler.precision,
                "seconds_generate": round(t1 - t0, 3), "seconds_score": round(time.time() - t1, 3),
                **steering}  # fmt: skip
        _write_batch(out, b, molset, frame, meta)
        if progress is not None:
            progress(end - start)


def bond_sources(molset: MolSet, valid) -> list[str]:
    """Where each molecule's bonds in the campaign's outputs come from: a set's own (``model``: a
    graph model's), else xyz2mol's where it succeeded (``valid``, (M,) bool) and the EDM distance
    rule's where it failed (:func:`moldiff.chem.scoring.sdf_molecules`)."""
    from moldiff.chem.io import EDM_BOND_SOURCE

    if molset.has_bonds:
        return ["model"] * len(molset)
    return ["xyz2mol" if ok else EDM_BOND_SOURCE for ok in np.asarray(valid, dtype=bool)]


def regenerate(config: CampaignConfig, indices: list[int], *, log: Callable[[str], None] = print,
               sampler: _Sampler | None = None) -> MolSet:  # fmt: skip
    """Molecules ``indices`` of a campaign (each once, in that order), generated again from their
    seeds. Each is drawn with its batch-mates, as in the campaign, so on the same kind of machine
    and precision it equals the campaign's own molecule bit for bit (at the cost of its batch)."""
    indices = list(dict.fromkeys(int(i) for i in indices))
    bad = [i for i in indices if not 0 <= i < config.n_molecules]
    if not indices or bad:
        raise MoldiffError(f"molecule indices must be in 0..{config.n_molecules - 1} (got {bad or 'none'})")
    sampler = sampler or _sampler(config)
    size = config.sampling.batch_size
    parts = []
    for b in sorted({i // size for i in indices}):
        start, end = batch_range(config, b)
        log(f"regenerating batch {b} (molecules {start}-{end - 1})")
        batch = sampler.batch(b)
        parts.append(batch.subset([i - start for i in indices if i // size == b]))
    molset = MolSet.concat(parts)
    order = {int(i): k for k, i in enumerate(molset.ids)}
    return molset.subset([order[i] for i in indices])


@dataclass
class Regenerated:
    """Molecules of a campaign generated again: their seeds, and for each how it compares with the
    campaign's copy (``deviation``: largest coordinate difference in Å, inf for other atoms, None
    when no copy was found; ``compared_with``: ``batch`` (exact), ``molecules.sdf`` (4 decimals) or None)."""

    config: CampaignConfig
    molecules: MolSet
    seeds: list[int]
    deviation: list[float | None]
    compared_with: list[str | None]


def regenerate_saved(directory: Path, indices: list[int], *, log: Callable[[str], None] = print) -> Regenerated:
    """:func:`regenerate` for the campaign in ``directory``, checked against what it saved there. The
    model file must be the one the campaign used, and the precision must resolve as it did."""
    directory = Path(directory)
    config = load_saved_campaign(directory)
    # what the model and precision were: any finished batch's marker, else the finished run's record
    marker = next(iter(sorted((directory / BATCHES).glob("batch_*.json"))), directory / "run.json")
    saved = json.loads(marker.read_text()) if marker.is_file() else {}
    sampler = _sampler(config)
    if saved.get("model_sha256") and saved["model_sha256"] != file_digest(sampler.model_path):
        raise MoldiffError(f"{sampler.model_path} is not the model file this campaign used (its sha256 began "
                           f"{saved['model_sha256']}, step {saved.get('model_step')}); it changed since")  # fmt: skip
    if saved and saved.get("precision", "fp32") != sampler.precision:
        raise MoldiffError(f"sampling.precision resolves to {sampler.precision} here, but the campaign ran in "
                           f"{saved.get('precision', 'fp32')}; regenerate on a machine of its kind")  # fmt: skip
    molset = regenerate(config, indices, log=log, sampler=sampler)
    deviation, compared_with = _compare_with_saved(directory, config, molset)
    return Regenerated(config, molset, [sampler.seeds[int(i)] for i in molset.ids], deviation, compared_with)


def _compare_with_saved(out: Path, config: CampaignConfig, molset: MolSet) -> tuple[list, list]:
    """Each molecule against its copy in ``out``: the batch file (exact), else molecules.sdf
    (coordinates to 4 decimals: a difference below 1e-4 Å counts as none)."""
    from moldiff.chem.io import read_sdf

    size = config.sampling.batch_size
    batches: dict[int, MolSet] = {}
    written: MolSet | None = None  # molecules.sdf, read only if some batch file is missing
    deviation, compared_with = [], []
    for k, i in enumerate(molset.ids.tolist()):
        b = i // size
        if b not in batches and batch_done(out, b):
            batches[b] = _read_batch(out, b)[0]
        if b not in batches and written is None and (out / "molecules.sdf").is_file():
            written = read_sdf(out / "molecules.sdf")[0]
        if b in batches:
            source = (batches[b], i - batch_range(config, b)[0])
            theirs, where, tolerance = source[0].molecule(source[1]), "batch", 0.0
        elif written is not None and i in written.ids:
            source = (written, int(np.flatnonzero(written.ids == i)[0]))
            theirs, where, tolerance = source[0].molecule(source[1]), "molecules.sdf", 1e-4
        else:
            deviation.append(None)
            compared_with.append(None)
            continue
        mine = molset.molecule(k)
        if theirs[0].shape != mine[0].shape or (theirs[0] != mine[0]).any() or not _same_graph(molset, k, *source):
            deviation.append(math.inf)
        else:
            d = float(np.abs(theirs[1] - mine[1]).max())
            deviation.append(0.0 if d < tolerance else d)
        compared_with.append(where)
    return deviation, compared_with


def _same_graph(mine: MolSet, k: int, theirs: MolSet, j: int) -> bool:
    """Whether molecule ``k`` of ``mine`` has the bonds and formal charges of molecule ``j`` of
    ``theirs``, where ``mine`` carries a graph model's own (always, for a coordinate-only model)."""
    if not mine.has_bonds:
        return True
    if not theirs.has_bonds:
        return False
    charges = (s.charges[s.ptr[m] : s.ptr[m + 1]] for s, m in ((mine, k), (theirs, j)))
    bonds = ({tuple(b) for b in s.molecule_bonds(m).tolist()} for s, m in ((mine, k), (theirs, j)))
    return np.array_equal(*charges) and next(bonds) == next(bonds)


def load_saved_campaign(directory: Path) -> CampaignConfig:
    """The resolved campaign file a campaign directory holds."""
    saved = Path(directory) / CONFIG_NAME
    if not saved.is_file():
        raise MoldiffError(f"{directory} is not a campaign directory (no {CONFIG_NAME})")
    return load_campaign(saved)


def _steering_columns(plan, molset: MolSet, smiles: list) -> dict[str, list]:
    """Targets, predicted properties and scaffold matches (``scaffold_intact`` read from the scored
    ``smiles``); the campaign scores the rest itself. The graph match is ``contains_scaffold`` here:
    ``scaffold`` already names the Murcko scaffold."""
    if not plan.active:
        return {}
    columns = plan.columns(molset)
    if "has_scaffold" in columns:
        columns = {("contains_scaffold" if k == "has_scaffold" else k): v for k, v in columns.items()}
        columns["scaffold_intact"] = plan.scaffold_intact(smiles)
    return columns


def _steering_digest(plan) -> str:
    """Hash of the steering inputs that live outside the campaign file: the predictor file and the
    scaffold's atoms and coordinates (an SDF file, or the SMILES' embedding)."""
    h = hashlib.sha256()
    if plan.predictor is not None:
        from moldiff.models import resolve_predictor  # a built-in predictor's name or a file

        h.update(file_digest(resolve_predictor(plan.record["predictor"])).encode())
    if plan.fragment is not None:
        h.update(np.asarray(plan.fragment.atomic_numbers, dtype=np.int64).tobytes())
        h.update(np.asarray(plan.fragment.positions, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- merging
def merge(dirs: list[Path], out_dir: Path | None = None, *, tracking_uri: str | None = None, track: bool = True,
          log: Callable[[str], None] = print) -> CampaignResult:  # fmt: skip
    """Finish a campaign whose batches were generated in shards (in one or several directories).

    Every directory must hold the same campaign (same resolved config); every batch must be
    present in one of them. The outputs go to ``out_dir`` (default: the first directory).
    """
    if not dirs:
        raise MoldiffError("campaign merge needs at least one campaign directory")
    configs = [load_saved_campaign(Path(d)) for d in dirs]
    config = configs[0]
    for d, other in zip(dirs[1:], configs[1:]):
        if other.fingerprint() != config.fingerprint():
            raise MoldiffError(f"{d} holds a different campaign than {dirs[0]} "
                               f"({_first_difference(config.model_dump(), other.model_dump())} differs)")  # fmt: skip
    out = Path(out_dir) if out_dir is not None else Path(dirs[0])
    if out.resolve() != Path(dirs[0]).resolve():
        config = validate_campaign({**config.model_dump(), "output_dir": str(out)})
        atomic_write_text(out / CONFIG_NAME, dump_yaml(config))
    uri = _tracking_uri(config, tracking_uri) if track and config.tracking.enabled else None
    if uri is not None:
        from moldiff import track as tracking

        tracking.check_reachable(uri)
    return finish(config, out, [Path(d) for d in dirs], tracking_uri=uri)


# --------------------------------------------------------------------------- finishing
def collect(config: CampaignConfig, sources: list[Path]):
    """(all molecules, all scores in index order, batch markers) from the batch files in ``sources``."""
    import pandas as pd

    molsets, frames, metas = [], [], []
    for b in range(config.n_batches):
        where = next((d for d in sources if batch_done(d, b)), None)
        if where is None:
            start, end = batch_range(config, b)
            raise MoldiffError(f"batch {b} of {config.n_batches} (molecules {start}-{end - 1}) is missing from "
                               f"{', '.join(map(str, sources))}: run the shard that holds it or `campaign run --resume`")  # fmt: skip
        molset, frame, meta = _read_batch(where, b)
        if meta["fingerprint"] != config.fingerprint():
            raise MoldiffError(f"batch {b} in {where} belongs to a different campaign")
        molsets.append(molset)
        frames.append(frame)
        metas.append(meta)
    hashes = {m["model_sha256"] for m in metas}
    if len(hashes) > 1:
        raise MoldiffError(f"the batches were generated with different model files ({', '.join(sorted(hashes))})")
    if len({m.get("steering_sha256") for m in metas}) > 1:
        raise MoldiffError("the batches were steered with different predictor or scaffold files; regenerate "
                           "the shards with the same files")  # fmt: skip
    precisions = {m.get("precision", "fp32") for m in metas}
    if len(precisions) > 1:  # sampling.precision: auto on machines of different kinds
        raise MoldiffError(f"the batches were generated in different precisions ({', '.join(sorted(precisions))}); "
                           "set sampling.precision to fp32 or bf16 and regenerate the odd ones")  # fmt: skip
    return MolSet.concat(molsets), pd.concat(frames, ignore_index=True), metas


def finish(config: CampaignConfig, out: Path, sources: list[Path], *, tracking_uri: str | None) -> CampaignResult:
    """Select, compute the set metrics, write every output, log one MLflow run."""
    from moldiff.campaign.reference import load_reference
    from moldiff.campaign.report import write_report
    from moldiff.campaign.selection import select
    from moldiff.chem.scoring import score_smiles, set_metrics
    from moldiff.models import load_generator

    molset, scores, metas = collect(config, sources)
    frame = select(scores, config)
    model_config = None
    if config.scoring.reference == "training" and Path(metas[0]["model"]).exists():
        model_config = load_generator(metas[0]["model"])[1]
    reference = load_reference(config.scoring.reference, model_config, config.scoring.max_neighbours)
    want_fcd = config.scoring.fcd and _fcd_available()
    metrics = set_metrics(frame, reference, fcd=want_fcd)
    if config.scoring.fcd and not want_fcd:
        metrics["fcd"] = None
    metrics.update(_selection_metrics(frame))
    metrics.update(_scaffold_metrics(frame))
    ref_scores = score_smiles(reference.sample[:REFERENCE_SAMPLE])[["smiles", "qed", "sa", "logp", "mw"]]

    _write_molecules(out, molset, frame, config)
    atomic_write_text(out / "metrics.json", json.dumps(_clean(metrics), indent=2) + "\n")
    atomic_write_text(out / "reference_scores.csv", ref_scores.to_csv(index=False))
    tracker = None
    if tracking_uri is not None:
        from moldiff import track

        tracker = track.start(tracking_uri, config.tracking.experiment, config.name)
    record = _provenance(config, metas, reference, tracking_uri, tracker)
    atomic_write_text(out / "run.json", json.dumps(record, indent=2, default=str) + "\n")
    write_report(out)
    if tracker is not None:
        tracker.log_params(config.model_dump(mode="json"))
        tracker.log_metrics({k: v for k, v in _clean(metrics).items() if isinstance(v, (int, float))}, 0)
        tracker.set_tags({"moldiff.kind": "campaign", "moldiff.fingerprint": config.fingerprint()})
        for name in (CONFIG_NAME, *OUTPUTS):
            tracker.log_artifact(out / name)
        tracker.end()
    return CampaignResult(out, metrics, frame, tracker.run_id if tracker else None)


def _fcd_available() -> bool:
    from moldiff.chem import fcd

    return fcd.available()


def _selection_metrics(frame) -> dict:
    kept = frame[frame["status"] == "kept"]
    counts = frame.loc[frame["status"] != "kept", "reason_kind"].value_counts()
    return {
        "n_kept": len(kept),
        "kept_fraction": len(kept) / len(frame) if len(frame) else None,
        "mean_desirability_kept": float(kept["desirability"].mean()) if len(kept) else None,
        "filtered": {str(k): int(v) for k, v in counts.items()},
    }


def _scaffold_metrics(frame) -> dict:
    """Share of generated molecules containing the scaffold: as a graph, and with bond orders (read
    by the EDM rule, and by xyz2mol)."""
    if "contains_scaffold" not in frame:
        return {}
    keys = ("scaffold_exact", "scaffold_intact")  # scaffold_intact: absent from campaigns run before it was kept
    return {"scaffold_containment": float(frame["contains_scaffold"].astype(bool).mean()),
            **{k: float(frame[k].astype(bool).mean()) for k in keys if k in frame}}  # fmt: skip


def _write_molecules(out: Path, molset: MolSet, frame, config: CampaignConfig) -> None:
    from moldiff.chem.io import write_sdf
    from moldiff.chem.scoring import sdf_molecules

    atomic_write_text(out / "molecules.csv", frame.to_csv(index=False))
    columns = [c for c in frame.columns if c != "index"]
    props = {c: ["" if _missing(v) else v for v in frame[c].tolist()] for c in columns}
    names = [f"{config.name}_{i}" for i in frame["index"]]
    write_sdf(out / "molecules.sdf", sdf_molecules(molset), props, names=names)


def _missing(value) -> bool:
    import pandas as pd

    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def _clean(d):
    """NaN -> None, numpy scalars -> Python, recursively (metrics.json is strict JSON)."""
    if isinstance(d, dict):
        return {k: _clean(v) for k, v in d.items()}
    if isinstance(d, (np.integer, np.floating)):
        d = d.item()
    if isinstance(d, float) and not math.isfinite(d):
        return None
    return d


def _provenance(config: CampaignConfig, metas: list[dict], reference, uri: str | None, tracker) -> dict:
    from moldiff.provenance import run_record, versions

    extra = {}
    for pkg in ("posebusters", "fcd"):
        from importlib import metadata

        try:
            extra[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            extra[pkg] = "not installed"
    record = run_record(config.model_dump(mode="json"), config.seed, model=metas[0]["model"],
                        model_sha256=metas[0]["model_sha256"], model_step=metas[0]["model_step"],
                        fingerprint=config.fingerprint(), reference={"name": reference.name, "size": len(reference)},
                        seconds_generate=round(sum(m["seconds_generate"] for m in metas), 1),
                        seconds_score=round(sum(m["seconds_score"] for m in metas), 1),
                        devices=sorted({m["device"] for m in metas}), precision=metas[0].get("precision", "fp32"),
                        guidance=metas[0].get("guidance"),
                        tracking_uri=uri,
                        mlflow_run_id=tracker.run_id if tracker else None)  # fmt: skip
    record["versions"] = {**versions(), **extra}
    return record
