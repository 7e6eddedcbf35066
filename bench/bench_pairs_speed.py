"""Cost of the pair channel: the pair EGNN (``moldiff.nets.egnn_pairs``) against the coordinate-only
EGNN (``moldiff.nets.egnn``) at equal width × layers (128 × 6), in molecules/s for a training step
and for one evaluation.

    python bench/bench_pairs_speed.py     # 2 threads, writes bench/results/pairs_speed.json

Three size sets: QM9 with hydrogens (sizes drawn from the training split's histogram), drug-like
molecules with hydrogens (44 atoms, about 950 pairs) and the same without hydrogens (24 heavy
atoms, 276 pairs). The EGNN reads and predicts atom types; the pair EGNN also reads charges
and Kekulé bond classes (none, single, double, triple) and predicts their logits. A training step
is forward, loss (squared error on the coordinates, cross-entropy on every categorical output),
backward, gradient clipping and an AdamW step; an evaluation is one forward pass without
gradients. The networks run in turn on the same batches, so load from other jobs on the machine
falls on both; each rate is the median over the timed batches after warm-up, and ``cost_*`` is the
median over batches of the pair network's time over the EGNN's (the bound on the pair channel is 2×):
``cost_*`` in wall-clock time, ``cost_*_cpu`` in the process's CPU time, which a machine shared with
other jobs disturbs far less (the load average at start and end is recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from moldiff.nets.egnn import EGNN
from moldiff.nets.egnn_pairs import PairEGNN, molecule_pairs

HIDDEN, LAYERS, WARMUP, TIMED = 128, 6, 2, 10
CHARGES, BONDS = 3, 4  # formal charge −1/0/+1; no bond, single, double, triple
# name: (elements, batch size, how sizes are drawn)
SIZE_SETS = {"qm9": (5, 64, "histogram"), "drugs_h": (8, 32, 44), "drugs_heavy": (7, 32, 24)}


def _sizes(kind, batch: int, rng: np.random.Generator, qm9_sizes: np.ndarray) -> np.ndarray:
    return rng.choice(qm9_sizes, batch) if kind == "histogram" else np.full(batch, kind)


def _batch(counts: np.ndarray, elements: int, gen: torch.Generator) -> dict:
    counts = torch.as_tensor(counts)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    n, b = int(ptr[-1]), len(counts)
    p = int((counts * (counts - 1) // 2).sum())
    types = torch.randint(elements, (n,), generator=gen)
    charges = torch.randint(CHARGES, (n,), generator=gen)
    bonds = torch.randint(BONDS, (p,), generator=gen)
    return {
        "x": torch.randn(n, 3, generator=gen) * 1.5, "t": torch.rand(b, generator=gen), "ptr": ptr,
        "batch": torch.repeat_interleave(torch.arange(b), counts), "types": types, "charges": charges,
        "bonds": bonds, "eps": torch.randn(n, 3, generator=gen),
        "h_types": F.one_hot(types, elements).float(),
        "h_all": torch.cat([F.one_hot(types, elements), F.one_hot(charges, CHARGES)], -1).float(),
        "e": F.one_hot(bonds, BONDS).float(),
    }  # fmt: skip


def _loss_egnn(net, d):
    dx, dh = net(d["x"], d["h_types"], d["t"], d["batch"], d["ptr"])
    return (dx - d["eps"]).square().mean() + (dh - d["h_types"]).square().mean()


def _loss_pairs(net, d):
    dx, atoms, pairs = net(d["x"], d["h_all"], d["e"], d["t"], d["batch"], d["ptr"])
    elements = d["h_types"].shape[1]
    return ((dx - d["eps"]).square().mean() + F.cross_entropy(atoms[:, :elements], d["types"])
            + F.cross_entropy(atoms[:, elements:], d["charges"]) + F.cross_entropy(pairs, d["bonds"]))  # fmt: skip


def _train_step(net, opt, loss_fn, d) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    loss = loss_fn(net, d)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    return time.perf_counter() - start, time.process_time() - cpu


def _eval_step(net, loss_fn, d) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    with torch.no_grad():
        loss_fn(net, d)
    return time.perf_counter() - start, time.process_time() - cpu


def _networks(elements: int, pair_hidden: list[int]) -> dict:
    torch.manual_seed(0)
    nets = {"egnn": (EGNN(elements, hidden=HIDDEN, layers=LAYERS), _loss_egnn)}
    for ph in pair_hidden:
        net = PairEGNN(elements + CHARGES, BONDS, elements + CHARGES, BONDS, hidden=HIDDEN, layers=LAYERS, pair_hidden=ph)
        nets[f"egnn_pairs_h{ph}"] = (net, _loss_pairs)
    return nets


def bench_sizes(name: str, pair_hidden: list[int], qm9_sizes: np.ndarray, seed: int = 0) -> list[dict]:
    elements, batch, kind = SIZE_SETS[name]
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    batches = [_batch(_sizes(kind, batch, rng, qm9_sizes), elements, gen) for _ in range(WARMUP + TIMED)]
    nets = _networks(elements, pair_hidden)
    opts = {k: torch.optim.AdamW(net.parameters(), lr=1e-4, amsgrad=True) for k, (net, _) in nets.items()}
    train = {k: [] for k in nets}  # (wall, cpu) seconds per batch
    evals = {k: [] for k in nets}
    for i, d in enumerate(batches):  # the networks in turn on each batch: shared load hits all of them
        for k, (net, loss_fn) in nets.items():
            net.train()
            dt = _train_step(net, opts[k], loss_fn, d)
            net.eval()
            de = _eval_step(net, loss_fn, d)
            if i >= WARMUP:
                train[k].append(dt)
                evals[k].append(de)
    counts = np.concatenate([np.diff(d["ptr"].numpy()) for d in batches])
    rows = []
    for k, (net, _) in nets.items():
        train_rate = batch / statistics.median(t for t, _ in train[k])
        eval_rate = batch / statistics.median(t for t, _ in evals[k])
        rows.append({
            "sizes": name, "network": k, "batch": batch, "mean_atoms": round(float(counts.mean()), 1),
            "mean_pairs": round(float((counts * (counts - 1) / 2).mean()), 1),
            "parameters": sum(p.numel() for p in net.parameters()),
            "train_mol_per_s": round(train_rate, 1), "eval_mol_per_s": round(eval_rate, 1),
        })  # fmt: skip
    for r, k in zip(rows, nets):  # per-batch ratios: robust to load that comes and goes between batches
        for name, times in (("train", train), ("eval", evals)):
            ratio = np.array(times[k]) / np.array(times["egnn"])
            r[f"cost_{name}"] = round(statistics.median(ratio[:, 0]), 2)
            r[f"cost_{name}_cpu"] = round(statistics.median(ratio[:, 1]), 2)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pair-hidden", default="128,64", help="pair-state widths to measure, comma-separated")
    parser.add_argument("--sizes", default=",".join(SIZE_SETS), help="size sets, comma-separated")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "pairs_speed.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = round(os.getloadavg()[0], 1)  # other jobs on the machine: recorded beside the timings
    from moldiff.data.qm9 import load_qm9

    qm9_sizes = np.diff(load_qm9("train").ptr)
    pair_hidden = [int(v) for v in args.pair_hidden.split(",")]
    rows = []
    for name in args.sizes.split(","):
        rows += bench_sizes(name, pair_hidden, qm9_sizes)
        for r in rows[-len(pair_hidden) - 1:]:
            print(f"{r['sizes']:>12} {r['network']:>16} atoms {r['mean_atoms']:>5} train {r['train_mol_per_s']:>7} mol/s "
                  f"(x{r['cost_train']}) eval {r['eval_mol_per_s']:>7} mol/s (x{r['cost_eval']})", flush=True)  # fmt: skip
    out = {"threads": args.threads, "hidden": HIDDEN, "layers": LAYERS, "cpu": platform.processor() or platform.machine(),
           "torch": torch.__version__, "load_average": [load, round(os.getloadavg()[0], 1)], "rows": rows}  # fmt: skip
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
