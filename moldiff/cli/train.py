"""``moldiff train``: train a model from a config (also under ``torchrun`` for several processes)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from moldiff.cli.main import app
from moldiff.errors import MoldiffError


@app.command()
def train(
    config: Path = typer.Option(None, "--config", "-c", help="YAML run config, or the name of a shipped one (moldiff config list); default: the defaults."),
    overrides: list[str] = typer.Option([], "--set", help="Override a config key: --set train.lr=1e-4"),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT_DIR/last.pt, or where there is none from the model "
                                "the config's train.continues names (a built-in model's recorded step and data position)."),
    init: str = typer.Option(None, "--init", help="Start from a model's weights (a built-in name or a file)."),
    data: str = typer.Option(None, "--data", help="Train on this set: SDF, SMILES (.smi/.csv), .npz, qm9 or moses."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
    no_track: bool = typer.Option(False, "--no-track", help="Do not log to MLflow."),
) -> None:
    """Train a diffusion model, or a flow map when the config has a flowmap section; checkpoints go to
    the config's out_dir (last.pt, model.pt). With --init and no --config, fine-tune: the init
    model's config with fine-tuning defaults (moldiff/train/finetune.py), e.g.
    `moldiff train --init drugs --data my_series.sdf`."""
    from moldiff.config import is_flowmap_config

    if is_flowmap_config(config, overrides):
        _train_flowmap(config, overrides, resume, init, tracking_uri, no_track)
        return
    from moldiff.config import load_config
    from moldiff.models import resolve_model
    from moldiff.train.loop import train as run_training

    init_path = str(resolve_model(init)) if init else None
    if data is not None:
        overrides = [*overrides, f"data.dataset={data}"]
    if config is None and init_path is not None:
        from moldiff.train.checkpoint import load_checkpoint
        from moldiff.train.finetune import finetune_config

        payload = load_checkpoint(init_path)
        if "config" not in payload or "flowmap" in payload["config"]:
            raise MoldiffError(f"--init {init}: fine-tuning needs a diffusion model; give --config for other runs")
        cfg = finetune_config(payload["config"], data, overrides)
    else:
        cfg = load_config(config, overrides)
    _run_tracked(cfg, "train", lambda tracker, log: run_training(cfg, resume=resume, tracker=tracker,
                                                            init=init_path, log=log),
                 tracking_uri=tracking_uri, no_track=no_track, init=init_path, resume=resume)  # fmt: skip


@app.command("train-flowmap")
def train_flowmap(
    config: Path = typer.Option(None, "--config", "-c", help="YAML flow-map run config (a run config + flowmap section), or a shipped one's name."),
    overrides: list[str] = typer.Option([], "--set", help="Override a config key: --set flowmap.objective=meanflow"),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT_DIR/last.pt, or where there is none from the model "
                                "the config's train.continues names (a built-in model's recorded step and data position)."),
    init: str = typer.Option(None, "--init", help="Start from a model's weights, e.g. the teacher's (a built-in name or a file)."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
    no_track: bool = typer.Option(False, "--no-track", help="Do not log to MLflow."),
) -> None:
    """Train a few-step flow map: distilled from flowmap.teacher, or MeanFlow from data."""
    _train_flowmap(config, overrides, resume, init, tracking_uri, no_track)


def _train_flowmap(config, overrides, resume: bool, init, tracking_uri, no_track: bool) -> None:
    from moldiff.config import FlowMapRunConfig, load_config
    from moldiff.flowmap.train import train_flowmap as run_training
    from moldiff.models import resolve_model

    cfg = load_config(config, overrides, FlowMapRunConfig)
    init_path = str(resolve_model(init)) if init else None
    _run_tracked(cfg, "train-flowmap", lambda tracker, log: run_training(cfg, resume=resume, tracker=tracker,
                                                                    init=init_path, log=log),
                 tracking_uri=tracking_uri, no_track=no_track, init=init_path, resume=resume)  # fmt: skip


def _run_tracked(cfg, command: str, run, *, tracking_uri, no_track: bool, init, resume: bool) -> None:
    """Shared by the training commands: check tracking before any work, write the run record,
    call ``run(tracker, log)``, log artifacts and the final status. Only rank 0 tracks and prints."""
    from moldiff import track
    from moldiff.provenance import run_record, write_run_record

    out = Path(cfg.out_dir)
    is_main = int(os.environ.get("RANK", "0")) == 0
    tracker = None
    if is_main:
        if cfg.tracking.enabled and not no_track:  # fail on an unreachable server before any work
            tracker = track.start(track.resolve_uri(tracking_uri, cfg.tracking.uri), cfg.tracking.experiment, cfg.name)
        out.mkdir(parents=True, exist_ok=True)
        record = run_record(cfg.model_dump(), cfg.train.seed, init=init, resume=resume,
                            world_size=int(os.environ.get("WORLD_SIZE", "1")))  # fmt: skip
        write_run_record(out / "run.json", record)
        if tracker is not None:
            tracker.log_params(cfg.model_dump())
            tracker.set_tags({"moldiff.command": command, "moldiff.out_dir": str(out.resolve())})
            tracker.log_dict(record, "run.json")
            print(f"tracking run {tracker.run_id} at {tracker.uri}")
    status = "FAILED"
    try:
        final = run(tracker, (lambda m: print(m, flush=True)) if is_main else (lambda m: None))
        status = "FINISHED"
    finally:
        if tracker is not None:
            for name in ("model.pt", "metrics.jsonl", "run.json"):
                if (out / name).exists():
                    tracker.log_artifact(out / name)
            tracker.end(status)
    if is_main:
        print(f"done: model at {out / 'model.pt'}, training state at {out / 'last.pt'}")
        if final:
            print("last metrics: " + ", ".join(f"{k}={v:.4g}" for k, v in final.items()
                                              if isinstance(v, float) and k != "time"))  # fmt: skip
