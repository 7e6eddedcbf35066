"""The example campaign around its scaffold: how many molecules come out valid, in one piece, with
the scaffold intact, and kept by the example's filters, for one or more models, with and without
reward steering. Every row runs ``moldiff/configs/campaigns/example.yaml`` with the scaffold on, the same
seeds, PoseBusters and FCD off (they do not change what is kept) and no MLflow run.

    python bench/bench_scaffold_campaign.py --model drugs-scaffold --model drugs --n 100 \
        --particles 0 --particles 4 --precision bf16 --out bench/results/scaffold_campaign
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from moldiff.campaign.config import load_campaign
from moldiff.campaign.runner import run_campaign

EXAMPLE = Path(__file__).parents[1] / "moldiff" / "configs" / "campaigns" / "example.yaml"
COLUMNS = (("validity", "xyz2mol valid"), ("edm_validity", "EDM valid"), ("connected", "valid & one piece"),
           ("neutral_connected", "neutral & one piece"), ("scaffold_intact", "scaffold intact"))  # fmt: skip


def run_row(model: str, particles: int, args, work: Path) -> dict:
    changes = {"model": model, "n_molecules": args.n, "scaffold": args.scaffold, "output_dir": str(work),
               "sampling": {"precision": args.precision, "steps": args.steps},
               "steer": {"rewards": "valid", "reader": "xyz2mol", "particles": particles} if particles > 1 else None,
               "scoring": {"posebusters": "off", "fcd": False}, "tracking": {"enabled": False}}  # fmt: skip
    config = load_campaign(args.file, changes)
    result = run_campaign(config, track=False, log=lambda m: None)
    metas = [json.loads(p.read_text()) for p in (result.out_dir / "batches").glob("batch_*.json")]
    seconds = sum(meta["seconds_generate"] for meta in metas)  # generation alone, without loading or scoring
    m, frame = result.metrics, result.frame
    kept = frame[frame["status"] == "kept"].sort_values("rank")
    reasons = frame["reason_kind"].replace("", "kept").value_counts().to_dict()
    return {"model": model, "particles": particles, "n": m["n"], **{k: m.get(k) for k, _ in COLUMNS},
            "n_kept": m["n_kept"], "kept": list(zip(kept["smiles"], kept["qed"].round(2))), "reasons": reasons,
            "seconds_per_molecule": seconds / m["n"]}  # fmt: skip


def table(rows: list[dict]) -> str:
    head = "| model | steering | " + " | ".join(name for _, name in COLUMNS) + " | kept | s / molecule (generating) |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 4)]
    for r in rows:
        steer = f"{r['particles']} particles" if r["particles"] > 1 else "none"
        cells = [f"{100 * r[k]:.1f} %" if r[k] is not None else "–" for k, _ in COLUMNS]
        lines.append(f"| `{r['model']}` | {steer} | " + " | ".join(cells)
                     + f" | {r['n_kept']} of {r['n']} | {r['seconds_per_molecule']:.2f} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", help="model name or file (repeat for several; default drugs-scaffold)")
    ap.add_argument("--particles", action="append", type=int, help="steering particles, 0 or 1: none (repeatable)")
    ap.add_argument("--file", type=Path, default=EXAMPLE, help="the campaign file (default: the example)")
    ap.add_argument("--scaffold", default="*NC(=O)c1ccccc1", help="scaffold SMILES (default: the benzamide)")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "auto"))
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None, help="write OUT.json and OUT.md")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.model or ["drugs-scaffold"]:
            for particles in args.particles or [0]:
                rows.append(run_row(model, particles, args, Path(tmp) / f"run{len(rows)}"))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
    text = f"Scaffold `{args.scaffold}`, {args.n} molecules per row, {args.steps} steps, {args.precision}\n\n{table(rows)}\n"
    for r in rows:
        kept = ", ".join(f"`{s}` ({q})" for s, q in r["kept"]) or "none"
        text += f"\n- `{r['model']}`, {r['particles']} particles: kept {kept}; reasons {r['reasons']}"
    print("\n" + text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                             "rows": rows}, indent=1, default=str) + "\n")  # fmt: skip
        args.out.with_suffix(".md").write_text(text + "\n")


if __name__ == "__main__":
    main()
