"""The built-in drug-like model: export its weights, evaluate it on N samples, write its card.

    python bench/drugs_card.py [--export DIR] [--eval 1000] [--steps 50]

--export installs DIR/last.pt (a training state of moldiff/configs/drugs_builtin.yaml) as
moldiff/models/drugs.pt: its EMA weights and training position. --eval N samples N
molecules as `moldiff sample --model drugs --types closed-shell` does (default solver, --steps
network evaluations per molecule, seed 0) and scores them like a campaign does: validity by RDKit's
xyz2mol (rdDetermineBonds) with each failure's reason, how many valid molecules are neutral and in
one piece, the EDM protocol's valences beside it, PoseBusters' `mol` checks, uniqueness, novelty
against the training subset, diversity, SNN and FCD; the same trajectories read with plain argmax
types are scored beside them. Results go to bench/results/drugs_eval.json; the card
(moldiff/models/drugs.md) is written from the model file (config, learning curve) and the latest
evaluation.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from model_card import MODELS, ROOT, continue_section, curve_table, export_model, hardware, load_model, pct, rate

EVAL = ROOT / "bench" / "results" / "drugs_eval.json"


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


CURVE = [("val loss", "val_loss", "{:.4f}".format), ("atom stab. %", "sample_atom_stability", pct),
         ("mol stab. %", "sample_mol_stability", pct), ("EDM validity %", "sample_validity", pct)]  # fmt: skip


def card(payload: dict, evaluation: dict | None) -> str:
    history, config = payload["history"], payload["config"]
    m, t, d = config["model"], config["train"], config["data"]
    n_params = sum(v.numel() for v in payload["ema"].values())
    n_train = int(round(0.9 * (d.get("subset") or 0)))
    epochs = payload["epoch"] + payload["cursor"] * t["batch_size"] / max(n_train, 1)
    lines = [
        "# Built-in model `drugs`",
        "",
        f"A diffusion model of drug-like molecules in 3D with explicit hydrogens (elements {' '.join(d['elements'])}): "
        f"an EGNN {m['hidden']} × {m['layers']} ({n_params / 1e6:.2f} M parameters) predicting the noise under EDM's "
        "polynomial schedule, started from `qm9-edm` and trained on MOSES molecules with RDKit conformers.",
        "",
        "## Intended use",
        "",
        "```bash",
        "moldiff sample --model drugs --types closed-shell -n 100 -o drugs.sdf",
        "moldiff train --init drugs --data my_series.sdf        # fine-tune on a chemical series",
        "```",
        "",
        "`--types closed-shell` reads each molecule's elements so its electron count is even (see the evaluation "
        "below); `drugs-scaffold` grows molecules around a given scaffold.",
        "",
        "## Data",
        "",
        f"The first {d.get('subset'):,} molecules of the MOSES training split (shuffled with seed 0), each with an "
        "RDKit conformer (ETKDG v3, then MMFF94), split 90/10 into training and validation "
        f"({n_train:,} training molecules). `moldiff data prepare moses` builds and caches the set on first use.",
        "",
        "## Training",
        "",
        "- recipe: `moldiff/configs/drugs_builtin.yaml`, started from `qm9-edm` (`moldiff train --config drugs_builtin "
        "--init qm9-edm`: its H C N O F weights carry over, S, Cl and Br start at zero)",
        f"- {payload['step']:,} steps: batch 32 to step 10,199, then 64; {epochs:.1f} epochs",
        f"- AdamW (amsgrad), learning rate 3e-4 to step 8,048, 1e-4 to step 16,750, then {rate(t['lr'])}; warm-up "
        f"{t['warmup_steps']} steps, gradient clipping {t['grad_clip']}, EMA {t['ema_decay']}",
        f"- {hardware(history, 'a 2-core CPU')}",
        "",
        "## Evaluation",
        "",
    ]
    lines += evaluation_lines(evaluation) if evaluation else ["Not yet evaluated (`python bench/drugs_card.py --eval 1000`)."]
    lines += [
        "",
        "## Learning curve",
        "",
        f"At each evaluation: validation loss on {t['val_molecules']} validation molecules, and {t['eval_samples']} "
        f"molecules sampled with {t['eval_steps']} DDPM steps (EDM protocol; its validity is RDKit sanitisation of "
        "the distance-rule bonds, not xyz2mol). The validation noise is drawn batch by batch, so losses compare "
        "only at one batch size (32 up to step 10,199, 64 after); the rows from step 12,000 were trained on a GPU "
        "machine without RDKit, so they have no sample columns. Hours: wall-clock training time.",
        "",
        *curve_table(history, CURVE),
        "",
        "## Limitations",
        "",
        "- Many molecules come out in several pieces or need charge separation to be read: only the \"neutral and "
        "connected\" share above is ordinary, single-piece, uncharged chemistry.",
        f"- Trained on {n_train:,} molecules with force-field conformers, not the full MOSES set or quantum-chemical "
        "geometries; bond lengths and ring geometry follow MMFF94.",
        "- Elements outside H C N O F S Cl Br (P, I, B, metals) cannot be generated.",
        "",
        *continue_section("drugs_builtin", "drugs"),
    ]
    return "\n".join(lines) + "\n"


def evaluation_lines(evaluation: dict) -> list[str]:
    """The evaluation section: the closed-shell and argmax readings, failure reasons, PoseBusters checks."""
    s = evaluation["metrics"]
    mode = evaluation.get("posebusters_mode", "mol_fast")
    plain = evaluation.get("argmax", {})
    columns = ("validity", "neutral", "neutral_connected", "connected", "edm_validity", "mol_stability", "uniqueness",
               "novelty", "posebusters_pass")  # fmt: skip
    return [
        f"`python bench/drugs_card.py --eval {s['n']}` samples `{evaluation['command']}` ({s['n']} molecules; "
        f"sampling {evaluation['sample_seconds']:.0f} s and scoring with PoseBusters `{mode}` "
        f"{evaluation['score_seconds']:.0f} s on the 2-core CPU). The same trajectories are read two ways: "
        "`argmax` takes each atom's likeliest element; `closed-shell` (`--types closed-shell`) then changes the one "
        "cheapest atom of each molecule with an odd electron count. Validity is RDKit's xyz2mol; neutral: valid "
        "with no formal charge (MOSES holds no charged molecule); connected: valid and in one piece (all as % of "
        "all molecules):",
        "",
        f"| types | validity (xyz2mol) | neutral | neutral and connected | connected | EDM validity | mol. stability "
        f"(EDM) | uniqueness | novelty | PoseBusters `{mode}` pass |",
        "|---|---|---|---|---|---|---|---|---|---|",
        "| closed-shell | " + " | ".join(pct(s.get(k)) for k in columns) + " |",
        "| argmax | " + " | ".join(pct(plain.get(k)) for k in columns) + " |",
        "",
        (f"Internal diversity {s.get('internal_diversity') or 0:.3f}, {s.get('n_scaffolds')} scaffolds, SNN "
         f"{s.get('snn') or 0:.3f}, FCD {s['fcd']:.1f} against {evaluation['reference']}, mean QED "
         f"{s.get('mean_qed') or 0:.2f}, mean SA {s.get('mean_sa') or 0:.2f} (closed-shell)." if s.get("fcd") is not None
         else f"Internal diversity {s.get('internal_diversity') or 0:.3f}, SNN {s.get('snn') or 0:.3f}."),
        "",
        "Why molecules failed (xyz2mol's reason, most common first):",
        "",
        "| reason | molecules |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in evaluation["failures"].items()),
        "",
        f"PoseBusters `{mode}` checks, pass rate of each over the molecules xyz2mol could read (the energy check "
        "only over those that passed every other check):",
        "",
        "| check | pass % |",
        "|---|---|",
        *(f"| {k.removeprefix('pb_')} | {pct(v)} |" for k, v in evaluation["posebusters"].items()),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--export", type=Path, metavar="DIR", help="install DIR/last.pt as moldiff/models/drugs.pt first")
    parser.add_argument("--eval", type=int, default=0, metavar="N", help="sample and score N molecules")
    parser.add_argument("--steps", type=int, default=50, help="network evaluations per molecule")
    parser.add_argument("--posebusters", choices=("full", "fast"), default="full",
                        help="PoseBusters mol (full, with the energy check) or mol_fast")
    args = parser.parse_args()
    if args.export:
        export_model(args.export, MODELS / "drugs.pt")
    if args.eval:
        record = evaluate(args.eval, args.steps, posebusters=args.posebusters)
        EVAL.write_text(json.dumps(record, indent=2) + "\n")
        print(json.dumps(record["metrics"], indent=1))
        print(f"sampling {record['sample_seconds']:.0f} s, scoring {record['score_seconds']:.0f} s")
    evaluation = json.loads(EVAL.read_text()) if EVAL.exists() else None
    (MODELS / "drugs.md").write_text(card(load_model("drugs"), evaluation))
    print(f"wrote {MODELS / 'drugs.md'}" + (f" and {MODELS / 'drugs.pt'}" if args.export else ""))


if __name__ == "__main__":
    main()
