"""Training and denoiser throughput (molecules/s) on QM9-shaped batches, against EDM's reference
code measured on this machine kind (figures from ../shared/ANCHORS.md: EDM's EnVariationalDiffusion
+ EGNN_dynamics_QM9, attention on, 2 threads, batches of 64 drawn from EDM's QM9 size histogram).

    python bench/bench_speed.py            # 128x6 and 256x9, writes bench/results/speed.json

Each figure is the median over timed batches after warm-up; batches use real QM9 training
molecules (sizes follow the training histogram), no padding.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from moldiff.config import load_config
from moldiff.data.batch import collate
from moldiff.data.qm9 import load_qm9
from moldiff.diffusion.losses import simple_loss
from moldiff.generator import MoleculeGenerator, build_network

# EDM reference throughput on this machine kind (ANCHORS.md), molecules/s: (train step, one evaluation)
EDM = {"128x6": ((24, 27), (96, 122)), "256x9": ((4.0, 4.4), (16.7, 17.4))}
BATCH, WARMUP, TIMED = 64, 3, 12


def bench(hidden: int, layers: int, data, rng) -> dict:
    cfg = load_config(None, [f"model.hidden={hidden}", f"model.layers={layers}"])
    torch.manual_seed(0)
    net = build_network(cfg)
    gen = MoleculeGenerator.from_config(cfg, net, data.atom_count_histogram())
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, amsgrad=True)
    batches = [collate(data, rng.choice(len(data), BATCH, replace=False), gen.vocab) for _ in range(WARMUP + TIMED)]

    train_times = []
    for i, b in enumerate(batches):
        z0, graph = gen.encode(b)
        start = time.perf_counter()
        loss = simple_loss(gen.denoiser, z0, graph)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if i >= WARMUP:
            train_times.append(time.perf_counter() - start)

    eval_times = []
    net.eval()
    with torch.no_grad():
        for i, b in enumerate(batches):
            z0, graph = gen.encode(b)
            t = torch.rand(graph.num_graphs)
            start = time.perf_counter()
            gen.denoiser.eps(z0 + 0.1 * torch.randn_like(z0), t, graph)
            if i >= WARMUP:
                eval_times.append(time.perf_counter() - start)
    key = f"{hidden}x{layers}"
    train_rate = BATCH / statistics.median(train_times)
    eval_rate = BATCH / statistics.median(eval_times)
    edm_train, edm_eval = EDM[key]
    return {
        "model": key,
        "parameters": sum(p.numel() for p in net.parameters()),
        "train_mol_per_s": round(train_rate, 1),
        "eval_mol_per_s": round(eval_rate, 1),
        "edm_train_mol_per_s": edm_train,
        "edm_eval_mol_per_s": edm_eval,
        "train_speedup_vs_edm": round(train_rate / max(edm_train), 2),
        "eval_speedup_vs_edm": round(eval_rate / max(edm_eval), 2),
        "features": sum(f.columns for f in gen.fields),
    }


def main() -> None:
    torch.set_num_threads(2)
    data = load_qm9("train")
    rng = np.random.default_rng(0)
    rows = [bench(128, 6, data, rng), bench(256, 9, data, rng)]
    print(f"{'model':>7} {'params':>9} {'train mol/s':>12} {'(EDM)':>10} {'x':>6} {'eval mol/s':>11} {'(EDM)':>11} {'x':>6}")
    for r in rows:
        print(f"{r['model']:>7} {r['parameters']:>9} {r['train_mol_per_s']:>12} "
              f"{'%s-%s' % r['edm_train_mol_per_s']:>10} {r['train_speedup_vs_edm']:>6} {r['eval_mol_per_s']:>11} "
              f"{'%s-%s' % r['edm_eval_mol_per_s']:>11} {r['eval_speedup_vs_edm']:>6}")  # fmt: skip
    out = Path(__file__).parent / "results" / "speed.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"threads": 2, "batch": BATCH, "rows": rows}, indent=2) + "\n")
    print(f"(speedups against the upper end of EDM's measured range; wrote {out})")


if __name__ == "__main__":
    main()
