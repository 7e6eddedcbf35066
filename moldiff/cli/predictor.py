"""``moldiff train-predictor``: train a property predictor (noisy, for guidance; or clean, a judge)."""

from __future__ import annotations

from pathlib import Path

import typer

from moldiff.cli.main import app


@app.command("train-predictor")
def train_predictor_command(
    config: Path = typer.Option(None, "--config", "-c", help="YAML predictor config, or the name of a shipped one "
                                "(predictor_qm9, predictor_druglike, judge_qm9)."),
    overrides: list[str] = typer.Option([], "--set", help="Override a config key: --set targets=[qed,logp]"),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT_DIR/predictor_state.pt if it exists."),
) -> None:
    """Train an E(3)-invariant property predictor; writes OUT_DIR/predictor.pt for --guide."""
    from moldiff.config import PredictorConfig, load_config
    from moldiff.provenance import run_record, write_run_record
    from moldiff.train.predictor import train_predictor

    cfg = load_config(config, overrides, PredictorConfig)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_run_record(out / "run.json", run_record(cfg.model_dump(), cfg.train.seed))
    final = train_predictor(cfg, log=lambda m: print(m, flush=True), resume=resume)
    print(f"done: predictor at {out / 'predictor.pt'}; validation MAE "
          + ", ".join(f"{k.removeprefix('val_mae_')}={v:.4g}" for k, v in final.items()))  # fmt: skip
