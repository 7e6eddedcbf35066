"""The built-in drug-like model: export its weights, evaluate it on N samples, write its card.

    python bench/drugs_card.py [--export] [--eval 1000] [--steps 50] [--state train_state/drugs_builtin]

--export installs the EMA weights of STATE/last.pt as moldiff/models/drugs.pt. --eval N samples N
molecules with `moldiff sample --model drugs` (default solver, --steps network evaluations per
molecule, seed 0) and scores them like a campaign does: validity by RDKit's xyz2mol
(rdDetermineBonds) with each failure's reason, the EDM protocol's valences beside it, PoseBusters'
`mol` checks, uniqueness, novelty against the training subset, diversity, SNN and FCD. Results go to
bench/results/drugs_eval.json; the card (moldiff/models/drugs.md) is written from the training
history and the latest evaluation.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from model_card import MODELS, ROOT, curve_rows, export_model, training_hours

from moldiff.train.checkpoint import load_checkpoint

EVAL = ROOT / "bench" / "results" / "drugs_eval.json"
FLOOR = 0.50  # validity (xyz2mol) on 1,000 molecules


def evaluate(n: int, steps: int, workers: int = 2, posebusters: str = "full") -> dict:
    from moldiff.campaign.reference import reference_smiles
    from moldiff.chem.io import read_sdf
    from moldiff.chem.reference_set import ReferenceSet
    from moldiff.chem.scoring import score_molset, set_metrics
    from moldiff.models import load_generator

    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["moldiff", "sample", "-n", str(n), "--model", "drugs", "--steps", str(steps), "--seed", "0",
               "-o", f"{tmp}/samples.sdf"]  # fmt: skip
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", *cmd], check=True, stdout=subprocess.DEVNULL)
        sample_seconds = time.perf_counter() - start
        molset, rejects = read_sdf(f"{tmp}/samples.sdf")
    _, config, _ = load_generator("drugs")
    name, smiles = reference_smiles("training", config)
    reference = ReferenceSet.from_smiles(smiles, name)
    start = time.perf_counter()
    frame = score_molset(molset, reference, posebusters=posebusters, workers=workers)
    score_seconds = time.perf_counter() - start
    metrics = set_metrics(frame, reference, fcd=True)
    failures = frame.loc[~frame["valid"].astype(bool), "failure"].value_counts().head(8)
    readable = frame[frame["valid"].astype(bool)]
    pb = {c: round(float(readable[c].dropna().astype(bool).mean()), 3) for c in frame.columns
          if c.startswith("pb_") and str(frame[c].dtype) == "boolean" and readable[c].notna().any()}  # fmt: skip
    return {"command": " ".join(cmd[:-2] + ["-o", "samples.sdf"]), "n": n, "unreadable": len(rejects),
            "sample_seconds": sample_seconds, "score_seconds": score_seconds, "reference": name,
            "posebusters_mode": {"full": "mol", "fast": "mol_fast"}[posebusters],
            "metrics": metrics, "failures": {str(k): int(v) for k, v in failures.items()}, "posebusters": pb}  # fmt: skip


def pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def card(state: dict, evaluation: dict | None) -> str:
    history, config = state["history"], state["config"]
    m, t, d = config["model"], config["train"], config["data"]
    n_params = sum(v.numel() for v in state["ema"].values())
    n_train = int(round(0.9 * (d.get("subset") or 0)))
    epochs = state["step"] * t["batch_size"] / max(n_train, 1)
    lines = [
        "# Built-in model `drugs`",
        "",
        f"EGNN {m['hidden']} × {m['layers']} ({n_params / 1e6:.2f} M parameters), ε-prediction, EDM's polynomial "
        f"schedule, explicit hydrogens, elements {' '.join(d['elements'])}. Trained on drug-like molecules: the "
        f"first {d.get('subset'):,} molecules of the MOSES training split shuffled with seed 0, with RDKit "
        "conformers (ETKDG v3 + MMFF94; `moldiff data prepare moses`), split 90/10 into train/validation. "
        "Started from the built-in QM9 model (its H C N O F weights; S, Cl and Br started at zero) with "
        "`moldiff train --config configs/drugs_builtin.yaml --init qm9`.",
        "",
        "## Training",
        "",
        f"- steps: {state['step']} (batch {t['batch_size']}, about {epochs:.1f} epochs of {n_train:,} molecules)",
        f"- optimiser: AdamW (amsgrad) lr {t['lr']}, warm-up {t['warmup_steps']} steps, clipping {t['grad_clip']}, "
        f"EMA {t['ema_decay']}",
        f"- hardware: {training_hours(history):.1f} h on a 2-core CPU, shared with development work",
        "- continue it: `moldiff train --config configs/drugs_builtin.yaml --resume`",
        "- fine-tune it on a series: `moldiff train --init drugs --data my_series.sdf` (see the README)",
        "",
        "## Learning curve",
        "",
        f"Validation loss on {t['val_molecules']} validation molecules and {t['eval_samples']} molecules sampled with "
        f"{t['eval_steps']} DDPM steps (EDM protocol's stability; its validity is RDKit sanitisation of the "
        "distance-rule bonds, not xyz2mol):",
        "",
        *curve_rows(history),
        "",
        "## Sample quality",
        "",
    ]
    if evaluation is None:
        return "\n".join(lines + ["Not yet evaluated (`python bench/drugs_card.py --eval 1000`)."]) + "\n"
    s = evaluation["metrics"]
    mode = evaluation.get("posebusters_mode", "mol_fast")
    verdict = "met" if s["n"] >= 1000 and s["validity"] >= FLOOR else "NOT met"
    lines += [
        f"`{evaluation['command']}` ({s['n']} molecules; sampling {evaluation['sample_seconds']:.0f} s, scoring with "
        f"PoseBusters `{mode}` {evaluation['score_seconds']:.0f} s), scored by "
        f"`python bench/drugs_card.py --eval {s['n']}`:",
        "",
        f"| validity (xyz2mol) | connected | EDM validity | mol. stability (EDM) | uniqueness | novelty | PoseBusters `{mode}` pass |",
        "|---|---|---|---|---|---|---|",
        "| " + " | ".join(pct(s.get(k)) for k in ("validity", "connected", "edm_validity", "mol_stability", "uniqueness",
                                                 "novelty", "posebusters_pass")) + " |",
        "",
        f"Internal diversity {s.get('internal_diversity') or 0:.3f}, {s.get('n_scaffolds')} scaffolds, SNN "
        f"{s.get('snn') or 0:.3f}, FCD {s['fcd']:.1f} against {evaluation['reference']}." if s.get("fcd") is not None
        else f"Internal diversity {s.get('internal_diversity') or 0:.3f}, SNN {s.get('snn') or 0:.3f}.",
        "",
        f"Floor (validity by xyz2mol ≥ {100 * FLOOR:.0f} % on 1,000 molecules): **{verdict}**.",
        "",
        "Why molecules failed (xyz2mol's reason, most common first):",
        "",
        "| reason | molecules |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in evaluation["failures"].items()),
        "",
        f"PoseBusters `{mode}` checks, pass rate of each over the molecules xyz2mol could read (the energy "
        "check only over those that passed every other check: the rest fail `mol` whatever their energy):",
        "",
        "| check | pass |",
        "|---|---|",
        *(f"| {k.removeprefix('pb_')} | {pct(v)} |" for k, v in evaluation["posebusters"].items()),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state", default=str(ROOT / "train_state" / "drugs_builtin"))
    parser.add_argument("--export", action="store_true", help="install STATE's EMA weights as moldiff/models/drugs.pt")
    parser.add_argument("--eval", type=int, default=0, metavar="N", help="sample and score N molecules")
    parser.add_argument("--steps", type=int, default=50, help="network evaluations per molecule")
    parser.add_argument("--posebusters", choices=("full", "fast"), default="full",
                        help="PoseBusters mol (full, with the energy check) or mol_fast")
    args = parser.parse_args()
    state = load_checkpoint(Path(args.state) / "last.pt")
    if args.export:
        export_model(state, MODELS / "drugs.pt")
    if args.eval:
        record = evaluate(args.eval, args.steps, posebusters=args.posebusters)
        EVAL.write_text(json.dumps(record, indent=2) + "\n")
        print(json.dumps(record["metrics"], indent=1))
        print(f"sampling {record['sample_seconds']:.0f} s, scoring {record['score_seconds']:.0f} s")
    evaluation = json.loads(EVAL.read_text()) if EVAL.exists() else None
    (MODELS / "drugs.md").write_text(card(state, evaluation))
    print(f"wrote {MODELS / 'drugs.md'}" + (f" and {MODELS / 'drugs.pt'}" if args.export else ""))


if __name__ == "__main__":
    main()
