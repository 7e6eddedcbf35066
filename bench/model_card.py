"""Model cards of the built-in models: shared helpers, and the card of `qm9-edm`.

    python bench/model_card.py                      # write moldiff/models/qm9_edm.md
    python bench/model_card.py --export DIR         # first install DIR/last.pt's EMA weights as qm9_edm.pt
    python bench/model_card.py --curve qm9-scaffold # print a built-in model's learning-curve table

A card is written from the model file itself (its config, step and learning curve, which the file
carries) and from the benchmark results in bench/results/. --export turns a training state into the
shipped model file: its EMA weights with the step, data position and learning curve a continuation
(`moldiff train --config NAME --resume`) needs, without the optimizer moments.
bench/drugs_card.py and bench/flowmap_card.py write the cards of `drugs` and `qm9-fast` the same way.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from moldiff import defaults
from moldiff.models import BUILTIN, BUILTIN_PREDICTORS
from moldiff.train.checkpoint import TRAINING_STATE, load_checkpoint, save_checkpoint
from moldiff.train.continuation import model_file_of

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "moldiff" / "models"
RESULTS = ROOT / "bench" / "results"
SESSION_GAP = 600  # seconds: a longer pause between two history rows is time the training was not running


def load_model(name: str) -> dict:
    """The payload of a built-in model or predictor, by name."""
    return load_checkpoint({**BUILTIN, **BUILTIN_PREDICTORS}[name], ("moldiff-model", "moldiff-predictor"))


def export_model(state_dir: Path, path: Path) -> None:
    """Install ``state_dir/last.pt`` as the model file ``path`` (EMA weights and training position)."""
    save_checkpoint(path, model_file_of(load_checkpoint(Path(state_dir) / "last.pt", (TRAINING_STATE,))))


def pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def rate(value: float) -> str:
    """A learning rate as configs write it: 2.5e-4."""
    return f"{value:.1e}".replace("e-0", "e-").replace(".0e", "e")


def training_hours(history: list[dict], device: str = "cpu") -> float:
    """Wall time covered by the history on one kind of device ("cpu" or "cuda"; rows written before
    the device was recorded are CPU rows), without the pauses between training runs."""
    return sum(b["time"] - a["time"] for a, b in zip(history, history[1:])
               if b["time"] - a["time"] < SESSION_GAP and b.get("device", "cpu") == device) / 3600  # fmt: skip


def hardware(history: list[dict], cpu: str) -> str:
    """The card's hardware line: hours on ``cpu`` (described), and on a GPU where some were spent."""
    gpu = training_hours(history, "cuda")
    text = f"{training_hours(history):.1f} h on {cpu}"
    return text + (f", and {gpu:.2f} h on one NVIDIA H100 GPU" if gpu else "")


def lr_changes(history: list[dict]) -> str:
    """"5e-4 from step 100, 2.5e-4 from step 35,300": the learning rates the history logged."""
    parts, last = [], None
    for row in history:
        if "lr" in row and row["lr"] != last:
            last = row["lr"]
            parts.append(f"{last:g} from step {row['step']:,}")
    return ", ".join(parts)


def merged_rows(history: list[dict]) -> list[dict]:
    """One row per logged step (a training-loss row and an evaluation row of the same step merged),
    each with ``hours``: the wall-clock training hours up to it (pauses between runs left out)."""
    rows: dict[int, dict] = {}
    hours, previous = 0.0, None
    for row in history:
        if previous is not None and 0 <= row["time"] - previous < SESSION_GAP:
            hours += (row["time"] - previous) / 3600
        previous = row["time"]
        rows.setdefault(row["step"], {}).update(row, hours=hours)
    return [rows[step] for step in sorted(rows)]


def curve_table(history: list[dict], columns: list[tuple[str, str, object]], *, every: int | None = None,
                molecules_per_epoch: float | None = None, batch_size: int | None = None) -> list[str]:  # fmt: skip
    """A learning-curve table: step, epochs, training hours and ``columns`` (header, history key,
    format function) at every evaluation row (rows holding a column's key), or with ``every`` at
    every logged step that is a multiple of it. Epochs are the trainer's logged ones, or else
    step × batch / molecules per epoch."""
    keys = [key for _, key, _ in columns]
    table = ["| step | epochs | hours | " + " | ".join(h for h, _, _ in columns) + " |",
             "|---" * (3 + len(columns)) + "|"]  # fmt: skip
    epoch = None
    for row in merged_rows(history):
        epoch = row.get("epoch", epoch)
        if not any(k in row for k in keys) or (every and row["step"] % every):
            continue
        epochs = epoch if epoch is not None else (row["step"] * batch_size / molecules_per_epoch
                                                 if molecules_per_epoch and batch_size else None)  # fmt: skip
        cells = [fmt(row[key]) if key in row else "–" for _, key, fmt in columns]
        table.append(f"| {row['step']:,} | {'–' if epochs is None else f'{epochs:.2f}'} | {row['hours']:.1f} | "
                     + " | ".join(cells) + " |")  # fmt: skip
    return table


