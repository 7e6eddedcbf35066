"""The built-in drug-like model: export its weights, evaluate it on N samples, write its card.

    python bench/drugs_card.py [--export] [--eval 1000] [--steps 50] [--state train_state/drugs_builtin]

--export installs the EMA weights of STATE/last.pt as moldiff/models/drugs.pt. --eval N samples N
molecules as `moldiff sample --model drugs --types closed-shell` does (default solver, --steps
network evaluations per molecule, seed 0) and scores them like a campaign does: validity by RDKit's
xyz2mol (rdDetermineBonds) with each failure's reason, how many valid molecules are neutral and in
one piece, the EDM protocol's valences beside it, PoseBusters' `mol` checks, uniqueness, novelty
against the training subset, diversity, SNN and FCD; the same trajectories read with plain argmax
types are scored beside them. Results go to bench/results/drugs_eval.json; the card
(moldiff/models/drugs.md) is written from the training history and the latest evaluation.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from model_card import MODELS, ROOT, curve_rows, export_model, hardware

from moldiff.train.checkpoint import load_checkpoint

EVAL = ROOT / "bench" / "results" / "drugs_eval.json"
FLOOR = 0.50  # validity (xyz2mol) on 1,000 molecules


def sample_both_decodings(n: int, steps: int) -> tuple[dict, float]:
    """N molecules of `moldiff sample --model drugs --steps STEPS --seed 0`, with their elements read
    both ways (the trajectories are the same; only the last step's reading differs):
    {"closed-shell": MolSet, "argmax": MolSet}, and the sampling seconds."""
    import torch

    from moldiff import defaults
    from moldiff.cli.display import progress_bar
    from moldiff.data.molset import MolSet
    from moldiff.models import load_generator
    from moldiff.sampling import generate
    from moldiff.solvers import get_solver, solver_times

    torch.set_num_threads(2)
    generator, _, _ = load_generator("drugs")
    argmax_reader = replace(generator, type_decoding="argmax")
    generator.type_decoding = "closed-shell"
    argmax_parts = []
    read_closed_shell = generator.decode

    def decode_both(z, graph, fixed=None):  # the argmax reading of the same final state, on the side
        argmax_parts.append(argmax_reader.decode(z, graph, fixed))
        return read_closed_shell(z, graph, fixed)

    generator.decode = decode_both
    times = solver_times(defaults.SOLVER, steps, generator.denoiser.schedule)
    start = time.perf_counter()
    with progress_bar(n, "sampling") as advance:
        closed, _ = generate(generator, n, seed=0, solver=get_solver(defaults.SOLVER), times=times, batch_size=100,
                             progress=advance)  # fmt: skip
    seconds = time.perf_counter() - start
    argmax = MolSet.concat(argmax_parts)
    argmax.ids = closed.ids
    return {"closed-shell": closed, "argmax": argmax}, seconds


def evaluate(n: int, steps: int, workers: int = 2, posebusters: str = "full") -> dict:
    """Sample N molecules and score them: every set metric for the closed-shell reading (with
    PoseBusters), the xyz2mol validity figures of the argmax reading beside it."""
    from moldiff.campaign.reference import reference_smiles
    from moldiff.chem.reference_set import ReferenceSet
    from moldiff.chem.scoring import score_molset, set_metrics
    from moldiff.models import load_generator

    sets, sample_seconds = sample_both_decodings(n, steps)
    _, config, _ = load_generator("drugs")
    name, smiles = reference_smiles("training", config)
    reference = ReferenceSet.from_smiles(smiles, name)
    start = time.perf_counter()
    frame = score_molset(sets["closed-shell"], reference, posebusters=posebusters, workers=workers)
    score_seconds = time.perf_counter() - start
    metrics = set_metrics(frame, reference, fcd=True)
    plain = set_metrics(score_molset(sets["argmax"], reference, workers=workers), reference)
    failures = frame.loc[~frame["valid"].astype(bool), "failure"].value_counts().head(8)
    readable = frame[frame["valid"].astype(bool)]
    pb = {c: round(float(readable[c].dropna().astype(bool).mean()), 3) for c in frame.columns
          if c.startswith("pb_") and str(frame[c].dtype) == "boolean" and readable[c].notna().any()}  # fmt: skip
    command = f"moldiff sample -n {n} --model drugs --steps {steps} --seed 0 --types closed-shell -o samples.sdf"
    return {"command": command, "n": n, "sample_seconds": sample_seconds, "score_seconds": score_seconds,
            "reference": name, "posebusters_mode": {"full": "mol", "fast": "mol_fast"}[posebusters],
            "metrics": metrics, "argmax": {k: plain[k] for k in ARGMAX_KEYS},
            "failures": {str(k): int(v) for k, v in failures.items()}, "posebusters": pb}  # fmt: skip


ARGMAX_KEYS = ("validity", "neutral", "neutral_connected", "connected", "uniqueness")


def pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def card(state: dict, evaluation: dict | None) -> str:
    history, config = state["history"], state["config"]
    m, t, d = config["model"], config["train"], config["data"]
    n_params = sum(v.numel() for v in state["ema"].values())
    n_train = int(round(0.9 * (d.get("subset") or 0)))
    logged = [row["epoch"] for row in history if "epoch" in row]  # right across batch-size changes
    epochs = logged[-1] if logged else state["step"] * t["batch_size"] / max(n_train, 1)
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
        f"- hardware: {hardware(history, 'a 2-core CPU, shared with development work')}",
        "- continue it: `moldiff train --config configs/drugs_builtin.yaml --resume`",
        "- fine-tune it on a series: `moldiff train --init drugs --data my_series.sdf` (see the README)",
        "",
        "## Learning curve",
        "",
        f"Validation loss on {t['val_molecules']} validation molecules and {t['eval_samples']} molecules sampled with "
        f"{t['eval_steps']} DDPM steps (EDM protocol's stability; its validity is RDKit sanitisation of the "
        "distance-rule bonds, not xyz2mol). The validation noise is drawn batch by batch, so losses compare only "
        "at one batch size (32 up to step 10,199, 64 after), and the GPU rows have no sample columns (that "
        "machine has no RDKit):",
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
    plain = evaluation.get("argmax", {})
    columns = ("validity", "neutral", "neutral_connected", "connected", "edm_validity", "mol_stability", "uniqueness",
               "novelty", "posebusters_pass")  # fmt: skip
    lines += [
        f"`{evaluation['command']}` ({s['n']} molecules; sampling {evaluation['sample_seconds']:.0f} s, scoring with "
        f"PoseBusters `{mode}` {evaluation['score_seconds']:.0f} s), scored by "
        f"`python bench/drugs_card.py --eval {s['n']}`. The same trajectories are read two ways: `argmax` takes "
        "each atom's likeliest element; `closed-shell` (`--types closed-shell`, `moldiff/decoding.py`) then changes "
        "the one cheapest atom of each molecule with an odd electron count. Neutral: valid with no formal charge "
        "(xyz2mol reaches valences by separating charges where no neutral structure fits, and MOSES holds no "
        "charged molecule); connected: valid and in one piece (all as % of all molecules):",
        "",
        f"| types | validity (xyz2mol) | neutral | neutral and connected | connected | EDM validity | mol. stability "
        f"(EDM) | uniqueness | novelty | PoseBusters `{mode}` pass |",
        "|---|---|---|---|---|---|---|---|---|---|",
        "| closed-shell | " + " | ".join(pct(s.get(k)) for k in columns) + " |",
        "| argmax | " + " | ".join(pct(plain.get(k)) for k in columns) + " |",
        "",
        f"Internal diversity {s.get('internal_diversity') or 0:.3f}, {s.get('n_scaffolds')} scaffolds, SNN "
        f"{s.get('snn') or 0:.3f}, FCD {s['fcd']:.1f} against {evaluation['reference']}, mean QED "
        f"{s.get('mean_qed') or 0:.2f}, mean SA {s.get('mean_sa') or 0:.2f} (closed-shell)." if s.get("fcd") is not None
        else f"Internal diversity {s.get('internal_diversity') or 0:.3f}, SNN {s.get('snn') or 0:.3f}.",
        "",
        f"Floor (validity by xyz2mol ≥ {100 * FLOOR:.0f} % on 1,000 molecules): **{verdict}** with closed-shell types "
        f"({pct(s['validity'])} %); {pct(plain.get('validity'))} % with argmax types. The closed-shell reading adds "
        f"{pct(s['validity'] - plain.get('validity', 0))} points of validity, {pct(s['neutral'] - plain.get('neutral', 0))} "
        "of them neutral: the neutral and connected column is the stricter measure of this model.",
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
