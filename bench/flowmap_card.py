"""Write the card of the built-in few-step model ``qm9-fast`` from its model file and the flow-map
benchmark, and (with --export) first install a training state as that model file.

    python bench/flowmap_card.py [--export DIR]

Reads moldiff/models/qm9_fast.pt (config, teachers, learning curve), bench/results/flowmap.md (from
bench/bench_flowmap.py) and bench/results/teacher_ode_exact.json; writes moldiff/models/qm9_fast.md.
--export installs DIR/last.pt (a training state of moldiff/configs/flowmap_qm9.yaml) as qm9_fast.pt.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from model_card import (MODELS, ROOT, continue_section, curve_table, export_model, hardware, load_model, pct, rate,
                        results_table)

OBJECTIVES = {
    "teacher-ode": "regression onto the teacher's probability-flow ODE solved from s to t",
    "lagrangian": "Lagrangian map distillation (∂_t G = v_teacher(G, t))",
    "meanflow": "the MeanFlow identity, from data alone",
}


def floor_note(fm: dict) -> str:
    floor = fm.get("alpha_floor") or 0.0
    return f" with α floor {floor} (x̂ = (z − σ F)/max(α, {floor}))" if floor else ""


def ceiling_lines() -> list[str]:
    """What a perfect ODE distillation would reach: the teacher's ODE solved accurately, if measured."""
    path = ROOT / "bench" / "results" / "teacher_ode_exact.json"
    if not path.exists():
        return []
    runs = json.loads(path.read_text())["runs"]
    found = ", ".join(f"{100 * r['mol_stability']:.1f} % molecule stability and {100 * r['validity']:.1f} % validity "
                      f"on {r['n']} molecules at {r['nfe']:.0f} NFE (`{r['command']}`)" for r in runs)  # fmt: skip
    return ["", "The ceiling of any distillation of the teacher's probability-flow ODE: solved accurately "
            f"(Dormand–Prince 5(4), per-molecule step control) that ODE gives {found}."]  # fmt: skip


def curve(fm: dict) -> list[tuple]:
    return [("train loss", "loss", "{:.4f}".format), ("val loss", "val_loss", "{:.4f}".format),
            (f"atom stab. % ({fm['eval_jumps']} calls)", "sample_atom_stability", pct),
            ("mol stab. %", "sample_mol_stability", pct), ("validity %", "sample_validity", pct)]  # fmt: skip


def recipe_teacher() -> str | None:
    """The teacher as the recipe names it (a model file records the name it had when it was trained)."""
    from moldiff.config import FlowMapRunConfig, find_config, load_config

    return load_config(find_config("flowmap_qm9"), schema=FlowMapRunConfig).flowmap.teacher


def card(payload: dict) -> str:
    history, config = payload["history"], payload["config"]
    fm, tc, m = config["flowmap"], config["train"], config["model"]
    teacher = recipe_teacher()
    teacher_steps = ", then ".join(f"step {t['step']:,}" + (f" from step {t['from_step']:,}" if t["from_step"] else "")
                                   for t in payload.get("teachers", []))  # fmt: skip
    n_params = sum(v.numel() for v in payload["ema"].values())
    target = ""
    if fm["objective"] == "teacher-ode":
        target = (f" ({fm['substeps']} {fm['teacher_solver']} steps of the teacher per target"
                  f"{', in λ = log(α/σ)' if fm['teacher_solver'] == 'dpmpp-2m' else ''})")
    epochs = payload["epoch"] + payload["cursor"] * tc["batch_size"] / 100_000
    lines = [
        "# Built-in model `qm9-fast`",
        "",
        f"A few-step sampler of the same molecules as `{teacher}`: a flow map G(z_s, s, t) that jumps along the "
        f"probability-flow ODE of `{teacher}` as it was at {teacher_steps or 'the time'} in a few network calls. It is "
        f"an EGNN {m['hidden']} × {m['layers']} ({n_params / 1e6:.2f} M parameters) that takes the two times as "
        f"per-molecule inputs, with the `{fm['parameterization']}` parameterisation{floor_note(fm)} "
        "(`moldiff/flowmap/model.py`).",
        "",
        "## Intended use",
        "",
        "```bash",
        "moldiff sample --model qm9-fast -n 1000 -o quick.sdf          # 4 network calls per molecule",
        "moldiff sample --model qm9-fast --steps 8 -n 1000 -o quick.sdf",
        "```",
        "",
        "Screening-scale sampling where speed matters more than quality: each molecule costs 1 to 8 network calls "
        "instead of the teacher's 100. Guidance (targets, regressor guides, scaffolds) applies per jump. For "
        "quality, sample its teacher `qm9-edm`, or the graph model `qm9`.",
        "",
        "## Data",
        "",
        "QM9's training split as EDM draws it (100,000 molecules with explicit hydrogens), from which the "
        "teacher's trajectories start; the data and diffusion sections equal the teacher's.",
        "",
        "## Training",
        "",
        f"- recipe: `moldiff/configs/flowmap_qm9.yaml` (`moldiff train --config flowmap_qm9 --init {teacher}`: the "
        "teacher's weights are the starting point, the two new time inputs start at zero)",
        f"- objective: {OBJECTIVES[fm['objective']]}{target}; time pairs: {fm['diagonal']} on the diagonal t = s, "
        f"{fm['grid_share']} on the jumps of the 1/2/4/8-jump uniform grids, the rest s ~ U(0, 1), t = s·U(0, 1)",
        f"- {payload['step']:,} steps of batch {tc['batch_size']} ({epochs:.2f} epochs), learning rate "
        f"{rate(tc['lr'])}, warm-up {tc['warmup_steps']}, EMA {tc['ema_decay']}",
        f"- {hardware(history, 'a 2-core CPU (x86_64), one or two threads')}",
        "",
        "## Evaluation",
        "",
        "`python bench/bench_flowmap.py --flowmap qm9-fast`: the flow map and its teacher on the same seeds and "
        "sizes, EDM protocol; speed-ups are per valid molecule, measured in the same run:",
        "",
        *results_table("flowmap"),
        *ceiling_lines(),
        "",
        "## Learning curve",
        "",
        f"Validation loss and 100 molecules sampled with {fm['eval_jumps']} jumps at each evaluation (EMA weights), "
        "EDM protocol. Hours: wall-clock training time.",
        "",
        *curve_table(history, curve(fm), every=250),
        "",
        "## Limitations",
        "",
        "- Far below its teacher at equal quality targets: at 4 calls almost no molecule is stable (table above).",
        "- Distilled from the teacher's probability-flow ODE, it can at best reproduce that ODE's samples, which "
        "are themselves well below the teacher's stochastic sampler (below the table).",
        "",
        *continue_section("flowmap_qm9", "qm9-fast"),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--export", type=Path, metavar="DIR", help="install DIR/last.pt as moldiff/models/qm9_fast.pt first")
    args = parser.parse_args()
    if args.export:
        export_model(args.export, MODELS / "qm9_fast.pt")
    (MODELS / "qm9_fast.md").write_text(card(load_model("qm9-fast")))
    print(f"wrote {MODELS / 'qm9_fast.md'}" + (f" and {MODELS / 'qm9_fast.pt'}" if args.export else ""))


if __name__ == "__main__":
    main()
