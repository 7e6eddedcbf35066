"""Write the card of the built-in few-step model ``qm9-fast`` from its training state and the
flow-map benchmark, and (with --export) install its EMA weights as the package's built-in model.

    python bench/flowmap_card.py [--state train_state/flowmap_qm9] [--export]

Reads STATE/last.pt (config, history of losses and periodic few-jump sample evaluations) and
bench/results/flowmap.md (from bench/bench_flowmap.py); writes moldiff/models/qm9_fast.md.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from model_card import MODELS, ROOT, export_model, results_section, hardware

from moldiff.train.checkpoint import load_checkpoint

OBJECTIVES = {
    "teacher-ode": "regression onto the teacher's probability-flow ODE solved from s to t",
    "lagrangian": "Lagrangian map distillation (∂_t G = v_teacher(G, t))",
    "meanflow": "the MeanFlow identity, from data alone",
}


def curve_rows(history: list[dict], jumps: int) -> list[str]:
    rows = [f"| step | train loss (last logged) | atom stab. ({jumps} calls) | mol stab. | validity |",
            "|---|---|---|---|---|"]  # fmt: skip
    loss = None
    for row in history:
        loss = row.get("loss", loss)
        if "sample_atom_stability" in row:
            pct = lambda k: f"{100 * row[k]:.1f}" if k in row else "–"  # noqa: E731
            rows.append(f"| {row['step']} | {loss:.4f} | {pct('sample_atom_stability')} | {pct('sample_mol_stability')} "
                        f"| {pct('sample_validity')} |")  # fmt: skip
    return rows


def floor_note(fm: dict) -> str:
    floor = fm.get("alpha_floor") or 0.0
    return f" with α floor {floor} (x̂ = (z − σ F)/max(α, {floor}))" if floor else ""


def ceiling_section() -> list[str]:
    """What a perfect ODE distillation would reach: the teacher's ODE solved accurately, if measured."""
    path = ROOT / "bench" / "results" / "teacher_ode_exact.json"
    if not path.exists():
        return []
    runs = json.loads(path.read_text())["runs"]
    found = ", ".join(f"{100 * r['mol_stability']:.1f} % molecule stability and {100 * r['validity']:.1f} % validity "
                      f"on {r['n']} molecules at {r['nfe']:.0f} NFE (`{r['command']}`)" for r in runs)  # fmt: skip
    return ["", "## Limit", "",
            "A flow map distilled from the teacher's probability-flow ODE can at best reproduce that ODE's samples. "
            f"Solved accurately (Dormand–Prince 5(4), per-molecule step control) the ODE gives {found}: the ceiling "
            "of any ODE distillation, well below the teacher's stochastic sampler at 50 calls in the table above."]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state", default=str(ROOT / "train_state" / "flowmap_qm9"))
    parser.add_argument("--export", action="store_true", help="copy the EMA weights into moldiff/models/qm9_fast.pt")
    args = parser.parse_args()
    state = load_checkpoint(Path(args.state) / "last.pt")
    history, config = state["history"], state["config"]
    if args.export:
        export_model(state, MODELS / "qm9_fast.pt")
    fm, tc, m = config["flowmap"], config["train"], config["model"]
    teacher = fm.get("teacher")
    teachers = state.get("teachers", [])
    teacher_step = ", then ".join(f"{t['step']}" + (f" from step {t['from_step']}" if t["from_step"] else "")
                                  for t in teachers)  # fmt: skip
    if teacher and not teachers:  # a state from before the trainer kept it: the teacher's weights now
        from moldiff.models import resolve_model

        teacher_step = f"{load_checkpoint(resolve_model(teacher)).get('step')} now; not recorded by the training state"
    n_params = sum(v.numel() for v in state["ema"].values())
    target = ""
    if fm["objective"] == "teacher-ode":
        target = (f" ({fm['substeps']} {fm['teacher_solver']} steps of the teacher per target"
                  f"{', in λ = log(α/σ)' if fm['teacher_solver'] == 'dpmpp-2m' else ''})")
    lines = [
        "# Built-in model `qm9-fast`",
        "",
        f"A flow map G(z_s, s, t) that jumps along the probability-flow ODE of the built-in model `{teacher}` "
        f"(step {teacher_step}): EGNN {m['hidden']} × {m['layers']} ({n_params / 1e6:.2f} M parameters) with the "
        f"two times as per-molecule condition columns, `{fm['parameterization']}` parameterisation"
        f"{floor_note(fm)} (`moldiff/flowmap/model.py`), trained by "
        f"{OBJECTIVES[fm['objective']]}{target}. Sample it with K network calls: "
        "`moldiff sample --model qm9-fast [--steps K] [--solver-opt gamma=G]` (default K = 4, γ = 0). "
        "Guidance (targets, regressor guides, scaffolds) is applied per jump, to each jump's (x̂, ε̂).",
        "",
        "## Training",
        "",
        f"- config: `configs/flowmap_qm9.yaml`; warm start from the teacher's weights (`--init {teacher}`)",
        f"- steps: {state['step']} (batch {tc['batch_size']}), lr {tc['lr']}, warm-up {tc['warmup_steps']}, "
        f"EMA {tc['ema_decay']}; time pairs: {fm['diagonal']} on the diagonal t = s, {fm['grid_share']} on the "
        "jumps of the 1/2/4/8-jump uniform grids, the rest s ~ U(0, 1), t = s·U(0, 1)",
        f"- hardware: {hardware(history, f'a 2-core CPU machine ({platform.machine()}), one or two threads')}",
        "- continue it: `moldiff train --config configs/flowmap_qm9.yaml --resume`",
        "",
        "## Learning curve",
        "",
        f"100 molecules sampled with {fm['eval_jumps']} jumps at each evaluation (EMA weights), EDM protocol:",
        "",
        *curve_rows(history, fm["eval_jumps"]),
    ]
    lines += results_section("flowmap", "## Quality against network calls",
                             "`python bench/bench_flowmap.py --flowmap qm9-fast` (flow map and teacher on the same "
                             "seeds and sizes; speed-ups are per valid molecule, measured in the same run):")  # fmt: skip
    lines += ceiling_section()
    (MODELS / "qm9_fast.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {MODELS / 'qm9_fast.md'}" + (f" and {MODELS / 'qm9_fast.pt'}" if args.export else ""))


if __name__ == "__main__":
    main()