def results_table(name: str) -> list[str]:
    """The first markdown table of bench/results/NAME.md, if that benchmark was run."""
    path = RESULTS / f"{name}.md"
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), len(lines))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return lines[start:end]


def continue_section(config: str, model: str) -> list[str]:
    """How to train the model on: from a local training state, or from this file on a new machine."""
    return [
        "## Continue training",
        "",
        "```bash",
        f"moldiff train --config {config} --resume",
        "```",
        "",
        f"The config's `train.continues: {model}` makes this work on any machine. Where the config's `out_dir` "
        "holds a training state (`last.pt`) the run resumes it exactly; where it holds none, the run continues "
        "from this model file, which records the step (and so the place in the learning-rate schedule), the "
        "epoch and batch position of the data order, the noise generator and the learning curve above. The "
        "optimizer moments are not in the file and restart, as the training log says.",
    ]


def any_curve(payload: dict, every: int | None = None) -> list[str]:
    """The learning curve of any model file: its evaluation metrics, or else its training loss.
    Predictors log no epochs: theirs count the molecules of their training half (or split)."""
    history, config = payload["history"], payload["config"]
    keys = [k for k in dict.fromkeys(k for row in history for k in row) if k.startswith(("val_", "sample_"))]
    columns = [(k.removeprefix("val_"), k, "{:.4g}".format) for k in keys] or [("train loss", "loss", "{:.4f}".format)]
    molecules = 50_000 if config.get("data", {}).get("half") else 100_000  # QM9's training split or one half
    return curve_table(history, columns, every=every, molecules_per_epoch=molecules,
                       batch_size=config["train"]["batch_size"])  # fmt: skip


CURVE_QM9 = [("val loss", "val_loss", "{:.4f}".format), ("atom stab. %", "sample_atom_stability", pct),
             ("mol stab. %", "sample_mol_stability", pct), ("validity %", "sample_validity", pct)]  # fmt: skip


