"""Write the built-in model's card from its training history and its latest evaluation, and
(with --export) install its EMA weights as the package's built-in model.

    python bench/model_card.py [--state train_state/qm9_builtin] [--export]

Reads STATE/last.pt (history of losses and periodic sample evaluations) and
bench/results/builtin_eval.json (from bench/eval_builtin.py); writes moldiff/models/qm9.md.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path


from moldiff import defaults
from moldiff.train.checkpoint import MODEL, load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "moldiff" / "models"


def training_hours(history: list[dict], device: str = "cpu") -> float:
    """Wall time covered by the history on one kind of device ("cpu" or "cuda"; rows written before
    the device was recorded are CPU rows), ignoring gaps of more than 10 minutes (between sessions)."""
    return sum(b["time"] - a["time"] for a, b in zip(history, history[1:])
               if b["time"] - a["time"] < 600 and b.get("device", "cpu") == device) / 3600  # fmt: skip


def hardware(history: list[dict], cpu: str) -> str:
    """The card's hardware line: hours on ``cpu`` (described), and on a GPU where some were spent."""
    gpu = training_hours(history, "cuda")
    text = f"{training_hours(history):.1f} h on {cpu}"
    return text + (f", and {gpu:.2f} h on one NVIDIA H100 GPU" if gpu else "")


def export_model(state: dict, path: Path) -> None:
    """Install a training state's EMA weights as a model file (no optimiser, no history)."""
    payload = {"kind": MODEL, "config": state["config"], "ema": state["ema"], "step": state["step"],
               "atom_count_hist": state["atom_count_hist"], "history": []}  # fmt: skip
    save_checkpoint(path, payload)


def lr_changes(history: list[dict]) -> str:
    """"5e-4 from step 100, 2.5e-4 from step 35,300": the learning rates the history logged (rows
    written before it logged them say nothing)."""
    parts, last = [], None
    for row in history:
        if "lr" in row and row["lr"] != last:
            last = row["lr"]
            parts.append(f"{last:g} from step {row['step']:,}")
    return ", ".join(parts)


def curve_rows(history: list[dict]) -> list[str]:
    rows = ["| step | epoch | val loss | atom stab. | mol stab. | validity |", "|---|---|---|---|---|---|"]
    last_epoch = 0.0
    for row in history:
        last_epoch = row.get("epoch", last_epoch)
        if "val_loss" in row:
            pct = lambda k: f"{100 * row[k]:.1f}" if k in row else "–"  # noqa: E731
            rows.append(f"| {row['step']} | {last_epoch:.2f} | {row['val_loss']:.4f} | {pct('sample_atom_stability')} "
                        f"| {pct('sample_mol_stability')} | {pct('sample_validity')} |")  # fmt: skip
    return rows


def results_section(name: str, heading: str, intro: str) -> list[str]:
    """A benchmark's markdown table (bench/results/NAME.md) under ``heading``, if it was run."""
    path = ROOT / "bench" / "results" / f"{name}.md"
    if not path.exists():
        return []
    table = [line for line in path.read_text().splitlines() if not line.startswith("### ")]
    while table and not table[0].strip():
        table.pop(0)
    return ["", heading, "", intro, "", *table]


def floor_verdict(summary: dict) -> str:
    if summary["n"] < 1000:
        return f"not yet confirmed (only {summary['n']} molecules)"
    met = summary["atom_stability"] >= 0.85 and summary["validity"] >= 0.50
    return "met" if met else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state", default=str(ROOT / "train_state" / "qm9_builtin"))
    parser.add_argument("--export", action="store_true", help="copy the EMA weights into moldiff/models/qm9.pt")
    args = parser.parse_args()
    state = load_checkpoint(Path(args.state) / "last.pt")
    history, config = state["history"], state["config"]
    if args.export:
        export_model(state, MODELS / "qm9.pt")
    n_params = sum(v.numel() for v in state["ema"].values())
    epochs = state["step"] * config["train"]["batch_size"] / 100_000
    eval_path = ROOT / "bench" / "results" / "builtin_eval.json"
    evaluation = json.loads(eval_path.read_text()) if eval_path.exists() else None
    m = config["model"]
    logged_lr = lr_changes(history)
    lines = [
        "# Built-in model `qm9`",
        "",
        f"EGNN {m['hidden']} × {m['layers']} ({n_params / 1e6:.2f} M parameters, attention "
        f"{'on' if m['attention'] else 'off'}), ε-prediction with L_simple, EDM's polynomial schedule, "
        "scaled one-hot atom types (×0.25). Trained on QM9's EDM training split (100,000 molecules, "
        f"explicit hydrogens) with `configs/qm9_builtin.yaml`; sampled by default with `{defaults.SOLVER}` at "
        f"{defaults.STEPS} network evaluations per molecule (the choice is measured below).",
        "",
        "## Training",
        "",
        f"- steps: {state['step']} (batch {config['train']['batch_size']}, {epochs:.2f} epochs)",
        f"- optimiser: AdamW (amsgrad) lr {config['train']['lr']}, warm-up {config['train']['warmup_steps']} steps, "
        f"gradient clipping {config['train']['grad_clip']}, EMA {config['train']['ema_decay']}"
        + (f"; logged learning rates: {logged_lr} (earlier: see the config's comment)" if logged_lr else ""),
        f"- hardware: {hardware(history, f'a 2-core CPU machine ({platform.machine()})')}, "
        "shared with development work (throughput varied from 15 to 170 molecules/s)",
        "- continue it: `moldiff train --config configs/qm9_builtin.yaml --resume`",
        "",
        "## Learning curve",
        "",
        "Periodic evaluations during training: validation loss on 512 fixed validation molecules (EMA "
        "weights, fixed noise) and 100 molecules sampled with 500 DDPM steps, EDM protocol.",
        "",
        *curve_rows(history),
        "",
        "## Sample quality",
        "",
    ]
    if evaluation is not None:
        s = evaluation["summary"]
        lines += [
            f"`{evaluation['command']}` ({s['n']} molecules, {evaluation['seconds']:.0f} s), EDM protocol:",
            "",
            "| atom stab. | mol stab. | validity | uniqueness | valid × unique | novelty |",
            "|---|---|---|---|---|---|",
            "| " + " | ".join(f"{100 * s[k]:.1f}" if s.get(k) is not None else "–" for k in
                             ("atom_stability", "mol_stability", "validity", "uniqueness", "valid_x_unique",
                              "novelty")) + " |",  # fmt: skip
            "",
            "Measured by `python bench/eval_builtin.py`. Floor for this model (on 1,000 molecules from the "
            f"default command): atom stability ≥ 85 %, validity ≥ 50 % — {floor_verdict(s)}.",
        ]
    else:
        lines.append("Not yet evaluated on 1,000 molecules (`python bench/eval_builtin.py`).")
    lines += results_section("solvers", "## Solvers: quality against cost",
                             "`python bench/bench_solvers.py` (the default sampler was chosen from this table):")
    lines += results_section("views", "## Which view to train",
                             "The same recipe trained in each view for the same number of steps (equal CPU), "
                             "`python bench/bench_views.py`:")
    (MODELS / "qm9.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {MODELS / 'qm9.md'}" + (f" and {MODELS / 'qm9.pt'}" if args.export else ""))


if __name__ == "__main__":
    main()