def qm9_card(payload: dict, evaluation: dict | None) -> str:
    history, config = payload["history"], payload["config"]
    m, t = config["model"], config["train"]
    n_params = sum(v.numel() for v in payload["ema"].values())
    epochs = payload["epoch"] + payload["cursor"] * t["batch_size"] / 100_000
    lines = [
        "# Built-in model `qm9-edm`",
        "",
        "The coordinate-only QM9 model: an E(3)-equivariant diffusion model of small organic molecules "
        f"in 3D with explicit hydrogens (elements {' '.join(config['data']['elements'])}, up to 9 heavy atoms), "
        f"an EGNN {m['hidden']} × {m['layers']} ({n_params / 1e6:.2f} M parameters, attention) predicting the "
        "noise (ε) under EDM's polynomial schedule, with one-hot atom types scaled by "
        f"{config['diffusion']['type_scale']}. It generates atoms and their types; `moldiff sample` reads "
        "the bonds from the distances afterwards. The default model, `qm9`, is a graph model of the same data "
        "that writes its own bonds and formal charges.",
        "",
        "## Intended use",
        "",
        "```bash",
        "moldiff sample --model qm9-edm -n 100 -o samples.sdf              # the default sampler",
        "moldiff sample --model qm9-edm -n 100 --steps 50 -o samples.sdf   # half the network calls",
        "moldiff train --init qm9-edm --data my_molecules.sdf              # a starting point for your own set",
        "```",
        "",
        f"Sampled by default with `{defaults.SOLVER}` at {defaults.STEPS} network evaluations per molecule. It is "
        "the starting point of `qm9-fast`, `qm9-cond` and `qm9-scaffold`.",
        "",
        "## Data",
        "",
        "QM9's training split as EDM draws it (100,000 of 130,831 molecules, from the `qm9pack` package "
        "installed with moldiff), with explicit hydrogens; validation on 512 fixed molecules of its validation "
        "split.",
        "",
        "## Training",
        "",
        "- recipe: `moldiff/configs/qm9_builtin.yaml` (`moldiff train --config qm9_builtin`)",
        f"- {payload['step']:,} steps of batch {t['batch_size']}: {epochs:.1f} epochs",
        f"- AdamW (amsgrad), learning rate 5e-4 to step 35,233, then {rate(t['lr'])}; warm-up {t['warmup_steps']} "
        f"steps, gradient clipping {t['grad_clip']}, EMA {t['ema_decay']} (the weights here are the EMA's)",
        f"- {hardware(history, 'a 2-core CPU (x86_64) shared with other work')}; bfloat16 matrix products where "
        "the CPU supports them (`train.precision: auto`)",
        "",
        "## Evaluation",
        "",
    ]
    if evaluation is not None:
        s = evaluation["summary"]
        lines += [
            f"`python bench/eval_builtin.py` runs `moldiff sample -n {s['n']} --model qm9-edm` "
            f"({evaluation['seconds']:.0f} s on the 2-core CPU) and scores the molecules by the EDM protocol "
            "(bonds from distances, valences checked per atom):",
            "",
            "| atom stab. % | mol stab. % | validity % | uniqueness % | valid × unique % | novelty % |",
            "|---|---|---|---|---|---|",
            "| " + " | ".join(pct(s.get(k)) for k in ("atom_stability", "mol_stability", "validity", "uniqueness",
                                                      "valid_x_unique", "novelty")) + " |",  # fmt: skip
            "",
            "EDM, trained far longer, reports 98.7 / 82.0 / 91.9 / 90.7 % (atom stability, molecule stability, "
            "validity, valid × unique) with 1,000 sampling steps.",
        ]
    sampler = results_table("solvers_ode_sde_step52056")
    if sampler:
        lines += [
            "",
            "The sampler at 100 network calls, probability-flow ODE against SDE (`python bench/bench_solvers.py "
            "--model qm9-edm --solvers dpmpp-2m dpmpp-2m-sde --nfe 100 --n 200 --reference ddpm:10 --reference-n 20`; "
            "the reference row is a 20-molecule sanity check):",
            "",
            *sampler,
            "",
            "`python bench/bench_solvers.py` compares every sampler at 10 to 1,000 network calls "
            "(`bench/results/solvers.md`, measured on this model at step 19,603): `dpmpp-2m-sde` gave the highest "
            "molecule stability at every budget from 10 to 100 calls.",
        ]
    lines += [
        "",
        "## Learning curve",
        "",
        "At each evaluation: validation loss on 512 fixed validation molecules (EMA weights, fixed noise), and "
        "100 molecules sampled with 500 DDPM steps, EDM protocol. Hours: wall-clock training time.",
        "",
        *curve_table(history, CURVE_QM9),
        "",
        "## Limitations",
        "",
        "- QM9 chemistry only: at most 9 heavy atoms of C, N, O and F. For drug-like molecules use `drugs`.",
        "- Its bonds are read from distances after sampling; `qm9` generates them with the coordinates and "
        "writes more valid molecules in one piece on the same seeds (its card compares the two).",
        "- About a third of the molecules have an atom with a wrong valence (molecule stability above); "
        "`moldiff sample --steer valid` keeps valid molecules at a few times the cost.",
        "- Trained for tens of epochs on a CPU, where published models train for thousands on GPUs.",
        "",
        *continue_section("qm9_builtin", "qm9-edm"),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export", type=Path, metavar="DIR", help="install DIR/last.pt as moldiff/models/qm9_edm.pt first")
    parser.add_argument("--curve", metavar="NAME", help="print the learning-curve table of a built-in model and exit")
    parser.add_argument("--every", type=int, default=None, help="--curve: only steps that are multiples of this")
    args = parser.parse_args()
    if args.curve:
        print("\n".join(any_curve(load_model(args.curve), args.every)))
        return
    if args.export:
        export_model(args.export, MODELS / "qm9_edm.pt")
    eval_path = RESULTS / "builtin_eval.json"
    evaluation = json.loads(eval_path.read_text()) if eval_path.exists() else None
    (MODELS / "qm9_edm.md").write_text(qm9_card(load_model("qm9-edm"), evaluation))
    print(f"wrote {MODELS / 'qm9_edm.md'}" + (f" and {MODELS / 'qm9_edm.pt'}" if args.export else ""))


if __name__ == "__main__":
    main()
